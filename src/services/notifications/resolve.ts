import type { NotifierTarget } from '../../backends/notify/port.ts';
import type { NotificationTarget } from '../../domain/notifications.ts';
import { Redactor, rememberSecret } from '../../lib/redaction.ts';
import type { ServiceContext } from '../context.ts';
import { environmentTopics, type PlacedTarget } from './targets.ts';

/** A target ready to send to, with the secret values it resolved (for redaction), or why it may not be used. */
export type ResolvedTarget = { ok: true; target: NotifierTarget; redactor: Redactor } | { ok: false; reason: string };

/** How a target is shown: its type and host, secret name or topic; never a URL path or a secret value. */
export function describeTarget(target: NotificationTarget): string {
  if (target.type === 'pubsub') return `topic ${target.topic}`;
  if (target.url_secret) return `secret ${target.url_secret}`;
  try {
    const url = new URL(target.url!);
    return `${url.protocol}//${url.host}`;
  } catch {
    return 'an invalid URL';
  }
}

/**
 * Resolves a target's secrets in the scope its origin allows and applies the rules for tenant
 * input: a pipeline's secrets come from its own tenant only, its URLs are https, and its topics
 * are ones the environment already names. Never throws: a refusal is a reason.
 */
export async function resolveTarget(ctx: ServiceContext, placed: PlacedTarget, tenantId: string | undefined): Promise<ResolvedTarget> {
  const { target, origin } = placed;
  const tenantInput = origin === 'pipeline';
  if (tenantInput && !tenantId) return { ok: false, reason: 'a pipeline target needs its tenant' };
  const scope = tenantInput ? tenantId! : null;
  const redactor = new Redactor();
  const secret = async (name: string): Promise<string | undefined> => {
    const value = await (await ctx.backends.secrets()).get(scope, name);
    rememberSecret(value);
    redactor.add(value);
    return value;
  };
  const where = (name: string) => (tenantInput ? `the secrets of tenant ${tenantId}` : 'the system secrets') + ` (secret "${name}")`;

  try {
    if (target.type === 'pubsub') {
      if (tenantInput && !environmentTopics(ctx).has(target.topic)) {
        return { ok: false, reason: `topic ${target.topic} is not one of environment ${ctx.env.name}'s notification topics` };
      }
      if (ctx.env.backend === 'local') {
        return { ok: false, reason: `environment ${ctx.env.name} is local: Pub/Sub topics are sent to from a Google Cloud environment` };
      }
      return { ok: true, target: { type: 'pubsub', topic: target.topic }, redactor };
    }
    const url = target.url ?? (await secret(target.url_secret!));
    if (url === undefined) return { ok: false, reason: `no URL: not found in ${where(target.url_secret!)}` };
    const protocol = urlProtocol(url);
    if (protocol !== 'https:' && !(protocol === 'http:' && !tenantInput)) {
      return {
        ok: false,
        reason: tenantInput ? "a pipeline's notification URL must be https" : 'the notification URL is not an http(s) URL',
      };
    }
    const allowPrivate = !tenantInput;
    if (target.type === 'slack') return { ok: true, target: { type: 'slack', url, allowPrivate }, redactor };
    let signingSecret: string | undefined;
    if (target.signing_secret) {
      signingSecret = await secret(target.signing_secret);
      if (signingSecret === undefined) return { ok: false, reason: `no signing secret: not found in ${where(target.signing_secret)}` };
    }
    return { ok: true, target: { type: 'webhook', url, allowPrivate, ...(signingSecret ? { signingSecret } : {}) }, redactor };
  } catch (err) {
    return { ok: false, reason: `its secrets could not be read: ${redactor.redact(err instanceof Error ? err.message : String(err))}` };
  }
}

function urlProtocol(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}
