/**
 * What the Cloud Run fake's services/revisions part and its jobs/executions part share: the
 * protos, resource names, permissions, conditions, etags and canonical forms of specs.
 */
import type { RunPolicies } from './run-iam.ts';
import { crc32c } from '@aws-crypto/crc32c';
import protobuf from 'protobufjs';
import { readFileSync } from 'node:fs';
import { packAny, timestamp, type AnyMessage, type OperationsFake } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import { FakeStatus, status } from './status.ts';

export const RUN_PROTOS = protosJsonOf('@google-cloud/run');
const PACKAGE = 'google.cloud.run.v2';

export const RUN_PERMISSIONS = [
  'run.services.create',
  'run.services.get',
  'run.services.list',
  'run.services.update',
  'run.services.delete',
  'run.revisions.get',
  'run.revisions.list',
  'run.revisions.delete',
  'run.jobs.create',
  'run.jobs.get',
  'run.jobs.list',
  'run.jobs.update',
  'run.jobs.delete',
  'run.jobs.run',
  'run.jobs.runWithOverrides',
  'run.jobs.getIamPolicy',
  'run.jobs.setIamPolicy',
  'run.executions.get',
  'run.executions.list',
  'run.executions.cancel',
  'run.executions.delete',
] as const;

export type Message = Record<string, unknown>;

export interface Location {
  project: string;
  region: string;
  /** projects/P/locations/L */
  path: string;
}

export function parseLocation(parent: string): Location {
  const match = /^projects\/([^/]+)\/locations\/([^/]+)$/.exec(parent);
  if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${parent}`);
  return { project: match[1]!, region: match[2]!, path: parent };
}

/** projects/P/locations/L/<collection>/<id>[/<sub>/<subId>] */
export function parseName(name: string, collection: string, sub?: string): { location: Location; id: string; subId?: string } {
  const pattern = sub
    ? new RegExp(`^(projects/[^/]+/locations/[^/]+)/${collection}/([^/]+)/${sub}/([^/]+)$`)
    : new RegExp(`^(projects/[^/]+/locations/[^/]+)/${collection}/([^/]+)$`);
  const match = pattern.exec(name);
  if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${name}`);
  return { location: parseLocation(match[1]!), id: match[2]!, ...(sub ? { subId: match[3]! } : {}) };
}

/** Cloud Run's NOT_FOUND wording. */
export function notFound(kind: 'SERVICE' | 'REVISION' | 'JOB' | 'EXECUTION', id: string, location: Location): FakeStatus {
  return new FakeStatus(
    status.NOT_FOUND,
    `Resource '${id}' of kind '${kind}' in region '${location.region}' in project '${location.project}' does not exist.`,
  );
}

export function denied(permission: string, resource: string): FakeStatus {
  return new FakeStatus(
    status.PERMISSION_DENIED,
    `Permission '${permission}' denied on resource '${resource}' (or resource may not exist).`,
  );
}

/** Lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen. */
export const isDnsLabel = (value: string, max: number) => value.length <= max && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(value);

const ENV_RESERVED = new Set([
  'PORT',
  'K_SERVICE',
  'K_REVISION',
  'K_CONFIGURATION',
  'CLOUD_RUN_JOB',
  'CLOUD_RUN_EXECUTION',
  'CLOUD_RUN_TASK_INDEX',
  'CLOUD_RUN_TASK_ATTEMPT',
  'CLOUD_RUN_TASK_COUNT',
]);

/** Containers need an image; the platform's own variables cannot be set by users. */
export function checkContainers(containers: unknown, field: string): Message[] {
  const list = (containers ?? []) as Message[];
  if (list.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, `${field}: at least one container is required.`);
  list.forEach((container, index) => {
    if (!container.image) throw new FakeStatus(status.INVALID_ARGUMENT, `${field}[${index}].image: Field is required.`);
    checkEnv(container.env, `${field}[${index}].env`);
  });
  return list;
}

export function checkEnv(env: unknown, field: string): void {
  for (const variable of (env ?? []) as Message[]) {
    const name = String(variable.name ?? '');
    if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(name)) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `${field}: '${name}' is not a valid environment variable name.`);
    }
    if (ENV_RESERVED.has(name)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `${field}: The following reserved env names were provided: ${name}. These values are automatically set by the system.`,
      );
    }
  }
}

let root: protobuf.Root | undefined;
const runRoot = () => (root ??= protobuf.Root.fromJSON(JSON.parse(readFileSync(RUN_PROTOS, 'utf8'))));

/**
 * A message in the form the gRPC layer decodes requests into (defaults filled, enums as names,
 * int64 as strings). Specs are stored this way so "did the template change" compares like with
 * like, whether a field came from the client's first request or from a GET it sent back.
 */
export function normalize(type: string, value: unknown): Message {
  const messageType = runRoot().lookupType(`${PACKAGE}.${type}`);
  const message = messageType.decode(messageType.encode(messageType.fromObject((value ?? {}) as Message)).finish());
  return messageType.toObject(message, { longs: String, enums: String, defaults: true, arrays: true, objects: true }) as Message;
}

/** Key-order independent JSON, for comparing specs. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item) && !Buffer.isBuffer(item) && !(item instanceof Uint8Array)
      ? Object.fromEntries(Object.entries(item as Message).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}

export const pack = (type: string, value: Message): AnyMessage => packAny(RUN_PROTOS, `${PACKAGE}.${type}`, value);

export type ConditionState = 'CONDITION_PENDING' | 'CONDITION_RECONCILING' | 'CONDITION_FAILED' | 'CONDITION_SUCCEEDED';

export function condition(type: string, state: ConditionState, at: Date, extra: Message = {}): Message {
  return {
    type,
    state,
    message: '',
    lastTransitionTime: timestamp(at),
    severity: state === 'CONDITION_FAILED' ? 'ERROR' : 'SEVERITY_UNSPECIFIED',
    ...extra,
  };
}

/** ABORTED on a stale etag, the code AIP-154 gives (HTTP 409); an empty etag skips the check. */
export function checkEtag(sent: string, current: string, id: string): void {
  if (sent && sent !== current) {
    throw new FakeStatus(
      status.ABORTED,
      `Conflict for resource '${id}': the etag ${sent} in the request does not match the current etag ${current}. Read the resource again and retry.`,
    );
  }
}

/** Quoted and opaque like Run's; changes with every write of the resource, status writes included. */
export const etagOf = (uid: string, serial: number) => `"${Buffer.from(`${uid}/${serial}`).toString('base64url')}"`;

/** Stable pseudo-random lowercase/digit string for generated names (revision and execution suffixes). */
export function suffix(seed: string, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  let state = crc32c(Buffer.from(seed));
  for (let i = 0; i < length; i += 1) {
    state = crc32c(Buffer.from(`${state}:${seed}:${i}`));
    out += alphabet[state % alphabet.length];
  }
  return out;
}

/** The a.run.app host part a project and region get, stable per project/region. */
export const hostHash = (location: Location) => suffix(`${location.project}/${location.region}`, 10);

export function durationSeconds(duration: unknown): number | undefined {
  if (!duration || typeof duration !== 'object') return undefined;
  const { seconds, nanos } = duration as { seconds?: unknown; nanos?: unknown };
  return Number(seconds ?? 0) + Number(nanos ?? 0) / 1e9;
}

export const seconds = (value: number) => ({ seconds: String(Math.floor(value)), nanos: Math.round((value % 1) * 1e9) });

/** Field-mask paths (snake_case or camelCase, dotted) applied from `source` onto a copy of `target`. */
export function applyMask(target: Message, source: Message, paths: string[], allowed: ReadonlySet<string>): Message {
  const result = structuredClone(target);
  for (const raw of paths) {
    const path = raw.split('.').map((part) => part.replace(/_([a-z])/g, (_m, letter: string) => letter.toUpperCase()));
    if (!allowed.has(path[0]!)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid field mask path: '${raw}'.`);
    let from: unknown = source;
    let to: Message = result;
    for (const [index, part] of path.entries()) {
      const last = index === path.length - 1;
      from = from && typeof from === 'object' ? (from as Message)[part] : undefined;
      if (last) to[part] = structuredClone(from ?? null);
      else {
        if (!to[part] || typeof to[part] !== 'object') to[part] = {};
        to = to[part] as Message;
      }
    }
  }
  return result;
}

/** Field names of a google.cloud.run.v2 message, as the JSON descriptors spell them. */
export const fieldsOf = (type: string): string[] => Object.keys(runRoot().lookupType(`${PACKAGE}.${type}`).fields);

/** Shared by the services and jobs parts: the operations store, permissions and one clock. */
export interface RunContext {
  operations: OperationsFake;
  require(permission: string, resource: string): void;
  /** The IAM policies of services and jobs. */
  policies: RunPolicies;
  /** Strictly increasing, so "newest by create time" never ties. */
  now(): Date;
}
