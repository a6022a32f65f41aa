/**
 * Cloud Monitoring notification channels from an environment's `notifications:` targets.
 *
 *   webhook → webhook_tokenauth with the target's URL (a url_secret is read from the SecretStore;
 *             the value goes to Monitoring and nowhere else: never printed, logged or returned)
 *   pubsub  → pubsub with the full topic name projects/P/topics/T
 *   slack   → no channel. Monitoring's Slack channels post through its Slack app (an OAuth install
 *             done in the console), and a Slack incoming-webhook URL cannot take Monitoring's
 *             incident JSON; setup says so and leaves the secret unread.
 *
 * Only targets that subscribe to an event alerting stands for (all, run_failed, run_timeout,
 * dq_failed) get a channel. A channel is known again by its `convergence_id` label, a hash of
 * the target's type and address (the secret's name, not its value), so reordering the list or
 * rotating a secret's value updates a channel instead of making another.
 */
import { createHash } from 'node:crypto';
import type { NotificationChannelSpec } from '../../backends/monitoring/port.ts';
import type { SecretStore } from '../../backends/secrets/port.ts';
import type { NotificationTarget } from '../../domain/notifications.ts';
import { ConvergenceError, ExitCode, usageError } from '../../lib/errors.ts';
import { rememberSecret } from '../../lib/redaction.ts';
import { ALERTING_EVENTS, ownedLabels } from './desired.ts';

export interface ChannelPlan {
  /** The channel's convergence_id. */
  id: string;
  /** Where the target sits in convergence.yaml, for messages. */
  where: string;
  events: readonly string[];
  /** Undefined for a target that gets no channel (see `skipped`). */
  spec: NotificationChannelSpec | undefined;
  skipped: string | undefined;
  /** Label values that came from a secret: shown by the secret's name, never by value. */
  secretLabels: Record<string, string>;
}

const channelId = (type: string, address: string) =>
  `${type}-${createHash('sha256').update(`${type}\n${address}`).digest('hex').slice(0, 16)}`;

/** An inline URL as it may be shown: scheme, host and path; a query or user info may hold a token. */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${parsed.search ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

async function secretUrl(secrets: SecretStore, name: string, where: string): Promise<string> {
  const value = (await secrets.get(null, name))?.trim();
  if (!value) {
    throw new ConvergenceError(
      'SECRET_MISSING',
      ExitCode.notFound,
      `${where}.url_secret names the secret "${name}", which the SecretStore does not have`,
      {
        suggestion: `store the webhook URL under that name (Secret Manager: \`printf %s "$URL" | gcloud secrets create ${name} --data-file=-\`), then run setup again`,
        data: { secret: name },
      },
    );
  }
  rememberSecret(value);
  if (!/^https?:\/\/[^\s]+$/i.test(value) || !URL.canParse(value)) {
    // The value is not repeated: it is a secret even when it is malformed.
    throw usageError(`the secret "${name}" (${where}.url_secret) does not hold an http(s) URL`, {
      suggestion: `put the webhook's full https:// URL in the secret "${name}"`,
      data: { secret: name },
    });
  }
  return value;
}

const description = (envName: string, target: NotificationTarget) =>
  `Managed by convergence (environment ${envName}): ${target.type} target for ${target.events.join(', ')}`;

/** One plan per notification target of the environment, in convergence.yaml order. */
export async function planChannels(
  envName: string,
  project: string,
  targets: readonly NotificationTarget[],
  secrets: () => Promise<SecretStore>,
): Promise<ChannelPlan[]> {
  const plans: ChannelPlan[] = [];
  for (const [index, target] of targets.entries()) {
    const where = `environments.${envName}.notifications[${index}]`;
    const base = { where, events: target.events, secretLabels: {} as Record<string, string> };
    if (!target.events.some((event) => ALERTING_EVENTS.has(event))) {
      const id = channelId(target.type, target.type === 'pubsub' ? target.topic : (target.url ?? `secret:${target.url_secret}`));
      plans.push({
        ...base,
        id,
        spec: undefined,
        skipped: `no alerting event (all, run_failed, run_timeout, dq_failed) among ${target.events.join(', ')}`,
      });
      continue;
    }
    if (target.type === 'slack') {
      const id = channelId('slack', target.url ?? `secret:${target.url_secret}`);
      plans.push({
        ...base,
        id,
        spec: undefined,
        skipped:
          'Cloud Monitoring posts to Slack only through its Slack app, not to an incoming-webhook URL: add a Slack channel in the console (Monitoring > Alerting > Edit notification channels) and attach it to the convergence policies; setup keeps channels it did not create on them',
      });
      continue;
    }
    if (target.type === 'pubsub') {
      const id = channelId('pubsub', target.topic);
      plans.push({
        ...base,
        id,
        skipped: undefined,
        spec: {
          type: 'pubsub',
          displayName: `convergence ${envName}: Pub/Sub ${target.topic}`,
          description: description(envName, target),
          labels: { topic: `projects/${project}/topics/${target.topic}` },
          userLabels: ownedLabels(envName, id),
          enabled: true,
        },
      });
      continue;
    }
    const address = target.url ?? `secret:${target.url_secret}`;
    const id = channelId('webhook', address);
    const url = target.url ?? (await secretUrl(await secrets(), target.url_secret!, where));
    plans.push({
      ...base,
      id,
      skipped: undefined,
      secretLabels: target.url_secret ? { url: target.url_secret } : {},
      spec: {
        type: 'webhook_tokenauth',
        displayName: `convergence ${envName}: webhook ${target.url ? new URL(target.url).host : `(secret ${target.url_secret})`}`,
        description: description(envName, target),
        labels: { url },
        userLabels: ownedLabels(envName, id),
        enabled: true,
      },
    });
  }
  return plans;
}
