/**
 * An in-process Cloud Storage JSON API for tests: the official @google-cloud/storage client talks to
 * it over a real socket on 127.0.0.1. It covers the object routes the client uses for upload
 * (media, multipart, resumable), download, metadata get/patch, delete and list, plus bucket get,
 * and enforces what callers rely on in production: generation and metageneration preconditions
 * with GCS's status codes and error shapes, generations that only grow, CRC32C/MD5 hashes the
 * client validates, and per-bucket permission denial. Faults (429, 5xx) can be injected before or
 * after a request takes effect, the latter to reproduce a write whose response was lost.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { asCaller, currentCaller } from '../grpc/caller.ts';
import { FakePolicy, type FakeBinding } from '../grpc/iam-policy.ts';

export interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  generation: number;
  metageneration: number;
  metadata?: Record<string, string>;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  timeCreated: string;
  updated: string;
}

export interface Fault {
  method?: string;
  path?: RegExp;
  status: number;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Error body; defaults to GCS's own body for the status. */
  body?: unknown;
  /** Let the request take effect, then answer with the fault: a write whose response was lost. */
  afterApply?: boolean;
}

export interface LoggedRequest {
  method: string;
  /** Path with object names decoded, e.g. `/storage/v1/b/state/o/locks/x.json`. */
  path: string;
  query: Record<string, string>;
  status: number;
  /** Set when the status came from an injected fault. */
  injected?: boolean;
}

export interface Denial {
  /** Shown in the 403 message, as GCS names the caller. */
  principal?: string;
  /** Denied permissions; default every object and bucket permission. */
  permissions?: string[];
  /**
   * Service accounts holding a role on the bucket: calls carrying their token (impersonation
   * through the IAM Credentials fake) are not denied. The operator's token-less calls always are.
   */
  grantedTo?: string[];
}

const ALL_PERMISSIONS = [
  'storage.objects.get',
  'storage.objects.list',
  'storage.objects.create',
  'storage.objects.delete',
  'storage.objects.update',
  'storage.buckets.get',
];

const PRECONDITION_MESSAGE = 'At least one of the pre-conditions you specified did not hold.';
const BUCKET_MISSING_MESSAGE = 'The specified bucket does not exist.';
const WRITABLE_FIELDS = ['contentType', 'metadata', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage'] as const;

class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown, message = `HTTP ${status}`) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function apiError(status: number, reason: string, message: string, extra: Record<string, string> = {}): HttpError {
  return new HttpError(status, { error: { code: status, message, errors: [{ message, domain: 'global', reason, ...extra }] } }, message);
}

const preconditionFailed = () => apiError(412, 'conditionNotMet', PRECONDITION_MESSAGE, { locationType: 'header', location: 'If-Match' });
const objectMissing = (bucket: string, name: string) => apiError(404, 'notFound', `No such object: ${bucket}/${name}`);
const bucketMissing = () => apiError(404, 'notFound', BUCKET_MISSING_MESSAGE);
const invalid = (message: string) => apiError(400, 'invalid', message);

const DEFAULT_FAULT_BODIES: Record<number, [string, string]> = {
  429: [
    'rateLimitExceeded',
    'The object exceeded the rate limit for object mutation operations (create, update, and delete). Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429.',
  ],
  500: ['backendError', 'We encountered an internal error. Please try again.'],
  502: ['backendError', 'Bad Gateway'],
  503: ['backendError', 'We encountered an internal error. Please try again.'],
  504: ['backendError', 'Gateway Timeout'],
};

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) as GCS reports it: base64 of the big-endian 32-bit value. */
export function crc32cBase64(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

const md5Base64 = (data: Buffer) => createHash('md5').update(data).digest('base64');

interface Bucket {
  name: string;
  objects: Map<string, StoredObject>;
  denial?: Denial;
  timeCreated: string;
  location: string;
  uniformAccess: boolean;
  publicAccessPrevention: string;
  versioning: boolean;
  metageneration: number;
  policy: FakePolicy;
  /** Another project's bucket: its name is taken, and nothing in it answers this caller. */
  foreign?: boolean;
}

/** Settings of a bucket made by test setup; the defaults are what the fake always answered. */
export interface BucketSettings {
  location?: string;
  uniformAccess?: boolean;
  publicAccessPrevention?: string;
  versioning?: boolean;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;
const NAME_NOT_AVAILABLE =
  'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.';
const ALREADY_OWNED = 'Your previous request to create the named bucket succeeded and you already own it.';

interface UploadSession {
  bucket: string;
  name: string;
  query: URLSearchParams;
  resource: Record<string, unknown>;
  chunks: Buffer[];
  received: number;
  done?: StoredObject;
}

interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

interface Reply {
  status: number;
  json?: unknown;
  text?: string;
  media?: { object: StoredObject };
  headers?: Record<string, string>;
}

export class GcsFake {
  readonly requests: LoggedRequest[] = [];
  readonly #server: http.Server;
  readonly #buckets = new Map<string, Bucket>();
  #projectDenied = new Set<string>();
  readonly #faults: (Fault & { remaining: number })[] = [];
  readonly #sessions = new Map<string, UploadSession>();
  #lastGeneration = 0;
  #endpoint = '';

  private constructor() {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  static async start(options: { buckets?: string[] } = {}): Promise<GcsFake> {
    const fake = new GcsFake();
    for (const name of options.buckets ?? []) fake.addBucket(name);
    await new Promise<void>((resolve, reject) => {
      fake.#server.once('error', reject);
      fake.#server.listen(0, '127.0.0.1', () => resolve());
    });
    fake.#endpoint = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** `apiEndpoint` for the Storage client. */
  get endpoint(): string {
    return this.#endpoint;
  }

  addBucket(name: string, settings: BucketSettings = {}): void {
    if (this.#buckets.has(name)) return;
    this.#buckets.set(name, {
      name,
      objects: new Map(),
      timeCreated: new Date().toISOString(),
      location: settings.location ?? 'US',
      uniformAccess: settings.uniformAccess ?? true,
      publicAccessPrevention: settings.publicAccessPrevention ?? 'enforced',
      versioning: settings.versioning ?? false,
      metageneration: 1,
      policy: new FakePolicy(),
    });
  }

  /** A bucket of another project: creating the name answers "not available", reading it 403. */
  addForeignBucket(name: string): void {
    this.addBucket(name);
    this.#bucket(name).foreign = true;
  }

  /** Project-level permissions the operator lacks (storage.buckets.create), as IAM answers them. */
  denyProject(permissions: string[]): void {
    this.#projectDenied = new Set(permissions);
  }

  /** A bucket's settings and IAM policy, for assertions and concurrent writers in tests. */
  bucketState(name: string): Readonly<Omit<Bucket, 'objects'>> {
    return this.#bucket(name);
  }

  /** Answers 403 for the given permissions on a bucket, as IAM does for a caller lacking a role. */
  deny(bucket: string, denial: Denial = {}): void {
    this.#bucket(bucket).denial = denial;
  }

  allow(bucket: string): void {
    delete this.#bucket(bucket).denial;
  }

  inject(fault: Fault): void {
    this.#faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Why the current caller may not read objects of `bucket` (storage.objects.get), or undefined; for the BigQuery fake's load jobs. */
  readDenied(bucket: string): string | undefined {
    try {
      this.#check(this.#bucket(bucket), 'storage.objects.get');
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  hasBucket(name: string): boolean {
    return this.#buckets.has(name);
  }

  object(bucket: string, name: string): StoredObject | undefined {
    return this.#buckets.get(bucket)?.objects.get(name);
  }

  objects(bucket: string): StoredObject[] {
    return [...(this.#buckets.get(bucket)?.objects.values() ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Writes an object directly, bypassing preconditions and faults (test setup). */
  putObject(bucket: string, name: string, data: string | Buffer, contentType = 'application/octet-stream'): StoredObject {
    return this.#store(this.#bucket(bucket), name, Buffer.from(data), { contentType });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #bucket(name: string): Bucket {
    const bucket = this.#buckets.get(name);
    if (!bucket) throw new Error(`no bucket ${name} in the fake`);
    return bucket;
  }

  /** Like GCS, generations are microsecond timestamps, and never repeat or go back. */
  #nextGeneration(): number {
    this.#lastGeneration = Math.max(this.#lastGeneration + 1, Date.now() * 1000);
    return this.#lastGeneration;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const segments = url.pathname.split('/').map((part) => decodeURIComponent(part));
    const logged: LoggedRequest = { method, path: segments.join('/'), query: Object.fromEntries(url.searchParams), status: 0 };
    this.requests.push(logged);
    let reply: Reply;
    try {
      const body = await readBody(req);
      const fault = this.#takeFault(method, logged.path);
      if (fault && !fault.afterApply) {
        reply = this.#faultReply(fault);
        logged.injected = true;
      } else {
        // Everything below runs synchronously once the body is in, so a precondition check and the
        // write it guards are atomic, as they are in GCS.
        reply = asCaller(req.headers.authorization, () => this.#route(method, url, segments, req.headers, body));
        if (fault) {
          reply = this.#faultReply(fault);
          logged.injected = true;
        }
      }
    } catch (err) {
      if (!(err instanceof HttpError)) {
        reply = { status: 500, json: { error: { code: 500, message: String(err), errors: [{ reason: 'backendError' }] } } };
      } else {
        const media = url.searchParams.get('alt') === 'media';
        // Media downloads answer errors with the message as plain text, not the JSON error object.
        if (err.status === 304) reply = { status: 304 };
        else reply = media ? { status: err.status, text: err.message } : { status: err.status, json: err.body };
      }
    }
    logged.status = reply.status;
    this.#send(res, reply);
  }

  #takeFault(method: string, path: string): Fault | undefined {
    const index = this.#faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || f.path.test(path)));
    if (index < 0) return undefined;
    const fault = this.#faults[index]!;
    if (--fault.remaining <= 0) this.#faults.splice(index, 1);
    return fault;
  }

  #faultReply(fault: Fault): Reply {
    if (fault.body !== undefined) return { status: fault.status, json: fault.body };
    const [reason, message] = DEFAULT_FAULT_BODIES[fault.status] ?? ['backendError', `HTTP ${fault.status}`];
    return { status: fault.status, json: apiError(fault.status, reason, message).body };
  }

  #send(res: http.ServerResponse, reply: Reply): void {
    const headers: Record<string, string> = { ...reply.headers };
    if (reply.media) {
      const { object } = reply.media;
      Object.assign(headers, {
        'content-type': object.contentType,
        'content-length': String(object.data.length),
        'x-goog-generation': String(object.generation),
        'x-goog-metageneration': String(object.metageneration),
        'x-goog-stored-content-encoding': object.contentEncoding ?? 'identity',
        'x-goog-stored-content-length': String(object.data.length),
        'x-goog-hash': `crc32c=${crc32cBase64(object.data)},md5=${md5Base64(object.data)}`,
        'x-goog-storage-class': 'STANDARD',
      });
      res.writeHead(reply.status, headers).end(object.data);
      return;
    }
    if (reply.json !== undefined) {
      res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(reply.json));
      return;
    }
    if (reply.text !== undefined) {
      res.writeHead(reply.status, { ...headers, 'content-type': 'text/plain; charset=UTF-8' }).end(reply.text);
      return;
    }
    res.writeHead(reply.status, headers).end();
  }

  #route(method: string, url: URL, segments: string[], headers: http.IncomingHttpHeaders, body: Buffer): Reply {
    const q = url.searchParams;
    // ['', 'storage', 'v1', 'b', bucket, 'o', ...name] or with a leading 'upload' / 'download'.
    const lead = segments[1] === 'upload' || segments[1] === 'download' ? segments[1] : undefined;
    const base = lead ? segments.slice(1) : segments;
    if (!lead && base[1] === 'storage' && base[2] === 'v1' && base[3] === 'b' && !base[4] && method === 'POST') {
      return this.#insertBucket(q, body);
    }
    if (base[1] !== 'storage' || base[2] !== 'v1' || base[3] !== 'b' || !base[4]) throw apiError(404, 'notFound', 'Not Found');
    const bucketName = base[4];
    const rest = base.slice(5);

    if (lead === 'upload') {
      const bucket = this.#existing(bucketName);
      if (method === 'POST' && rest.length === 1 && rest[0] === 'o') return this.#upload(bucket, q, headers, body);
      if (method === 'PUT' && rest.length === 1 && rest[0] === 'o' && q.get('upload_id')) return this.#resume(q, headers, body);
      throw apiError(404, 'notFound', 'Not Found');
    }

    const bucket = this.#existing(bucketName);
    if (rest.length === 0) {
      if (method === 'PATCH') return this.#patchBucket(bucket, body);
      if (method !== 'GET') throw apiError(405, 'methodNotAllowed', 'Method not allowed');
      this.#check(bucket, 'storage.buckets.get', 'bucket');
      return { status: 200, json: this.#bucketResource(bucket) };
    }
    if (rest.length === 1 && rest[0] === 'iam') return this.#bucketIam(bucket, method, body);
    if (rest[0] !== 'o') throw apiError(404, 'notFound', 'Not Found');
    if (rest.length === 1) {
      if (method !== 'GET') throw apiError(405, 'methodNotAllowed', 'Method not allowed');
      this.#check(bucket, 'storage.objects.list');
      return { status: 200, json: this.#list(bucket, q) };
    }
    const name = rest.slice(1).join('/');
    const conditions = preconditions(q);
    const wanted = q.get('generation');
    switch (method) {
      case 'GET': {
        this.#check(bucket, 'storage.objects.get');
        const object = this.#read(bucket, name, wanted, conditions);
        if (q.get('alt') === 'media' || lead === 'download') return { status: 200, media: { object } };
        return { status: 200, json: this.#resource(object) };
      }
      case 'DELETE': {
        this.#check(bucket, 'storage.objects.delete');
        const object = this.#live(bucket, name, wanted);
        assertWritePreconditions(object, conditions);
        bucket.objects.delete(name);
        return { status: 204 };
      }
      case 'PATCH':
      case 'PUT': {
        this.#check(bucket, 'storage.objects.update');
        const object = this.#live(bucket, name, wanted);
        assertWritePreconditions(object, conditions);
        const patch = parseJson(body) as Record<string, unknown>;
        applyFields(object, patch, method === 'PUT');
        object.metageneration += 1;
        object.updated = new Date().toISOString();
        return { status: 200, json: this.#resource(object) };
      }
      default:
        throw apiError(405, 'methodNotAllowed', 'Method not allowed');
    }
  }

  #insertBucket(q: URLSearchParams, body: Buffer): Reply {
    if (!q.get('project')) throw apiError(400, 'required', 'Required parameter: project');
    this.#checkProject('storage.buckets.create', q.get('project')!);
    const resource = parseJson(body) as Record<string, unknown>;
    const name = String(resource.name ?? '');
    if (!BUCKET_NAME.test(name)) throw invalid('Invalid bucket name: ' + JSON.stringify(name));
    const existing = this.#buckets.get(name);
    if (existing) throw apiError(409, 'conflict', existing.foreign ? NAME_NOT_AVAILABLE : ALREADY_OWNED);
    const iam = (resource.iamConfiguration ?? {}) as { uniformBucketLevelAccess?: { enabled?: boolean }; publicAccessPrevention?: string };
    this.addBucket(name, {
      location: String(resource.location ?? 'US').toUpperCase(),
      uniformAccess: iam.uniformBucketLevelAccess?.enabled === true,
      publicAccessPrevention: iam.publicAccessPrevention ?? 'inherited',
      versioning: (resource.versioning as { enabled?: boolean } | undefined)?.enabled === true,
    });
    return { status: 200, json: this.#bucketResource(this.#bucket(name)) };
  }

  #patchBucket(bucket: Bucket, body: Buffer): Reply {
    this.#check(bucket, 'storage.buckets.update', 'bucket');
    const patch = parseJson(body) as Record<string, unknown>;
    const iam = patch.iamConfiguration as { uniformBucketLevelAccess?: { enabled?: boolean }; publicAccessPrevention?: string } | undefined;
    if (iam?.uniformBucketLevelAccess?.enabled !== undefined) bucket.uniformAccess = iam.uniformBucketLevelAccess.enabled;
    if (iam?.publicAccessPrevention !== undefined) bucket.publicAccessPrevention = iam.publicAccessPrevention;
    const versioning = patch.versioning as { enabled?: boolean } | undefined;
    if (versioning?.enabled !== undefined) bucket.versioning = versioning.enabled;
    if (patch.location !== undefined && String(patch.location).toUpperCase() !== bucket.location) {
      throw invalid('The location of a bucket cannot be changed.');
    }
    bucket.metageneration += 1;
    return { status: 200, json: this.#bucketResource(bucket) };
  }

  /** buckets.getIamPolicy / setIamPolicy: a stale etag is refused with 412, as Storage does. */
  #bucketIam(bucket: Bucket, method: string, body: Buffer): Reply {
    const described = () => ({
      kind: 'storage#policy',
      resourceId: `projects/_/buckets/${bucket.name}`,
      version: 1,
      bindings: bucket.policy.bindings,
      etag: bucket.policy.etag,
    });
    if (method === 'GET') {
      this.#check(bucket, 'storage.buckets.getIamPolicy', 'bucket');
      return { status: 200, json: described() };
    }
    if (method !== 'PUT') throw apiError(405, 'methodNotAllowed', 'Method not allowed');
    this.#check(bucket, 'storage.buckets.setIamPolicy', 'bucket');
    const wanted = parseJson(body) as { bindings?: FakeBinding[]; etag?: string };
    if (!bucket.policy.set(wanted.bindings ?? [], wanted.etag || undefined)) throw preconditionFailed();
    return { status: 200, json: described() };
  }

  #checkProject(permission: string, project: string): void {
    if (!this.#projectDenied.has(permission)) return;
    const who = currentCaller() || 'convergence-runner@p.iam.gserviceaccount.com';
    throw apiError(
      403,
      'forbidden',
      `${who} does not have ${permission} access to the Google Cloud project. Permission '${permission}' denied on resource (or it may not exist).`,
      {
        location: project,
      },
    );
  }

  #existing(name: string): Bucket {
    const bucket = this.#buckets.get(name);
    if (!bucket) throw bucketMissing();
    return bucket;
  }

  #check(bucket: Bucket, permission: string, kind: 'object' | 'bucket' = 'object'): void {
    if (bucket.foreign) {
      const who = currentCaller() || 'convergence-runner@p.iam.gserviceaccount.com';
      throw apiError(
        403,
        'forbidden',
        `${who} does not have ${permission} access to the Google Cloud Storage ${kind}. Permission '${permission}' denied on resource (or it may not exist).`,
      );
    }
    const denial = bucket.denial;
    if (!denial || !(denial.permissions ?? ALL_PERMISSIONS).includes(permission)) return;
    const caller = currentCaller();
    if (caller && denial.grantedTo?.includes(caller)) return;
    const who = caller || (denial.principal ?? 'convergence-runner@p.iam.gserviceaccount.com');
    throw apiError(
      403,
      'forbidden',
      `${who} does not have ${permission} access to the Google Cloud Storage ${kind}. Permission '${permission}' denied on resource (or it may not exist).`,
    );
  }

  /** The live object, or 404; a `generation` other than the live one is a version we do not keep. */
  #live(bucket: Bucket, name: string, generation: string | null): StoredObject {
    const object = bucket.objects.get(name);
    if (!object || (generation !== null && String(object.generation) !== generation)) throw objectMissing(bucket.name, name);
    return object;
  }

  #read(bucket: Bucket, name: string, generation: string | null, c: Preconditions): StoredObject {
    const object = this.#live(bucket, name, generation);
    if (c.ifGenerationMatch !== undefined && object.generation !== c.ifGenerationMatch) throw preconditionFailed();
    if (c.ifMetagenerationMatch !== undefined && object.metageneration !== c.ifMetagenerationMatch) throw preconditionFailed();
    // Reads treat the NotMatch conditions like If-None-Match: unchanged content is 304, not 412.
    if (c.ifGenerationNotMatch !== undefined && object.generation === c.ifGenerationNotMatch) throw new HttpError(304, undefined);
    if (c.ifMetagenerationNotMatch !== undefined && object.metageneration === c.ifMetagenerationNotMatch) {
      throw new HttpError(304, undefined);
    }
    return object;
  }

  #upload(bucket: Bucket, q: URLSearchParams, headers: http.IncomingHttpHeaders, body: Buffer): Reply {
    const uploadType = q.get('uploadType');
    if (uploadType === 'resumable') {
      const resource = body.length ? (parseJson(body) as Record<string, unknown>) : {};
      const name = q.get('name') ?? (typeof resource.name === 'string' ? resource.name : undefined);
      if (!name) throw apiError(400, 'required', 'Required');
      const type = headers['x-upload-content-type'];
      if (typeof type === 'string' && !resource.contentType) resource.contentType = type;
      this.#check(bucket, 'storage.objects.create');
      const id = randomBytes(12).toString('hex');
      this.#sessions.set(id, { bucket: bucket.name, name, query: new URLSearchParams(q), resource, chunks: [], received: 0 });
      const location = new URL(`${this.#endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket.name)}/o`);
      location.searchParams.set('uploadType', 'resumable');
      location.searchParams.set('name', name);
      location.searchParams.set('upload_id', id);
      return { status: 200, headers: { location: location.toString() } };
    }
    let resource: Record<string, unknown>;
    let data: Buffer;
    if (uploadType === 'multipart') {
      const parts = parseMultipart(headers['content-type'] ?? '', body);
      if (parts.length !== 2) throw invalid(`multipart upload needs 2 parts, got ${parts.length}`);
      resource = parseJson(parts[0]!.body) as Record<string, unknown>;
      data = parts[1]!.body;
      if (!resource.contentType && parts[1]!.contentType) resource.contentType = parts[1]!.contentType;
    } else if (uploadType === 'media') {
      resource = {};
      data = body;
      const type = headers['content-type'];
      if (type) resource.contentType = type;
    } else {
      throw invalid(`unsupported uploadType ${uploadType}`);
    }
    const name = q.get('name') ?? (typeof resource.name === 'string' ? resource.name : undefined);
    if (!name) throw apiError(400, 'required', 'Required');
    return { status: 200, json: this.#resource(this.#commit(bucket, name, q, resource, data)) };
  }

  #resume(q: URLSearchParams, headers: http.IncomingHttpHeaders, body: Buffer): Reply {
    const session = this.#sessions.get(q.get('upload_id')!);
    if (!session) throw apiError(404, 'notFound', 'No such upload session');
    if (session.done) return { status: 200, json: this.#resource(session.done) };
    const range = /^bytes (\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(String(headers['content-range'] ?? `bytes */${body.length}`));
    if (!range) throw invalid(`bad Content-Range ${headers['content-range']}`);
    if (range[2] !== undefined) {
      const start = Number(range[2]);
      if (start > session.received) throw invalid(`chunk starts at ${start}, have ${session.received}`);
      const fresh = body.subarray(session.received - start);
      session.chunks.push(fresh);
      session.received += fresh.length;
    }
    const total = range[4] === '*' ? undefined : Number(range[4]);
    // An open range (`bytes N-*/*`) is how the client streams the rest of an upload of unknown size
    // in one request: the request's end is the object's end.
    const final = (total !== undefined && session.received >= total) || range[3] === '*';
    if (final) {
      const bucket = this.#existing(session.bucket);
      const object = this.#commit(bucket, session.name, session.query, session.resource, Buffer.concat(session.chunks));
      session.done = object;
      return { status: 200, json: this.#resource(object) };
    }
    return { status: 308, headers: session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {} };
  }

  /** Creates or replaces an object, subject to the request's preconditions (evaluated at commit). */
  #commit(bucket: Bucket, name: string, q: URLSearchParams, resource: Record<string, unknown>, data: Buffer): StoredObject {
    const existing = bucket.objects.get(name);
    // Replacing an object is a delete as well as a create, which is why objectCreator is not enough.
    this.#check(bucket, 'storage.objects.create');
    if (existing) this.#check(bucket, 'storage.objects.delete');
    assertWritePreconditions(existing, preconditions(q));
    return this.#store(bucket, name, data, resource);
  }

  #store(bucket: Bucket, name: string, data: Buffer, resource: Record<string, unknown>): StoredObject {
    const now = new Date().toISOString();
    const object: StoredObject = {
      bucket: bucket.name,
      name,
      data,
      contentType: 'application/octet-stream',
      generation: this.#nextGeneration(),
      metageneration: 1,
      timeCreated: now,
      updated: now,
    };
    applyFields(object, resource, false);
    bucket.objects.set(name, object);
    return object;
  }

  #list(bucket: Bucket, q: URLSearchParams): Record<string, unknown> {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startOffset = q.get('startOffset') ?? '';
    const endOffset = q.get('endOffset');
    const maxResults = Math.min(Number(q.get('maxResults') ?? 1000) || 1000, 1000);
    const after = q.get('pageToken') ? Buffer.from(q.get('pageToken')!, 'base64url').toString('utf8') : undefined;
    const names = [...bucket.objects.keys()]
      .filter((name) => name.startsWith(prefix) && name >= startOffset && (endOffset === null || name < endOffset))
      .sort();
    // Objects and prefixes share one ordered stream of entries, as pages in GCS do.
    const entries: { key: string; object?: StoredObject }[] = [];
    const seenPrefixes = new Set<string>();
    for (const name of names) {
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) {
        const common = name.slice(0, cut + delimiter.length);
        if (!seenPrefixes.has(common)) {
          seenPrefixes.add(common);
          entries.push({ key: common });
        }
      } else {
        entries.push({ key: name, object: bucket.objects.get(name)! });
      }
    }
    const remaining = after === undefined ? entries : entries.filter((entry) => entry.key > after);
    const page = remaining.slice(0, maxResults);
    const result: Record<string, unknown> = { kind: 'storage#objects' };
    const items = page.filter((entry) => entry.object).map((entry) => this.#resource(entry.object!));
    const prefixes = page.filter((entry) => !entry.object).map((entry) => entry.key);
    if (items.length) result.items = items;
    if (prefixes.length) result.prefixes = prefixes;
    if (remaining.length > page.length) result.nextPageToken = Buffer.from(page.at(-1)!.key, 'utf8').toString('base64url');
    return result;
  }

  #resource(object: StoredObject): Record<string, unknown> {
    const encoded = encodeURIComponent(object.name);
    const resource: Record<string, unknown> = {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      selfLink: `${this.#endpoint}/storage/v1/b/${object.bucket}/o/${encoded}`,
      mediaLink: `${this.#endpoint}/download/storage/v1/b/${object.bucket}/o/${encoded}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket: object.bucket,
      generation: String(object.generation),
      metageneration: String(object.metageneration),
      contentType: object.contentType,
      storageClass: 'STANDARD',
      size: String(object.data.length),
      md5Hash: md5Base64(object.data),
      crc32c: crc32cBase64(object.data),
      etag: Buffer.from(`${object.generation}/${object.metageneration}`).toString('base64'),
      timeCreated: object.timeCreated,
      updated: object.updated,
      timeStorageClassUpdated: object.timeCreated,
    };
    for (const field of WRITABLE_FIELDS) if (field !== 'contentType' && object[field] !== undefined) resource[field] = object[field];
    return resource;
  }

  #bucketResource(bucket: Bucket): Record<string, unknown> {
    return {
      kind: 'storage#bucket',
      selfLink: `${this.#endpoint}/storage/v1/b/${bucket.name}`,
      id: bucket.name,
      name: bucket.name,
      projectNumber: '123456789012',
      metageneration: String(bucket.metageneration),
      location: bucket.location,
      storageClass: 'STANDARD',
      etag: 'CAE=',
      timeCreated: bucket.timeCreated,
      updated: bucket.timeCreated,
      iamConfiguration: {
        uniformBucketLevelAccess: { enabled: bucket.uniformAccess },
        publicAccessPrevention: bucket.publicAccessPrevention,
      },
      ...(bucket.versioning ? { versioning: { enabled: true } } : {}),
      locationType: 'multi-region',
    };
  }
}

function preconditions(q: URLSearchParams): Preconditions {
  const out: Preconditions = {};
  for (const key of ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const) {
    const raw = q.get(key);
    if (raw === null) continue;
    if (!/^\d+$/.test(raw)) throw invalid(`Invalid value for ${key}: ${raw}`);
    out[key] = Number(raw);
  }
  return out;
}

/**
 * GCS write semantics: ifGenerationMatch=0 means "must not exist"; every other condition needs a
 * live object to hold, so it fails (412) when there is none.
 */
function assertWritePreconditions(object: StoredObject | undefined, c: Preconditions): void {
  if (c.ifGenerationMatch !== undefined) {
    if (c.ifGenerationMatch === 0 ? object !== undefined : object?.generation !== c.ifGenerationMatch) throw preconditionFailed();
  }
  if (c.ifGenerationNotMatch !== undefined && (!object || object.generation === c.ifGenerationNotMatch)) throw preconditionFailed();
  if (c.ifMetagenerationMatch !== undefined && object?.metageneration !== c.ifMetagenerationMatch) throw preconditionFailed();
  if (c.ifMetagenerationNotMatch !== undefined && (!object || object.metageneration === c.ifMetagenerationNotMatch)) {
    throw preconditionFailed();
  }
}

function applyFields(object: StoredObject, fields: Record<string, unknown>, replace: boolean): void {
  for (const field of WRITABLE_FIELDS) {
    if (!(field in fields)) {
      if (replace && field !== 'contentType') delete object[field];
      continue;
    }
    const value = fields[field];
    if (field === 'metadata') {
      if (value === null) delete object.metadata;
      else if (typeof value === 'object') {
        // A patch merges custom metadata key by key; a null value removes that key.
        const merged: Record<string, string> = replace ? {} : { ...object.metadata };
        for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
          if (v === null) delete merged[key];
          else merged[key] = String(v);
        }
        object.metadata = merged;
      }
    } else if (field === 'contentType') {
      if (typeof value === 'string') object.contentType = value;
    } else if (value === null) {
      delete object[field];
    } else if (typeof value === 'string') {
      object[field] = value;
    }
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    throw apiError(400, 'parseError', 'Parse Error');
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseMultipart(contentType: string, body: Buffer): { contentType?: string; body: Buffer }[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!/^multipart\/related/i.test(contentType) || !boundary) throw invalid(`expected multipart/related, got ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { contentType?: string; body: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    // Each part: CRLF, headers, blank line, body, CRLF before the next delimiter.
    const raw = body.subarray(start, next);
    const headerEnd = raw.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw invalid('malformed multipart part');
    const headerText = raw.subarray(0, headerEnd).toString('utf8');
    let content = raw.subarray(headerEnd + 4);
    if (content.subarray(-2).toString() === '\r\n') content = content.subarray(0, -2);
    const type = /^content-type:\s*(.+)$/im.exec(headerText)?.[1]?.trim();
    parts.push(type ? { contentType: type, body: content } : { body: content });
    at = next;
  }
  return parts;
}
