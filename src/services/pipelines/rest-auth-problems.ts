import { sourceSchema, type SourceConfig } from '../../domain/pipeline.ts';
import { ADC_NOT_ALLOWED, googleDestinationProblem } from '../../engine/sources/rest/auth/google.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import { literalUrl } from './rest-hosts.ts';
import { isListedHost } from '../../lib/net/private-hosts.ts';

/**
 * For `pipeline validate`: what a run would refuse in a REST source's token-based auth in this
 * environment, at the line of the key to change: for `google`, no key_secret where the operator
 * does not allow the environment's own credentials, and a URL that is not a Google API host; for
 * `oauth2_client_credentials`, a token_url in clear text that the operator does not list.
 */
export async function restAuthProblems(ctx: ServiceContext, sourceFile: string, source: SourceConfig, text: string): Promise<string[]> {
  if (source.type !== 'rest_api') return [];
  const access = ctx.env.restSources ?? { privateHosts: [], googleAdc: false };
  const problems: Array<{ key: string[]; message: string }> = [];
  if (source.auth?.type === 'oauth2_client_credentials') {
    const tokenUrl = literalUrl(source.auth.token_url);
    if (tokenUrl?.protocol === 'http:' && !isListedHost(tokenUrl, access.privateHosts)) {
      problems.push({
        key: ['auth', 'token_url'],
        message: `expected an https URL: http://${tokenUrl.host} would send the client secret in clear text (an operator may list a local endpoint in rest_sources.private_hosts)`,
      });
    }
  } else if (source.auth?.type === 'google') {
    problems.push(...googleProblems(ctx, source.url, source.auth.key_secret, access));
  }
  if (problems.length === 0) return [];
  const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
  return problems.map(({ key, message }) => {
    const { line, col } = locate(key);
    return `${sourceFile}:${line}:${col}: ${key.join('.')}: ${message}`;
  });
}

function googleProblems(
  ctx: ServiceContext,
  sourceUrl: string,
  keySecret: string | undefined,
  access: { privateHosts: string[]; googleAdc: boolean },
): Array<{ key: string[]; message: string }> {
  const problems: Array<{ key: string[]; message: string }> = [];
  if (!keySecret && !access.googleAdc) {
    problems.push({
      key: ['auth'],
      message:
        `${ADC_NOT_ALLOWED} (environment "${ctx.env.name}"): store the tenant's service-account key as a secret and name it in ` +
        `auth.key_secret, or an operator sets environments.${ctx.env.name}.rest_sources.google_adc: true in convergence.yaml`,
    });
  }
  const url = literalUrl(sourceUrl);
  const destination = url && googleDestinationProblem(url, access.privateHosts);
  if (destination) problems.push({ key: ['url'], message: destination });
  return problems;
}
