import type { PubSub } from '@google-cloud/pubsub';
import type { NotificationMessage } from '../../domain/notifications.ts';
import { SendFailure, type Notifier } from './port.ts';

/** gRPC status codes a later attempt may get past (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, DEADLINE_EXCEEDED, UNKNOWN). */
const RETRYABLE = new Set([14, 8, 10, 13, 4, 2]);
/** PERMISSION_DENIED, UNAUTHENTICATED */
const AUTH = new Set([7, 16]);
/** One attempt's limit; the delivery service retries. */
const ATTEMPT_TIMEOUT_MS = 8_000;

/**
 * The attributes a subscription filters on (`attributes.event = "run_failed"`): only those the
 * message has, as Pub/Sub keeps attribute values as strings.
 */
function pubsubAttributes(message: NotificationMessage): Record<string, string> {
  const attributes: Record<string, string> = { event: message.event, env: message.env };
  if (message.tenant_id) attributes.tenant_id = message.tenant_id;
  if (message.pipeline_id) attributes.pipeline_id = message.pipeline_id;
  if (message.status) attributes.status = message.status;
  return attributes;
}

/** A Pub/Sub topic of the environment's project: the message as JSON data, with attributes. */
export class PubSubNotifier implements Notifier {
  readonly describe: string;
  readonly #client: PubSub;
  readonly #topic: string;

  constructor(options: { client: PubSub; topic: string }) {
    this.#client = options.client;
    this.#topic = options.topic;
    this.describe = `topic ${options.topic}`;
  }

  async send(message: NotificationMessage, signal: AbortSignal): Promise<string> {
    // Retries are the delivery service's: the client's own would wait up to 10 minutes.
    const topic = this.#client.topic(this.#topic, { gaxOpts: { timeout: ATTEMPT_TIMEOUT_MS, retry: null } as never });
    const published = topic.publishMessage({ data: Buffer.from(JSON.stringify(message)), attributes: pubsubAttributes(message) });
    try {
      const id = await abortable(published, signal);
      return `message ${id}`;
    } catch (err) {
      throw publishFailure(this.#topic, err, signal);
    }
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function publishFailure(topic: string, err: unknown, signal: AbortSignal): SendFailure {
  if (signal.aborted) return new SendFailure(`topic ${topic} did not answer in time`, { retryable: true });
  const { code, details } = err as { code?: number; details?: string };
  const why = details || (err instanceof Error ? err.message : String(err));
  if (code === 5) {
    return new SendFailure(`topic ${topic} does not exist: ${why}`, { retryable: false });
  }
  return new SendFailure(`publishing to topic ${topic} failed: ${why}`, {
    retryable: code !== undefined && RETRYABLE.has(code),
    auth: code !== undefined && AUTH.has(code),
  });
}
