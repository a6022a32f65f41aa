import type { NotificationMessage } from '../../domain/notifications.ts';

/**
 * Notifier port: sends one notification to one target. Retries, secrets and recording are the
 * delivery service's business; an adapter makes one attempt and says how it went.
 */
export interface Notifier {
  /** The target as it may be shown and recorded: a host, a topic, never a URL path or a secret. */
  readonly describe: string;
  /** One attempt; resolves with what the target answered ("HTTP 204", "message 42"), or throws SendFailure. */
  send(message: NotificationMessage, signal: AbortSignal): Promise<string>;
}

/** A target whose secrets are already resolved, as the factory's adapters take it. */
export type NotifierTarget =
  | {
      type: 'webhook';
      url: string;
      /** HMAC-SHA256 key of the signature header. */
      signingSecret?: string;
      /** Loopback and private addresses allowed: only for targets the operator wrote. */
      allowPrivate: boolean;
    }
  | { type: 'slack'; url: string; allowPrivate: boolean }
  | { type: 'pubsub'; topic: string };

export interface SendFailureDetails {
  /** The same message may get through later (a 5xx, a 429, a reset connection). */
  retryable: boolean;
  /** The wait the target asked for (HTTP Retry-After). */
  retryAfterMs?: number;
  /** Refused for credentials or permissions (HTTP 401/403, PERMISSION_DENIED). */
  auth?: boolean;
  /** Refused before sending: the target may not be reached at all (a private address). */
  refused?: boolean;
}

/** Why one attempt failed; its message never holds a secret or a URL path. */
export class SendFailure extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly auth: boolean;
  readonly refused: boolean;

  constructor(message: string, details: SendFailureDetails) {
    super(message);
    this.name = 'SendFailure';
    this.retryable = details.retryable;
    this.retryAfterMs = details.retryAfterMs;
    this.auth = details.auth ?? false;
    this.refused = details.refused ?? false;
  }
}

/** A URL as it may be shown: scheme and host, without path, query or credentials (webhook paths carry tokens). */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'an invalid URL';
  }
}
