/**
 * google.longrunning.Operations, which Google serves beside every API whose methods return
 * operations (Cloud Run's create/update/delete/run). gax polls GetOperation until `done` and then
 * decodes `response` / `metadata` (google.protobuf.Any) with the message type the method declares,
 * so operations here carry Any values packed from the API's own protos.json.
 *
 * An operation is a driver: poll() is asked for the current state when the operation starts and on
 * every GetOperation / WaitOperation until it reports done; the final state is then kept. Modules
 * either write their own driver (a job execution that finishes after N looks) or use start(), which
 * counts polls: done at once by default, or on the Nth poll (setPolls) so clients' polling runs.
 * Work a module defers to completion (a revision turning ready) goes in start()'s complete().
 */
import protobuf from 'protobufjs';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status, type GrpcCode } from './status.ts';

/** google.protobuf.Any as protobufjs serializes it (the JSON descriptors keep `type_url`). */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

export interface OperationError {
  code: GrpcCode;
  message: string;
}

export type OperationState =
  { done: false; metadata?: AnyMessage } | { done: true; metadata?: AnyMessage; response?: AnyMessage; error?: OperationError };

export interface OperationDriver {
  poll(): OperationState;
}

export interface CountedOperation {
  /** Metadata while pending and once done (Run sends the resource in both). */
  metadata(): AnyMessage | undefined;
  /** Runs once, on the poll that completes the operation: the response, or a FakeStatus thrown for `error`. */
  complete(): AnyMessage | undefined;
  /** Polls until done for this operation; the module-wide setting when left out. */
  polls?: number;
}

interface Stored {
  name: string;
  driver: OperationDriver;
  state: OperationState;
  polls: number;
}

const roots = new Map<string, protobuf.Root>();

/** Packs `value` as `type` (e.g. google.cloud.run.v2.Service) using the API's own protos.json. */
export function packAny(protosJson: string, type: string, value: Record<string, unknown>): AnyMessage {
  let root = roots.get(protosJson);
  if (!root) {
    root = protobuf.Root.fromJSON(JSON.parse(readFileSync(protosJson, 'utf8')));
    roots.set(protosJson, root);
  }
  const messageType = root.lookupType(type);
  return { type_url: `type.googleapis.com/${type}`, value: Buffer.from(messageType.encode(messageType.fromObject(value)).finish()) };
}

/** A google.protobuf.Timestamp as gax encodes it. */
export const timestamp = (date: Date | undefined) =>
  date ? { seconds: String(Math.floor(date.getTime() / 1000)), nanos: (date.getTime() % 1000) * 1_000_000 } : null;

/** Offset paging with opaque tokens, as list methods answer; `max` caps what a client may ask for. */
export function paginate<T>(all: T[], request: Record<string, unknown>, max: number): { items: T[]; nextPageToken: string } {
  const requested = Number(request.pageSize) || max;
  if (requested < 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'page_size must not be negative.');
  const size = Math.min(requested, max);
  let offset = 0;
  if (request.pageToken) {
    const decoded = Buffer.from(String(request.pageToken), 'base64url').toString('utf8');
    offset = decoded.startsWith('offset:') ? Number(decoded.slice('offset:'.length)) : NaN;
    if (!Number.isInteger(offset) || offset < 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Invalid page token.');
  }
  const items = all.slice(offset, offset + size);
  const nextPageToken = offset + size < all.length ? Buffer.from(`offset:${offset + size}`).toString('base64url') : '';
  return { items, nextPageToken };
}

// Service Usage names its operations operations/<id>, outside any location.
const OPERATION_NAME = /^(?:(projects\/[^/]+\/locations\/[^/]+)\/)?operations\/[^/]+$/;
// WaitOperation drives an operation to the end in one call; a driver that never finishes must not hang the fake.
const WAIT_LIMIT = 10_000;

export class OperationsFake implements FakeService {
  readonly #operations = new Map<string, Stored>();
  #defaultPolls = 0;

  /**
   * How many GetOperation polls an operation started with start() needs before it is done: 0
   * (default) answers done from the starting call, N > 0 makes clients poll N times.
   */
  setPolls(polls: number): void {
    if (!Number.isInteger(polls) || polls < 0) throw new Error(`polls must be a non-negative integer, got ${polls}`);
    this.#defaultPolls = polls;
  }

  get defaultPolls(): number {
    return this.#defaultPolls;
  }

  /**
   * Starts an operation that completes after `polls` looks; returns it as the starting call answers.
   * `location` '' starts a global one (operations/<id>), as Service Usage's are.
   */
  start(location: string, operation: CountedOperation): Record<string, unknown> {
    let remaining = operation.polls ?? this.#defaultPolls;
    let final: OperationState | undefined;
    return this.startDriven(location, {
      poll: () => {
        if (final) return final;
        if (remaining > 0) {
          remaining -= 1;
          const metadata = operation.metadata();
          return metadata ? { done: false, metadata } : { done: false };
        }
        try {
          const response = operation.complete();
          final = { done: true, ...optional('response', response) };
        } catch (err) {
          if (!(err instanceof FakeStatus)) throw err;
          final = { done: true, error: { code: err.code, message: err.message } };
        }
        const metadata = operation.metadata();
        if (metadata) final.metadata = metadata;
        return final;
      },
    });
  }

  /** Starts an operation whose state a module computes itself (see OperationDriver). */
  startDriven(location: string, driver: OperationDriver): Record<string, unknown> {
    if (location !== '' && !/^projects\/[^/]+\/locations\/[^/]+$/.test(location)) throw new Error(`not a location: ${location}`);
    const name = location === '' ? `operations/${randomUUID()}` : `${location}/operations/${randomUUID()}`;
    const stored: Stored = { name, driver, state: { done: false }, polls: 0 };
    this.#operations.set(name, stored);
    stored.state = driver.poll();
    return this.#describe(stored);
  }

  /**
   * Drives an operation to its end without counting polls, for a module about to change the
   * resource the operation works on: the earlier change has to have landed first.
   */
  settle(name: string): void {
    const stored = this.#operations.get(name);
    for (let round = 0; stored && round < WAIT_LIMIT && !stored.state.done; round += 1) stored.state = stored.driver.poll();
  }

  /** The operation as GetOperation would answer, without counting as a poll. */
  peek(name: string): Record<string, unknown> | undefined {
    const stored = this.#operations.get(name);
    return stored && this.#describe(stored);
  }

  /** How many times clients polled an operation (GetOperation and WaitOperation rounds). */
  pollCount(name: string): number {
    return this.#operations.get(name)?.polls ?? 0;
  }

  /** Names of every operation started so far, oldest first. */
  names(): string[] {
    return [...this.#operations.keys()];
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: protosJsonOf('google-gax', 'build/protos/operations.json'),
        service: 'google.longrunning.Operations',
        handlers: {
          GetOperation: (request) => this.#describe(this.#poll(this.#find(String(request.name)))),
          WaitOperation: (request) => {
            const stored = this.#find(String(request.name));
            for (let round = 0; round < WAIT_LIMIT && !stored.state.done; round += 1) this.#poll(stored);
            return this.#describe(stored);
          },
          ListOperations: (request) => {
            const parent = String(request.name);
            if (!/^projects\/[^/]+\/locations\/[^/]+$/.test(parent)) {
              throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${parent}`);
            }
            if (request.filter) throw new FakeStatus(status.UNIMPLEMENTED, 'the fake does not evaluate operation filters');
            const all = [...this.#operations.values()].filter((stored) => OPERATION_NAME.exec(stored.name)?.[1] === parent);
            const { items, nextPageToken } = paginate(all, request, 1000);
            return { operations: items.map((stored) => this.#describe(stored)), nextPageToken };
          },
          DeleteOperation: (request) => {
            const stored = this.#find(String(request.name));
            this.#operations.delete(stored.name);
            return {};
          },
        },
      },
    ];
  }

  #find(name: string): Stored {
    if (!OPERATION_NAME.test(name)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid operation name: ${name}`);
    const stored = this.#operations.get(name);
    if (!stored) throw new FakeStatus(status.NOT_FOUND, `Operation ${name} not found.`);
    return stored;
  }

  #poll(stored: Stored): Stored {
    if (!stored.state.done) {
      stored.polls += 1;
      stored.state = stored.driver.poll();
    }
    return stored;
  }

  #describe(stored: Stored): Record<string, unknown> {
    const { state } = stored;
    const described: Record<string, unknown> = { name: stored.name, done: state.done, metadata: state.metadata ?? null };
    if (state.done && state.error) described.error = { code: state.error.code, message: state.error.message, details: [] };
    else if (state.done && state.response) described.response = state.response;
    return described;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
