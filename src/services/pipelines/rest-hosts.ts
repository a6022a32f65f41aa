import { sourceSchema, type SourceConfig } from '../../domain/pipeline.ts';
import { isInternalLiteral } from '../../lib/net/address-guard.ts';
import { isListedHost } from '../../lib/net/private-hosts.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from './bundle.ts';

type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;

/** The URLs of a REST source that requests go to, by their key in the source file. */
function requestUrls(source: RestSource): Array<{ key: string[]; url: string }> {
  const urls = [{ key: ['url'], url: source.url }];
  if (source.auth?.type === 'oauth2_client_credentials') urls.push({ key: ['auth', 'token_url'], url: source.auth.token_url });
  return urls;
}

/**
 * The URL as written, when its scheme and host carry no template (a templated host is only known
 * at run time, where the connection's own check refuses it).
 */
export function literalUrl(text: string): URL | undefined {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(text)?.[0];
  if (authority === undefined || authority.includes('{{')) return undefined;
  return URL.canParse(text) ? new URL(text) : undefined;
}

/** `localhost` and its subdomains always resolve to loopback (RFC 6761). */
const isLocalhostName = (hostname: string) => hostname === 'localhost' || hostname.endsWith('.localhost');

/**
 * For `pipeline validate`: a REST source URL whose host is a loopback, private or link-local IP
 * literal, or `localhost`, that the environment's rest_sources.private_hosts does not list: the
 * run would be refused at connect time, so validate says so first, at the line of the key.
 */
export async function restHostProblems(ctx: ServiceContext, sourceFile: string, source: SourceConfig, text: string): Promise<string[]> {
  if (source.type !== 'rest_api') return [];
  const privateHosts = ctx.env.restSources?.privateHosts ?? [];
  const refused = requestUrls(source).filter(({ url }) => {
    const parsed = literalUrl(url);
    return parsed !== undefined && (isInternalLiteral(parsed) || isLocalhostName(parsed.hostname)) && !isListedHost(parsed, privateHosts);
  });
  if (refused.length === 0) return [];
  const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
  return refused.map(({ key, url }) => {
    const { line, col } = locate(key);
    const host = new URL(url).host;
    return (
      `${sourceFile}:${line}:${col}: ${key.join('.')}: ${host} is a loopback, private or link-local address, which a tenant's ` +
      `REST source may not reach in environment "${ctx.env.name}" (an operator can allow it with ` +
      `environments.${ctx.env.name}.rest_sources.private_hosts: ["${host}"] in convergence.yaml)`
    );
  });
}

/**
 * Before a run takes its lock or writes its run row: no REST source of the bundle names a literal
 * internal host the environment does not list. Refused as configuration (exit 2), as validate
 * reports it; a host that only resolves there is refused by the connection itself.
 */
export async function assertRestHosts(ctx: ServiceContext, bundle: PipelineBundle): Promise<void> {
  const problems: string[] = [];
  for (const [relative, source] of bundle.sources) {
    problems.push(...(await restHostProblems(ctx, `configs/${bundle.tenantId}/${relative}`, source, bundle.files[relative] ?? '')));
  }
  if (problems.length > 0) {
    throw new ConvergenceError('SOURCE_ADDRESS_REFUSED', ExitCode.usage, problems.join('\n'), {
      suggestion:
        "point the source at a public host, or have the operator list the host under the environment's rest_sources.private_hosts",
    });
  }
}
