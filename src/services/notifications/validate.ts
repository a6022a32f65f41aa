import { isIP } from 'node:net';
import { isPublicAddress } from '../../lib/net/address-guard.ts';
import type { NotificationTarget } from '../../domain/notifications.ts';
import { pipelineSchema } from '../../domain/pipeline.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import { environmentTopics } from './targets.ts';

/** Host names that never lead to the public internet, whatever DNS says. */
const INTERNAL_NAMES = /^(localhost|metadata|metadata\.google\.internal)$|\.(localhost|internal|local|localdomain|home\.arpa)$/i;

/**
 * For `pipeline validate`: the problems of a pipeline's `notifications:` (tenant input), each at
 * its file:line:col. URLs must be https and may not name a loopback, private or internal host;
 * secrets must be the tenant's own; Pub/Sub topics must be ones the environment already names.
 * Delivery checks the same again, and the address actually connected to.
 */
export async function pipelineNotificationProblems(
  ctx: ServiceContext,
  tenantId: string,
  display: string,
  text: string,
): Promise<string[]> {
  const { value: pipeline, locate } = await parseYamlLocated(display, text, pipelineSchema);
  const problems: string[] = [];
  const topics = environmentTopics(ctx);
  for (const [index, target] of (pipeline.notifications ?? []).entries()) {
    const at = (key: string, message: string) => {
      const { line, col } = locate(['notifications', index, key]);
      problems.push(`${display}:${line}:${col}: notifications.${index}.${key}: ${message}`);
    };
    await targetProblems(ctx, tenantId, target, topics, at);
  }
  return problems;
}

async function targetProblems(
  ctx: ServiceContext,
  tenantId: string,
  target: NotificationTarget,
  topics: Set<string>,
  at: (key: string, message: string) => void,
): Promise<void> {
  if (target.type === 'pubsub') {
    if (!topics.has(target.topic)) {
      const named = [...topics];
      at(
        'topic',
        `topic "${target.topic}" is not one of environment ${ctx.env.name}'s notification topics (${named.length ? named.join(', ') : 'it names none'}); a pipeline may only publish to those`,
      );
    }
    return;
  }
  if (target.url !== undefined) {
    const problem = urlProblem(target.url);
    if (problem) at('url', problem);
  }
  const secrets = await ctx.backends.secrets();
  for (const key of ['url_secret', 'signing_secret'] as const) {
    const name = (target as Partial<Record<typeof key, string>>)[key];
    if (name !== undefined && (await secrets.get(tenantId, name)) === undefined) {
      at(key, `secret "${name}" not found in configs/${tenantId}/secrets/${name}.txt (a pipeline names only its own tenant's secrets)`);
    }
  }
}

function urlProblem(raw: string): string | undefined {
  const url = new URL(raw);
  if (url.protocol !== 'https:') return `a pipeline's notification URL must be https, got ${url.protocol.slice(0, -1)}`;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0 ? !isPublicAddress(host) : INTERNAL_NAMES.test(host)) {
    return `${url.host} is a loopback, private, link-local or internal address, which a tenant's notification may not reach`;
  }
  return undefined;
}
