import { fetchPages as fetchAnyPages } from '../../../src/engine/sources/rest/client.ts';
import type { FetchPagesOptions, RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';

/** The fakes' host, listed as an operator lists an internal API (environment `rest_sources.private_hosts`). */
export const LOOPBACK_HOSTS = ['127.0.0.1'];

/**
 * The REST client against the fakes on 127.0.0.1: every other loopback or private address stays
 * refused (a config's own private_hosts wins), as test/security/rest-source-network.test.ts checks.
 */
export function fetchPages(config: RestSourceConfig, options?: FetchPagesOptions): ReturnType<typeof fetchAnyPages> {
  return fetchAnyPages({ private_hosts: LOOPBACK_HOSTS, ...config }, options);
}
