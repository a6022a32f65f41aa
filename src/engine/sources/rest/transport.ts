import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { isInternalLiteral, publicOnlyLookup, type Resolver } from '../../../lib/net/address-guard.ts';
import { isListedHost } from '../../../lib/net/private-hosts.ts';

/**
 * A source's URL is tenant input: left unchecked it could reach another process on the host, a
 * private network, or the metadata server that hands out the job's own credentials. The refusal
 * is a configuration problem, not a network one (the tenant's URL or the operator's allow list
 * must change): never retried, exit 2 like a file source path outside the tenant's roots (a run
 * it fails exits 3 as for any failed step, with this code and advice in its error).
 */
function addressRefused(host: string): ConvergenceError {
  return new ConvergenceError(
    'SOURCE_ADDRESS_REFUSED',
    ExitCode.usage,
    `${host} resolves to a loopback, private or link-local address, which a tenant's REST source may not reach; ` +
      'an operator can allow it with rest_sources.private_hosts in convergence.yaml',
    {
      suggestion: `point the source at a public host, or list "${host}" under the environment's rest_sources.private_hosts if it is meant to be reached`,
      data: { host },
    },
  );
}

/** Marks the lookup's refusal, so that the error fetch wraps it in can be told from a network failure. */
class LookupRefused extends Error {
  override name = 'LookupRefused';
}

function refusalIn(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (cause instanceof LookupRefused) return true;
    if (cause instanceof AggregateError && cause.errors.some(refusalIn)) return true;
  }
  return false;
}

export type SourceFetch = (
  url: URL,
  init: RequestInit & { redirect: 'manual' },
  privateHosts: readonly string[] | undefined,
) => Promise<Response>;

/**
 * A fetch that connects to an internal address only for the hosts the operator listed. A listed
 * host is connected to as it resolves; any other is resolved by a lookup that refuses internal
 * addresses at connect time (so DNS rebinding fails), an IP literal checked before connecting.
 * `resolve` is the DNS seam of the tests.
 */
export function createSourceFetch(resolve?: Resolver): SourceFetch {
  const guarded = new Agent({ connect: { lookup: publicOnlyLookup((hostname) => new LookupRefused(hostname), resolve) } });
  const open = new Agent();
  return async (url, init, privateHosts) => {
    const listed = isListedHost(url, privateHosts);
    if (!listed && isInternalLiteral(url)) throw addressRefused(url.host);
    try {
      const response = await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher: listed ? open : guarded });
      // undici's Response is the WHATWG Response the rest of the client reads (status, headers, text, body).
      return response as unknown as Response;
    } catch (error) {
      if (refusalIn(error)) throw addressRefused(url.host);
      throw error;
    }
  };
}

/**
 * The one place a REST source's HTTP requests leave the process. Redirects are not followed here
 * (the client follows them itself, so credentials never follow one to another origin, and every
 * hop passes the address guard).
 */
export const sourceFetch: SourceFetch = createSourceFetch();
