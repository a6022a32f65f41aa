import { sourceSchema, type SourceConfig } from '../../domain/pipeline.ts';
import { ADC_NOT_ALLOWED, googleDestinationProblem } from '../../engine/sources/rest/auth/google.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import { literalUrl } from './rest-hosts.ts';

/**
 * For `pipeline validate`: what a run would refuse in a REST source's `auth: { type: google }` in
 * this environment, at the line of the key to change: no key_secret where the operator does not
 * allow the environment's own credentials, and a URL that is not a Google API host.
 */
export async function restAuthProblems(ctx: ServiceContext, sourceFile: string, source: SourceConfig, text: string): Promise<string[]> {
  if (source.type !== 'rest_api' || source.auth?.type !== 'google') return [];
  const access = ctx.env.restSources ?? { privateHosts: [], googleAdc: false };
  const problems: Array<{ key: string[]; message: string }> = [];
  if (!source.auth.key_secret && !access.googleAdc) {
    problems.push({
      key: ['auth'],
      message:
        `${ADC_NOT_ALLOWED} (environment "${ctx.env.name}"): store the tenant's service-account key as a secret and name it in ` +
        `auth.key_secret, or an operator sets environments.${ctx.env.name}.rest_sources.google_adc: true in convergence.yaml`,
    });
  }
  const url = literalUrl(source.url);
  const destination = url && googleDestinationProblem(url, access.privateHosts);
  if (destination) problems.push({ key: ['url'], message: destination });
  if (problems.length === 0) return [];
  const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
  return problems.map(({ key, message }) => {
    const { line, col } = locate(key);
    return `${sourceFile}:${line}:${col}: ${key.join('.')}: ${message}`;
  });
}
