import { z } from 'zod';
import { NAME_PATTERN } from './ids.ts';

/**
 * Notification targets (DESIGN "Notifications"): the `notifications:` list of an environment in
 * convergence.yaml, which a pipeline may override with a list of the same shape. A pipeline's list
 * is tenant input: where it may send and which secrets it may name is decided where it is
 * delivered, not here.
 */
const NOTIFICATION_EVENTS = [
  'run_failed',
  'run_timeout',
  'dq_failed',
  'dq_warned',
  'run_recovered',
  'deploy_rolled_back',
  'dispatch_failed',
  'quota_exhausted',
] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

const secretName = z.string().regex(NAME_PATTERN, 'expected a secret name');
const events = z
  .array(z.enum([...NOTIFICATION_EVENTS, 'all'], { message: `expected one of ${[...NOTIFICATION_EVENTS, 'all'].join(', ')}` }))
  .nonempty('expected at least one event, or [all]');
const httpUrl = z
  .string()
  .url('expected an http(s) URL')
  .refine((u) => /^https?:\/\//i.test(u), 'expected an http(s) URL');

/** Exactly one of `url` and `url_secret` (the URL kept in the SecretStore, as Slack webhook URLs are secrets). */
const oneUrl = (t: { url?: string; url_secret?: string }) => (t.url === undefined) !== (t.url_secret === undefined);
const ONE_URL = { message: 'expected either url or url_secret (not both)', path: ['url'] };

/** Pub/Sub topic ids: 3-255 characters, a letter first, not starting with "goog". */
const TOPIC_PATTERN = /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;

export const notificationTargetSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('webhook'),
      url: httpUrl.optional(),
      url_secret: secretName.optional(),
      /** Signs each body with HMAC-SHA256 under this secret's value. */
      signing_secret: secretName.optional(),
      events,
    })
    .strict()
    .refine(oneUrl, ONE_URL),
  z
    .object({ type: z.literal('slack'), url: httpUrl.optional(), url_secret: secretName.optional(), events })
    .strict()
    .refine(oneUrl, ONE_URL),
  z
    .object({
      type: z.literal('pubsub'),
      topic: z.string().regex(TOPIC_PATTERN, 'expected a Pub/Sub topic id (3-255 characters, a letter first, not "goog...")'),
      events,
    })
    .strict(),
]);
export const notificationsSchema = z.array(notificationTargetSchema);
export type NotificationTarget = z.infer<typeof notificationTargetSchema>;

/** What a notification carries: the event `notifications test` sends is `test`. */
export type NotificationKind = NotificationEvent | 'test';

/**
 * The one document every target gets (webhooks as JSON, Slack as a message, Pub/Sub as the data
 * of a message with attributes for filters). Built from recorded facts only: never a secret.
 */
export interface NotificationMessage {
  event: NotificationKind;
  /** The convergence.yaml environment the event happened in. */
  env: string;
  /** ISO 8601 */
  occurred_at: string;
  /** One readable sentence: what happened. */
  summary: string;
  tenant_id?: string;
  pipeline_id?: string;
  run_id?: string;
  status?: string;
  exit_code?: number;
  /** The error that ended the run or the operation, secrets redacted. */
  error?: string;
  counts?: Record<string, number>;
  /** Where to look next: the `convergence pipeline logs <id>` command, a Cloud console URL. */
  links?: Record<string, string>;
}

/** Whether a target subscribed to `event` (every target gets `test`). */
export const targetWants = (target: NotificationTarget, event: NotificationKind): boolean =>
  event === 'test' || target.events.some((e) => e === 'all' || e === event);
