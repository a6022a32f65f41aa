import { createHmac } from 'node:crypto';
import type { NotificationMessage } from '../../domain/notifications.ts';
import { postJson } from './http-post.ts';
import { shownUrl, type Notifier } from './port.ts';

const SIGNATURE_HEADER = 'x-convergence-signature';
export const TIMESTAMP_HEADER = 'x-convergence-timestamp';

/**
 * The signature of a webhook body: `sha256=` and the hex HMAC-SHA256, under the signing secret,
 * of `<timestamp>.<body>`. The timestamp is signed with the body so a captured request cannot be
 * replayed later with a fresh timestamp; receivers refuse old timestamps.
 */
function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** A webhook: the message as one JSON document, signed when the target has a signing secret. */
export class WebhookNotifier implements Notifier {
  readonly describe: string;
  readonly #url: string;
  readonly #signingSecret: string | undefined;
  readonly #allowPrivate: boolean;

  constructor(options: { url: string; signingSecret?: string; allowPrivate: boolean }) {
    this.#url = options.url;
    this.#signingSecret = options.signingSecret;
    this.#allowPrivate = options.allowPrivate;
    this.describe = shownUrl(options.url);
  }

  send(message: NotificationMessage, signal: AbortSignal): Promise<string> {
    const body = JSON.stringify(message);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'user-agent': 'convergence-notifier',
      'x-convergence-event': message.event,
      [TIMESTAMP_HEADER]: timestamp,
    };
    if (this.#signingSecret) headers[SIGNATURE_HEADER] = webhookSignature(this.#signingSecret, timestamp, body);
    return postJson({ url: this.#url, body, headers, allowPrivate: this.#allowPrivate, signal });
  }
}
