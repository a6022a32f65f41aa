/**
 * An in-process BigQuery REST API on 127.0.0.1, for tests that drive the official
 * @google-cloud/bigquery client over a real socket. It serves the routes the client uses
 * (datasets, tables, tabledata, jobs, queries, multipart media uploads), keeps data in DuckDB
 * (./engine.ts), answers with BigQuery's resource and error shapes, and lets a test inject faults
 * and read back every request it received.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { asCaller } from '../grpc/caller.ts';
import { Engine, validateLabels, type ExternalTable, type QueryOutput, type TableMeta } from './engine.ts';
import { FakeError, REASON_STATUS, invalid, notFound } from './errors.ts';
import { parseMultipart } from './multipart.ts';
import { externalTableConfig, objectsToParquet, readObjects, type ObjectLoadConfig, type ObjectStore } from './object-source.ts';
import { encodeRow, jsonCellText, type EncodeOptions, type Field } from './values.ts';

export interface LoggedRequest {
  method: string;
  path: string;
  /** Route name as in the REST reference: datasets.insert, jobs.insert, jobs.getQueryResults, ... */
  route: string;
  query: Record<string, string>;
  /** Parsed JSON body; for a media upload, the job resource part. */
  body: unknown;
  /** Size of the uploaded media, for jobs.insert through the upload endpoint. */
  uploadBytes?: number;
  status: number;
  /** The Authorization header as sent (tests of impersonation read whose token a job carried). */
  authorization?: string;
}

/** A query as a test reads it back, from either route that runs one (queriesSent). */
export interface SentQuery {
  request: LoggedRequest;
  query: string;
  queryParameters?: Array<{ name?: string; parameterType: { type: string }; parameterValue: { value?: string } }>;
  labels?: Record<string, string> | undefined;
  dryRun?: boolean | undefined;
  /** jobs.query only. */
  jobCreationMode?: string;
  requestId?: string;
}

export interface Fault {
  /** Route name ('jobs.insert') or a RegExp tested on `${METHOD} ${path}`; every request when omitted. */
  route?: string | RegExp;
  /** Narrows the match further, e.g. on the body. */
  when?: (request: LoggedRequest) => boolean;
  /** HTTP status; defaults to the status BigQuery uses for `reason`. */
  status?: number;
  reason?: string;
  message?: string;
  /** How many matching requests fail; default 1. */
  times?: number;
  /** Process the request first, then answer with the error: a response lost on the way back. */
  after?: boolean;
}

export interface JobFault {
  /** Tested on the query text, or on `load <dataset>.<table>` for load jobs; every job when omitted. */
  match?: RegExp;
  reason: string;
  message?: string;
  times?: number;
}

export interface JobRecord {
  kind: 'bigquery#job';
  id: string;
  etag: string;
  selfLink: string;
  user_email: string;
  jobReference: { projectId: string; jobId: string; location: string };
  configuration: Record<string, unknown> & {
    query?: Record<string, unknown>;
    load?: Record<string, unknown>;
    labels?: Record<string, string>;
    dryRun?: boolean;
  };
  status: {
    state: 'PENDING' | 'RUNNING' | 'DONE';
    errorResult?: { reason: string; message: string };
    errors?: Array<{ reason: string; message: string }>;
  };
  statistics: Record<string, unknown>;
  /** Not part of the resource: what the job produced, and polls left before it reports DONE. */
  output?: QueryOutput;
  pendingPolls: number;
}

export interface FakeBigQueryOptions {
  projectId?: string;
  /** Rows per page when a request does not say (real BigQuery pages by size, around 10 MB). */
  pageSize?: number;
  /** jobs.get / getQueryResults calls that report a new job as RUNNING before it is DONE. */
  pendingPolls?: number;
}

interface Route {
  name: string;
  method: string;
  pattern: RegExp;
  upload?: boolean;
}

const ID = '([^/]+)';
const ROUTES: Route[] = [
  { name: 'jobs.insert', method: 'POST', pattern: new RegExp(`^/upload/bigquery/v2/projects/${ID}/jobs$`), upload: true },
  { name: 'datasets.insert', method: 'POST', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets$`) },
  { name: 'datasets.list', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets$`) },
  { name: 'datasets.get', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}$`) },
  { name: 'datasets.patch', method: 'PATCH', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}$`) },
  { name: 'datasets.update', method: 'PUT', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}$`) },
  { name: 'datasets.delete', method: 'DELETE', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}$`) },
  { name: 'tables.insert', method: 'POST', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables$`) },
  { name: 'tables.list', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables$`) },
  { name: 'tables.get', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}$`) },
  { name: 'tables.patch', method: 'PATCH', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}$`) },
  { name: 'tables.update', method: 'PUT', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}$`) },
  { name: 'tables.delete', method: 'DELETE', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}$`) },
  { name: 'tabledata.list', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}/data$`) },
  {
    name: 'tabledata.insertAll',
    method: 'POST',
    pattern: new RegExp(`^/bigquery/v2/projects/${ID}/datasets/${ID}/tables/${ID}/insertAll$`),
  },
  { name: 'jobs.insert', method: 'POST', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/jobs$`) },
  { name: 'jobs.list', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/jobs$`) },
  { name: 'jobs.get', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/jobs/${ID}$`) },
  { name: 'jobs.cancel', method: 'POST', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/jobs/${ID}/cancel$`) },
  { name: 'jobs.delete', method: 'DELETE', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/jobs/${ID}/delete$`) },
  { name: 'jobs.query', method: 'POST', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/queries$`) },
  { name: 'jobs.getQueryResults', method: 'GET', pattern: new RegExp(`^/bigquery/v2/projects/${ID}/queries/${ID}$`) },
];

const JOB_ID = /^[A-Za-z0-9_-]{1,1024}$/;
const JOB_CREATION_MODES = new Set(['JOB_CREATION_MODE_UNSPECIFIED', 'JOB_CREATION_REQUIRED', 'JOB_CREATION_OPTIONAL']);
/** Statements a JOB_CREATION_OPTIONAL query runs without a job in this fake: single queries and DML, no scripts or DDL. */
const STATELESS_STATEMENTS = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE']);
/** How long BigQuery recognises a repeated jobs.query requestId. */
const REQUEST_ID_LIFETIME_MS = 15 * 60_000;

export class FakeBigQuery {
  readonly projectId: string;
  readonly requests: LoggedRequest[] = [];
  readonly jobs = new Map<string, JobRecord>();
  /** How many times each job id was executed (a duplicate insert must not run a job twice). */
  readonly executions = new Map<string, number>();
  readonly engine: Engine;
  readonly #pageSize: number;
  readonly #pendingPolls: number;
  readonly #faults: Array<Fault & { left: number }> = [];
  readonly #jobFaults: Array<JobFault & { left: number }> = [];
  /** Jobs still running, by id: jobs.insert answers while they run, as BigQuery does. */
  readonly #running = new Map<string, Promise<void>>();
  /** jobs.query answers by requestId, sent back for a repeated request (see #query). */
  readonly #answeredRequests = new Map<string, { sameRequest: string; answer: Record<string, unknown>; at: number }>();
  #server: http.Server | undefined;
  #tmp = '';
  #objectStore: ObjectStore | undefined;
  readonly #expiredResults = new Set<string>();
  #port = 0;

  private constructor(options: FakeBigQueryOptions) {
    this.projectId = options.projectId ?? 'test-project';
    this.#pageSize = options.pageSize ?? 10_000;
    this.#pendingPolls = options.pendingPolls ?? 0;
    this.engine = new Engine(this.projectId);
  }

  static async start(options: FakeBigQueryOptions = {}): Promise<FakeBigQuery> {
    const fake = new FakeBigQuery(options);
    await fake.engine.open();
    fake.#tmp = await mkdtemp(path.join(os.tmpdir(), 'fake-bigquery-'));
    fake.#server = http.createServer((req, res) => void fake.#handle(req, res));
    await new Promise<void>((resolve) => fake.#server!.listen(0, '127.0.0.1', resolve));
    fake.#port = (fake.#server.address() as AddressInfo).port;
    return fake;
  }

  /** The apiEndpoint to give the client. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async stop(): Promise<void> {
    this.engine.holds.releaseAll();
    await Promise.allSettled(this.#running.values());
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.engine.close();
    await rm(this.#tmp, { recursive: true, force: true });
  }

  /** Makes matching HTTP requests fail (429 rateLimitExceeded, 500 backendError, 403 accessDenied, ...). */
  inject(fault: Fault): void {
    this.#faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** Makes matching jobs finish DONE with this errorResult instead of running. */
  failJobs(fault: JobFault): void {
    this.#jobFaults.push({ ...fault, left: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.#faults.length = 0;
    this.#jobFaults.length = 0;
  }

  /** Requests that reached a route, e.g. requestsTo('jobs.insert'). */
  requestsTo(route: string): LoggedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  /**
   * The query requests received, jobs.insert query jobs and jobs.query requests alike, each with
   * its query text, parameters and labels wherever the request held them.
   */
  queriesSent(): SentQuery[] {
    return this.requests.flatMap((r): SentQuery[] => {
      const body = (r.body ?? {}) as Record<string, unknown> & { configuration?: JobRecord['configuration'] };
      if (r.route === 'jobs.query') return [{ request: r, ...(body as Omit<SentQuery, 'request'>) }];
      const query = body.configuration?.query as Omit<SentQuery, 'request'> | undefined;
      if (r.route !== 'jobs.insert' || !query) return [];
      return [{ request: r, ...query, labels: body.configuration?.labels, dryRun: body.configuration?.dryRun }];
    });
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const query = Object.fromEntries(url.searchParams.entries());
    const entry: LoggedRequest = { method, path: url.pathname, route: 'unknown', query, body: undefined, status: 0 };
    if (typeof req.headers.authorization === 'string') entry.authorization = req.headers.authorization;
    this.requests.push(entry);

    const send = (status: number, body?: unknown) => {
      entry.status = status;
      if (body === undefined) {
        res.writeHead(status).end();
        return;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) }).end(text);
    };

    let upload: Buffer | undefined;
    try {
      const match = ROUTES.map((r) => ({ route: r, m: r.method === method ? r.pattern.exec(url.pathname) : null })).find((x) => x.m);
      if (!match?.m) throw new FakeError(404, 'notFound', `Not found: ${method} ${url.pathname}`);
      entry.route = match.route.name;
      const params = match.m.slice(1).map((p) => decodeURIComponent(p));
      if (match.route.upload) {
        if (query['uploadType'] !== 'multipart') throw invalid(`This fake accepts uploadType=multipart only, not ${query['uploadType']}`);
        const [meta, media] = parseMultipart(req.headers['content-type'], raw);
        if (!meta || !media) throw invalid('multipart upload needs a metadata part and a media part');
        entry.body = JSON.parse(meta.body.toString('utf8'));
        entry.uploadBytes = media.body.length;
        upload = media.body;
      } else if (raw.length > 0) {
        entry.body = JSON.parse(raw.toString('utf8'));
      }
      if (params[0] !== this.projectId) throw notFound(`Project ${params[0]}`);

      const fault = this.#takeFault(entry);
      if (fault && !fault.after) throw this.#faultError(fault);
      // Jobs act as their caller: a load job reads Cloud Storage with the caller's permissions.
      const [status, body] = await asCaller(entry.authorization, () => this.#dispatch(match.route.name, params.slice(1), entry, upload));
      if (fault) throw this.#faultError(fault);
      send(status, body);
    } catch (err) {
      const error = err instanceof FakeError ? err : new FakeError(500, 'internalError', (err as Error).message);
      send(error.status, error.toBody());
    }
  }

  #takeFault(entry: LoggedRequest): (Fault & { left: number }) | undefined {
    const fault = this.#faults.find((f) => {
      if (f.left <= 0) return false;
      if (f.route instanceof RegExp && !f.route.test(`${entry.method} ${entry.path}`)) return false;
      if (typeof f.route === 'string' && f.route !== entry.route) return false;
      return f.when ? f.when(entry) : true;
    });
    if (fault) fault.left--;
    return fault;
  }

  #faultError(fault: Fault): FakeError {
    const reason = fault.reason ?? 'backendError';
    const status = fault.status ?? REASON_STATUS[reason] ?? 500;
    return new FakeError(
      status,
      reason,
      fault.message ?? (reason === 'backendError' ? 'Error encountered during execution. Retrying may solve the problem.' : reason),
    );
  }

  async #dispatch(route: string, ids: string[], entry: LoggedRequest, upload: Buffer | undefined): Promise<[number, unknown]> {
    const engine = this.engine;
    const body = (entry.body ?? {}) as Record<string, unknown>;
    const q = entry.query;
    switch (route) {
      case 'datasets.insert':
        return [200, await engine.exclusive(() => engine.createDataset(body as Parameters<Engine['createDataset']>[0]))];
      case 'datasets.list': {
        const all = [...engine.datasets.values()].sort((a, b) => a.datasetReference.datasetId.localeCompare(b.datasetReference.datasetId));
        const page = this.#page(all, q);
        return [
          200,
          {
            kind: 'bigquery#datasetList',
            etag: 'e',
            datasets: page.items.map((d) => ({
              kind: d.kind,
              id: d.id,
              datasetReference: d.datasetReference,
              location: d.location,
              labels: d.labels,
            })),
            ...(page.next ? { nextPageToken: page.next } : {}),
          },
        ];
      }
      case 'datasets.get':
        return [200, engine.dataset(ids[0]!)];
      case 'datasets.patch':
      case 'datasets.update': {
        const meta = engine.dataset(ids[0]!);
        if (body['labels'] !== undefined) {
          validateLabels(body['labels'] as Record<string, string>);
          meta.labels = body['labels'] as Record<string, string>;
        }
        if (body['description'] !== undefined) meta.description = String(body['description']);
        return [200, meta];
      }
      case 'datasets.delete':
        await engine.exclusive(() => engine.deleteDataset(ids[0]!, q['deleteContents'] === 'true'));
        return [204, undefined];
      case 'tables.insert':
        return [200, await engine.exclusive(() => engine.createTable(ids[0]!, body as Partial<TableMeta>))];
      case 'tables.list': {
        engine.dataset(ids[0]!);
        const all = [...engine.tables.values()]
          .filter((t) => t.tableReference.datasetId === ids[0])
          .sort((a, b) => a.tableReference.tableId.localeCompare(b.tableReference.tableId));
        const page = this.#page(all, q);
        return [
          200,
          {
            kind: 'bigquery#tableList',
            etag: 'e',
            totalItems: all.length,
            tables: page.items.map((t) => ({
              kind: t.kind,
              id: t.id,
              tableReference: t.tableReference,
              type: t.type,
              ...(t.timePartitioning ? { timePartitioning: t.timePartitioning } : {}),
              ...(t.clustering ? { clustering: t.clustering } : {}),
              ...(t.labels ? { labels: t.labels } : {}),
              creationTime: t.creationTime,
            })),
            ...(page.next ? { nextPageToken: page.next } : {}),
          },
        ];
      }
      case 'tables.get': {
        const meta = engine.table(ids[0]!, ids[1]!);
        // A view holds no rows of its own: BigQuery reports no numRows for it.
        if (meta.type === 'VIEW') return [200, meta];
        const rows = await engine.exclusive(() => engine.numRows(meta));
        return [200, { ...meta, numRows: String(rows), numBytes: '0' }];
      }
      case 'tables.patch':
      case 'tables.update':
        return [200, await engine.exclusive(() => engine.patchTable(ids[0]!, ids[1]!, body as Partial<TableMeta>))];
      case 'tables.delete':
        await engine.exclusive(() => engine.deleteTable(ids[0]!, ids[1]!));
        return [204, undefined];
      case 'tabledata.list': {
        const meta = engine.table(ids[0]!, ids[1]!);
        if (meta.type === 'VIEW') throw invalid('Cannot list a table of type VIEW.');
        const start = Number(q['pageToken'] ?? q['startIndex'] ?? 0);
        const size = Number(q['maxResults'] ?? this.#pageSize);
        const [rows, total] = await engine.exclusive(
          async () => [await engine.readTable(meta, start, size), await engine.numRows(meta)] as const,
        );
        const options = { int64Timestamp: q['formatOptions.useInt64Timestamp'] === 'true' };
        return [
          200,
          {
            kind: 'bigquery#tableDataList',
            etag: 'e',
            totalRows: String(total),
            rows: rows.map((r) => encodeRow(r, meta.schema.fields, options)),
            ...(start + rows.length < total ? { pageToken: String(start + rows.length) } : {}),
          },
        ];
      }
      case 'tabledata.insertAll': {
        const meta = engine.table(ids[0]!, ids[1]!);
        const rows = (body['rows'] ?? []) as Array<{ json: Record<string, unknown> }>;
        if (rows.length === 0) throw invalid('No rows present in the request.');
        const errors = await engine.exclusive(() =>
          engine.insertRows(
            meta,
            rows,
            { skipInvalidRows: body['skipInvalidRows'] === true, ignoreUnknownValues: body['ignoreUnknownValues'] === true },
            jsonCellText,
          ),
        );
        return [200, { kind: 'bigquery#tableDataInsertAllResponse', ...(errors.length ? { insertErrors: errors } : {}) }];
      }
      case 'jobs.insert':
        return [200, this.#publicJob(await this.#insertJob(body, upload))];
      case 'jobs.list': {
        // Child jobs of scripts are not kept, so a parentJobId listing is empty.
        const all = q['parentJobId'] ? [] : [...this.jobs.values()].reverse();
        const page = this.#page(all, q);
        return [
          200,
          {
            kind: 'bigquery#jobList',
            etag: 'e',
            jobs: page.items.map((j) => ({ ...this.#publicJob(j), state: j.status.state })),
            ...(page.next ? { nextPageToken: page.next } : {}),
          },
        ];
      }
      case 'jobs.get': {
        const job = this.#job(ids[0]!, q['location']);
        if (job.pendingPolls > 0) job.pendingPolls--;
        return [200, this.#publicJob(job)];
      }
      case 'jobs.cancel': {
        const job = this.#job(ids[0]!, q['location']);
        return [200, { kind: 'bigquery#jobCancelResponse', job: this.#publicJob(job) }];
      }
      case 'jobs.delete': {
        const job = this.#job(ids[0]!, q['location']);
        this.jobs.delete(job.jobReference.jobId);
        return [204, undefined];
      }
      case 'jobs.query':
        return [200, await this.#query(body, q)];
      case 'jobs.getQueryResults': {
        const job = this.#job(ids[0]!, q['location']);
        await this.#settled(job.jobReference.jobId, q['timeoutMs']);
        if (job.pendingPolls > 0 || job.status.state !== 'DONE') {
          job.pendingPolls--;
          return [200, { kind: 'bigquery#getQueryResultsResponse', etag: 'e', jobReference: job.jobReference, jobComplete: false }];
        }
        if (job.status.errorResult) throw this.#jobError(job);
        if (!job.configuration.query) throw invalid(`Job ${job.jobReference.jobId} is not a query`);
        if (this.#expiredResults.has(job.jobReference.jobId)) {
          throw notFound(
            `Table ${this.projectId}:_results.anon_${job.jobReference.jobId} was not found in location ${job.jobReference.location}`,
          );
        }
        return [200, { ...this.#results(job, q, undefined), kind: 'bigquery#getQueryResultsResponse' }];
      }
      default:
        throw notFound(route);
    }
  }

  /**
   * jobs.query. With jobCreationMode JOB_CREATION_OPTIONAL this fake, like BigQuery, answers a
   * short query without a job (a queryId, no jobReference, all rows in the answer) and keeps no
   * job for it (jobs.list does not show it). It creates a job, as BigQuery may, when the query is
   * a script or DDL (jobCreationReason OTHER), when its result does not fit one page: more rows than
   * maxResults or this fake's page size (LARGE_RESULTS), and when jobs run for a while here
   * (`pendingPolls`: the query outlasts timeoutMs, LONG_RUNNING, jobComplete false). A requestId
   * sent again within 15 minutes with the same query and parameters gets the first answer back
   * instead of running the query again; an answer that was an error is not kept.
   */
  async #query(body: Record<string, unknown>, q: Record<string, string>): Promise<Record<string, unknown>> {
    const mode = body['jobCreationMode'] ?? 'JOB_CREATION_MODE_UNSPECIFIED';
    if (!JOB_CREATION_MODES.has(String(mode))) throw invalid(`Invalid value at 'query_request.job_creation_mode' (${String(mode)})`);
    const requestId = body['requestId'];
    if (requestId !== undefined && (typeof requestId !== 'string' || !/^[\x20-\x7e]{1,36}$/.test(requestId)))
      throw invalid('requestId must be at most 36 ASCII characters');
    const sameRequest = JSON.stringify([
      body['query'],
      body['useLegacySql'],
      body['parameterMode'],
      body['queryParameters'],
      body['defaultDataset'],
    ]);
    const earlier = typeof requestId === 'string' ? this.#answeredRequests.get(requestId) : undefined;
    if (earlier && earlier.sameRequest === sameRequest && Date.now() - earlier.at < REQUEST_ID_LIFETIME_MS) return earlier.answer;

    const optional = mode === 'JOB_CREATION_OPTIONAL';
    const longRunning = optional && this.#pendingPolls > 0;
    const location = String(body['location'] ?? 'US');
    const job = await this.#insertJob(
      {
        jobReference: { projectId: this.projectId, jobId: `job_${randomUUID().replace(/-/g, '_')}`, location },
        configuration: {
          query: {
            query: body['query'],
            useLegacySql: body['useLegacySql'],
            parameterMode: body['parameterMode'],
            queryParameters: body['queryParameters'],
            defaultDataset: body['defaultDataset'],
          },
          ...(body['labels'] ? { labels: body['labels'] } : {}),
          ...(body['dryRun'] ? { dryRun: true } : {}),
        },
      },
      undefined,
      !longRunning,
    );
    const jobId = job.jobReference.jobId;
    if (longRunning) {
      return {
        kind: 'bigquery#queryResponse',
        jobReference: job.jobReference,
        jobCreationReason: { code: 'LONG_RUNNING' },
        jobComplete: false,
      };
    }
    if (job.status.errorResult) {
      if (optional) this.jobs.delete(jobId);
      throw this.#jobError(job);
    }
    const paging = { ...q, ...(body['maxResults'] ? { maxResults: String(body['maxResults']) } : {}) };
    const { jobReference, ...results } = this.#results(job, paging, body['formatOptions']);
    const reason = optional ? this.#jobCreationReason(job, Number(paging['maxResults'] ?? this.#pageSize)) : 'REQUESTED';
    const common = { kind: 'bigquery#queryResponse', location, statementType: job.output?.statementType };
    let answer: Record<string, unknown>;
    if (reason) {
      answer = { ...results, ...common, jobReference, jobCreationReason: { code: reason } };
    } else {
      this.jobs.delete(jobId);
      answer = { ...results, ...common, queryId: jobId.replace(/^job_/, 'query_') };
    }
    if (typeof requestId === 'string') this.#answeredRequests.set(requestId, { sameRequest, answer, at: Date.now() });
    return answer;
  }

  /** Why a JOB_CREATION_OPTIONAL query got a job in this fake, or undefined when it needs none. */
  #jobCreationReason(job: JobRecord, pageSize: number): string | undefined {
    const type = job.output?.statementType ?? 'SELECT';
    if (!STATELESS_STATEMENTS.has(type)) return 'OTHER';
    if ((job.output?.result?.rows.length ?? 0) > pageSize) return 'LARGE_RESULTS';
    return undefined;
  }

  #page<T>(items: T[], q: Record<string, string>): { items: T[]; next?: string } {
    const start = Number(q['pageToken'] ?? 0);
    const size = Number(q['maxResults'] ?? 1000);
    const slice = items.slice(start, start + size);
    return start + slice.length < items.length ? { items: slice, next: String(start + slice.length) } : { items: slice };
  }

  #job(jobId: string, location: string | undefined): JobRecord {
    const job = this.jobs.get(jobId);
    if (!job || (location && job.jobReference.location.toLowerCase() !== location.toLowerCase())) {
      throw notFound(`Job ${this.projectId}:${location ?? 'US'}.${jobId}`);
    }
    return job;
  }

  #jobError(job: JobRecord): FakeError {
    const error = job.status.errorResult!;
    return new FakeError(REASON_STATUS[error.reason] ?? 400, error.reason, error.message);
  }

  /** Waits for a running job up to `timeoutMs` (BigQuery's default: 10 s), as getQueryResults does. */
  async #settled(jobId: string, timeoutMs: string | undefined): Promise<void> {
    const running = this.#running.get(jobId);
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, Number(timeoutMs ?? 10_000))));
    await Promise.race([running, timeout]);
    clearTimeout(timer);
  }

  /** The job resource as the API shows it (state hidden while "running"). */
  #publicJob(job: JobRecord) {
    const { output: _output, pendingPolls, ...resource } = job;
    if (pendingPolls > 0 || resource.status.state !== 'DONE') {
      const { errorResult: _e, errors: _errs, ...status } = resource.status;
      return {
        ...resource,
        status: { ...status, state: pendingPolls > 0 ? ('RUNNING' as const) : resource.status.state },
        statistics: { creationTime: resource.statistics['creationTime'] },
      };
    }
    return resource;
  }

  #results(job: JobRecord, q: Record<string, string>, formatOptions: unknown) {
    const output = job.output;
    const fields: Field[] = output?.result?.fields ?? [];
    const rows = output?.result?.rows ?? [];
    const start = Number(q['pageToken'] ?? q['startIndex'] ?? 0);
    const size = Number(q['maxResults'] ?? this.#pageSize);
    const slice = rows.slice(start, start + size);
    const int64 =
      q['formatOptions.useInt64Timestamp'] === 'true' || (formatOptions as { useInt64Timestamp?: boolean })?.useInt64Timestamp === true;
    const options: EncodeOptions = { int64Timestamp: int64 };
    const dml = output?.dml;
    return {
      etag: 'e',
      jobReference: job.jobReference,
      jobComplete: true,
      cacheHit: false,
      totalBytesProcessed: '0',
      ...(output?.result
        ? { schema: { fields }, totalRows: String(rows.length), rows: slice.map((r) => encodeRow(r, fields, options)) }
        : { totalRows: '0' }),
      ...(output?.result && start + slice.length < rows.length ? { pageToken: String(start + slice.length) } : {}),
      ...(dml
        ? {
            numDmlAffectedRows: String(dml.affected),
            dmlStats: {
              insertedRowCount: String(dml.inserted),
              updatedRowCount: String(dml.updated),
              deletedRowCount: String(dml.deleted),
            },
          }
        : {}),
    };
  }

  /**
   * Lets a job's results expire, as BigQuery drops a query's anonymous result table after about 24
   * hours: the job is still found, getQueryResults answers notFound.
   */
  expireResults(jobId: string): void {
    this.#expiredResults.add(jobId);
  }

  /**
   * Load jobs with `sourceUris`, and query jobs with `tableDefinitions`, read the objects of this
   * store (the GCS fake), as BigQuery reads Cloud Storage.
   */
  readObjectsFrom(store: ObjectStore): void {
    this.#objectStore = store;
  }

  async #loadObjects(jobId: string, job: JobRecord, load: Record<string, unknown>, location: string): Promise<void> {
    if (!this.#objectStore) throw invalid('This fake was given no GCS fake to read sourceUris from (readObjectsFrom)');
    const folder = await mkdtemp(path.join(this.#tmp, `${jobId}-`));
    try {
      const file = path.join(folder, 'objects.parquet');
      await objectsToParquet(this.#objectStore, load as ObjectLoadConfig, folder, file);
      this.executions.set(jobId, (this.executions.get(jobId) ?? 0) + 1);
      const { outputRows } = await this.engine.load(
        { ...(load as Parameters<Engine['load']>[0]), sourceFormat: 'PARQUET' },
        file,
        location,
      );
      job.statistics['load'] = {
        inputFiles: String((load['sourceUris'] as unknown[]).length),
        outputRows: String(outputRows),
        badRecords: '0',
      };
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /**
   * Reads the objects of a query job's `tableDefinitions` (name -> ExternalDataConfiguration) as
   * the job's caller, then runs `work` with them; the files go when it is done.
   */
  async #withExternalTables<T>(jobId: string, definitions: unknown, work: (tables: ExternalTable[]) => Promise<T>): Promise<T> {
    if (definitions === undefined) return work([]);
    if (!definitions || typeof definitions !== 'object' || Array.isArray(definitions))
      throw invalid('tableDefinitions must map table names to external data configurations');
    if (!this.#objectStore) throw invalid('This fake was given no GCS fake to read tableDefinitions from (readObjectsFrom)');
    const folder = await mkdtemp(path.join(this.#tmp, `${jobId}-external-`));
    try {
      const tables: ExternalTable[] = [];
      for (const [name, definition] of Object.entries(definitions as Record<string, unknown>)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]{0,1023}$/.test(name)) throw invalid(`Invalid table name in tableDefinitions: ${name}`);
        const config = externalTableConfig(name, definition);
        const tableFolder = await mkdtemp(path.join(folder, 'table-'));
        const objects = await readObjects(this.#objectStore, config, tableFolder);
        tables.push({ name, fields: (config.schema?.fields ?? []).map((f) => f.name), objects });
      }
      return await work(tables);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  async #insertJob(body: Record<string, unknown>, upload: Buffer | undefined, viaQuery = false): Promise<JobRecord> {
    const reference = (body['jobReference'] ?? {}) as { projectId?: string; jobId?: string; location?: string };
    const jobId = reference.jobId ?? `job_${randomUUID().replace(/-/g, '_')}`;
    if (!JOB_ID.test(jobId))
      throw invalid(
        `Invalid job ID "${jobId}". Job IDs must be alphanumeric (plus underscores and dashes) and must be at most 1024 characters long.`,
      );
    const location = reference.location ?? 'US';
    if (this.jobs.has(jobId)) throw new FakeError(409, 'duplicate', `Already Exists: Job ${this.projectId}:${location}.${jobId}`);
    const configuration = (body['configuration'] ?? {}) as JobRecord['configuration'];
    validateLabels(configuration.labels);
    const created = String(Date.now());
    const job: JobRecord = {
      kind: 'bigquery#job',
      id: `${this.projectId}:${location}.${jobId}`,
      etag: randomUUID().slice(0, 12),
      selfLink: `${this.url}/bigquery/v2/projects/${this.projectId}/jobs/${jobId}?location=${location}`,
      user_email: 'fake@example.com',
      jobReference: { projectId: this.projectId, jobId, location },
      configuration,
      status: { state: 'RUNNING' },
      statistics: { creationTime: created, startTime: created },
      pendingPolls: viaQuery ? 0 : this.#pendingPolls,
    };
    this.jobs.set(jobId, job);
    // The job runs on while jobs.insert answers (RUNNING); jobs.query waits for it, and a dry run is
    // answered at once, as BigQuery validates and plans it without running anything.
    const done = this.engine
      .withConnection(() => this.#execute(job, upload))
      .catch((err: Error) => {
        job.status = { state: 'DONE', errorResult: { reason: 'internalError', message: err.message } };
      })
      .finally(() => this.#running.delete(jobId));
    this.#running.set(jobId, done);
    if (viaQuery || configuration.dryRun === true) await done;
    return job;
  }

  /** Runs a job to its end: DONE, with its output or its errorResult. */
  async #execute(job: JobRecord, upload: Buffer | undefined): Promise<void> {
    const { configuration } = job;
    const { jobId, location } = job.jobReference;

    const kind = configuration.load ? 'load' : configuration.query ? 'query' : undefined;
    const subject =
      kind === 'load'
        ? `load ${(configuration.load?.['destinationTable'] as { datasetId?: string })?.datasetId}.${(configuration.load?.['destinationTable'] as { tableId?: string })?.tableId}`
        : String(configuration.query?.['query'] ?? '');
    const jobFault = this.#jobFaults.find((f) => f.left > 0 && (!f.match || f.match.test(subject)));
    try {
      if (!kind) throw invalid('Job configuration must have one of query or load (this fake runs no copy or extract jobs)');
      if (jobFault) {
        jobFault.left--;
        throw new FakeError(
          REASON_STATUS[jobFault.reason] ?? 500,
          jobFault.reason,
          jobFault.message ?? `${jobFault.reason}: injected job failure`,
        );
      }
      if (kind === 'load' && configuration.load?.['sourceUris'] !== undefined) {
        await this.#loadObjects(jobId, job, configuration.load, location);
      } else if (kind === 'load') {
        if (!upload) throw invalid('This fake loads from uploads only, or from sourceUris once given a GCS fake (readObjectsFrom)');
        const file = path.join(this.#tmp, `${jobId}.upload`);
        await writeFile(file, upload);
        try {
          this.executions.set(jobId, (this.executions.get(jobId) ?? 0) + 1);
          const { outputRows } = await this.engine.load(configuration.load as Parameters<Engine['load']>[0], file, location);
          job.statistics['load'] = {
            inputFiles: '1',
            inputFileBytes: String(upload.length),
            outputRows: String(outputRows),
            outputBytes: '0',
            badRecords: '0',
          };
        } finally {
          await rm(file, { force: true });
        }
      } else {
        const dryRun = configuration.dryRun === true;
        if (!dryRun) this.executions.set(jobId, (this.executions.get(jobId) ?? 0) + 1);
        const output = await this.#withExternalTables(jobId, configuration.query?.['tableDefinitions'], (external) =>
          this.engine.query(configuration.query as Parameters<Engine['query']>[0], location, dryRun, external, (queued) => {
            job.status.state = queued ? 'PENDING' : 'RUNNING';
          }),
        );
        job.output = output;
        job.statistics['totalBytesProcessed'] = String(output.bytesProcessed ?? 0);
        job.statistics['query'] = {
          statementType: output.statementType,
          totalBytesProcessed: String(output.bytesProcessed ?? 0),
          totalBytesBilled: '0',
          cacheHit: false,
          ...(output.result ? { schema: { fields: output.result.fields } } : {}),
          ...(output.referencedTables
            ? {
                referencedTables: output.referencedTables.map((t) => ({
                  projectId: t.project ?? this.projectId,
                  datasetId: t.dataset,
                  tableId: t.table,
                })),
              }
            : {}),
          ...(output.dml
            ? {
                numDmlAffectedRows: String(output.dml.affected),
                dmlStats: {
                  insertedRowCount: String(output.dml.inserted),
                  updatedRowCount: String(output.dml.updated),
                  deletedRowCount: String(output.dml.deleted),
                },
              }
            : {}),
        };
        if (output.statementType === 'SCRIPT') job.statistics['numChildJobs'] = String(output.childJobs);
        if (output.destination) {
          (configuration.query as Record<string, unknown>)['destinationTable'] = { projectId: this.projectId, ...output.destination };
        }
      }
    } catch (err) {
      const error = err instanceof FakeError ? err : new FakeError(500, 'internalError', (err as Error).message);
      job.status = { state: 'DONE', errorResult: error.toErrorProto(), errors: [error.toErrorProto()] };
    }
    job.statistics['endTime'] = String(Date.now());
    if (job.status.state !== 'DONE') job.status = { state: 'DONE' };
  }
}
