import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';

/** The host the fake APIs listen on (test/fakes/http-api.ts and the others). */
export const FAKE_API_HOSTS = ['127.0.0.1'];

/**
 * Lets the REST sources of environment `env` of the workspace at `root` reach the fake APIs on
 * 127.0.0.1, as an operator lists an internal API: `rest_sources.private_hosts` in convergence.yaml.
 * Every other loopback or private address stays refused.
 */
export async function allowFakeApis(root: string, options: { env?: string; hosts?: string[]; googleAdc?: boolean } = {}): Promise<void> {
  const file = path.join(root, 'convergence.yaml');
  const doc = parseDocument(await readFile(file, 'utf8'));
  const env = options.env ?? 'local';
  if (!doc.hasIn(['environments', env]) || doc.getIn(['environments', env]) === null)
    doc.setIn(['environments', env], { backend: 'local' });
  doc.setIn(['environments', env, 'rest_sources'], {
    private_hosts: options.hosts ?? FAKE_API_HOSTS,
    ...(options.googleAdc ? { google_adc: true } : {}),
  });
  await writeFile(file, doc.toString());
}
