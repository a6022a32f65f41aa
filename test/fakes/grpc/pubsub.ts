/**
 * google.pubsub.v1.Publisher as notification delivery meets it: topics under projects/P/topics/T,
 * Publish with Pub/Sub's documented limits (10 MB per request, 1000 messages, 100 attributes per
 * message, keys up to 256 bytes and values up to 1024 bytes, no empty message), GetTopic, and the
 * service's answers: NOT_FOUND "Resource not found (resource=<topic>)." for a missing topic and
 * PERMISSION_DENIED "User not authorized to perform this action." for a caller without
 * roles/pubsub.publisher on the topic.
 *
 * Callers: the operator (no token) holds `granted`, project-wide; a service account (a token the
 * fakes minted, see caller.ts) may publish only to topics it was made a publisher of
 * (grantPublisher). Test hooks: createTopic, published(topic) for what landed.
 */
import { currentCaller } from './caller.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const PUBSUB_PERMISSIONS = ['pubsub.topics.publish', 'pubsub.topics.get'] as const;
/** What roles/pubsub.publisher grants on a topic. */
const PUBLISHER_ROLE = new Set(['pubsub.topics.publish']);

const PROTOS = protosJsonOf('@google-cloud/pubsub');
const SERVICE = 'google.pubsub.v1.Publisher';
const TOPIC_NAME = /^projects\/([^/]+)\/topics\/((?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254})$/;
const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
const MAX_MESSAGES = 1000;
const MAX_ATTRIBUTES = 100;
const MAX_KEY_BYTES = 256;
const MAX_VALUE_BYTES = 1024;

export interface PublishedMessage {
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: Date;
  /** Who published it: undefined for the operator, else the service account. */
  publisher: string | undefined;
}

interface Topic {
  name: string;
  labels: Record<string, string>;
  publishers: Set<string>;
  messages: PublishedMessage[];
}

const invalid = (message: string) => new FakeStatus(status.INVALID_ARGUMENT, message);
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

export class PubSubFake implements FakeService {
  /** Permissions the operator holds, project-wide. Tests remove some to see PERMISSION_DENIED. */
  granted = new Set<string>(PUBSUB_PERMISSIONS);
  readonly #topics = new Map<string, Topic>();
  #nextId = 1;

  /** Creates a topic, as `gcloud pubsub topics create` would. */
  createTopic(project: string, topicId: string): string {
    const name = `projects/${project}/topics/${topicId}`;
    if (!TOPIC_NAME.test(name)) throw new Error(`invalid topic id ${topicId}`);
    if (!this.#topics.has(name)) this.#topics.set(name, { name, labels: {}, publishers: new Set(), messages: [] });
    return name;
  }

  /** Gives a service account roles/pubsub.publisher on a topic. */
  grantPublisher(topicName: string, serviceAccount: string): void {
    this.#topic(topicName).publishers.add(serviceAccount);
  }

  /** What was published to a topic, oldest first. */
  published(topicName: string): PublishedMessage[] {
    return [...(this.#topics.get(topicName)?.messages ?? [])];
  }

  iamPermissions(resource: string): ReadonlySet<string> | undefined {
    if (!TOPIC_NAME.test(resource)) return undefined;
    return this.#permissions(this.#topic(resource));
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: PROTOS,
        service: SERVICE,
        handlers: {
          GetTopic: (request) => {
            const topic = this.#topic(this.#name(String(request.topic ?? '')));
            this.#require(topic, 'pubsub.topics.get');
            return { name: topic.name, labels: topic.labels };
          },
          Publish: (request) => this.#publish(request),
        },
      },
    ];
  }

  #publish(request: Record<string, unknown>): { messageIds: string[] } {
    const topic = this.#topic(this.#name(String(request.topic ?? '')));
    this.#require(topic, 'pubsub.topics.publish');
    const messages = (request.messages ?? []) as Array<{ data?: Uint8Array | null; attributes?: Record<string, string> | null }>;
    if (messages.length === 0) throw invalid('The request contains no messages.');
    if (messages.length > MAX_MESSAGES) throw invalid(`The number of messages in the request exceeds the limit: ${MAX_MESSAGES}.`);
    let size = bytes(topic.name);
    for (const message of messages) {
      const data = Buffer.from(message.data ?? []);
      const attributes = message.attributes ?? {};
      const entries = Object.entries(attributes);
      if (data.length === 0 && entries.length === 0) throw invalid('Some messages are empty: a message needs data or attributes.');
      if (entries.length > MAX_ATTRIBUTES) throw invalid(`A message has more than ${MAX_ATTRIBUTES} attributes.`);
      for (const [key, value] of entries) {
        if (key.startsWith('goog')) throw invalid(`Attribute keys may not start with "goog": ${key}.`);
        if (bytes(key) > MAX_KEY_BYTES) throw invalid(`An attribute key exceeds the limit of ${MAX_KEY_BYTES} bytes.`);
        if (bytes(value) > MAX_VALUE_BYTES) throw invalid(`An attribute value exceeds the limit of ${MAX_VALUE_BYTES} bytes.`);
        size += bytes(key) + bytes(value);
      }
      size += data.length;
    }
    if (size > MAX_REQUEST_BYTES) throw invalid(`Request payload size exceeds the limit: ${MAX_REQUEST_BYTES} bytes.`);
    const publisher = currentCaller();
    const messageIds = messages.map((message) => {
      const messageId = String(this.#nextId++);
      topic.messages.push({
        messageId,
        data: Buffer.from(message.data ?? []),
        attributes: { ...(message.attributes ?? {}) },
        publishTime: new Date(),
        publisher,
      });
      return messageId;
    });
    return { messageIds };
  }

  #name(name: string): string {
    if (!TOPIC_NAME.test(name)) throw invalid(`Invalid [topics] name: (name=${name})`);
    return name;
  }

  #topic(name: string): Topic {
    const topic = this.#topics.get(name);
    if (!topic) throw new FakeStatus(status.NOT_FOUND, `Resource not found (resource=${TOPIC_NAME.exec(name)?.[2] ?? name}).`);
    return topic;
  }

  #permissions(topic: Topic): ReadonlySet<string> {
    const caller = currentCaller();
    if (caller === undefined) return this.granted;
    return topic.publishers.has(caller) ? PUBLISHER_ROLE : new Set();
  }

  #require(topic: Topic, permission: string): void {
    if (!this.#permissions(topic).has(permission))
      throw new FakeStatus(status.PERMISSION_DENIED, 'User not authorized to perform this action.');
  }
}
