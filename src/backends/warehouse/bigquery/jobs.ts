import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BigQuery, JobMetadata, QueryParameter, TableField } from '@google-cloud/bigquery';
import { backoffDelay, retry, type RetryPolicy } from '../../../lib/retry.ts';
import type { Row } from '../port.ts';
import { errorFacts, isDuplicate, isRetryable, jobErrorFacts, warehouseError, type ErrorFacts } from './errors.ts';
import { decodeRows } from './values.ts';

/**
 * Every BigQuery job the warehouse runs goes through here: labelled, polled to completion, read
 * back raw, and retried.
 *
 * Idempotency. A job id is sent with every insert. When the insert fails in transit the same id is
 * sent again, so a job that did start is found (409 duplicate) and adopted rather than run twice;
 * a new id is used only once a job is known to have failed, which changed nothing. Callers that
 * need a job to survive process restarts (load and merge jobs of a run) pass a deterministic base
 * id; retries after a failed job append `_r<n>`, and a rerun adopts the first attempt that succeeded.
 *
 * Short queries. A query that needs no job of its own (no deterministic id, no destination table,
 * no temporary external tables: metadata reads and writes) is one jobs.query request with
 * jobCreationMode JOB_CREATION_OPTIONAL: BigQuery runs it without a job and answers with its rows
 * (queryId, no jobReference), one round trip instead of jobs.insert + jobs.get + getQueryResults.
 * When BigQuery creates a job anyway (a script, a long run, a large result: jobReference in the
 * answer) that job is polled and read like any other. The same requestId goes with every attempt
 * of one call, so a write whose answer was lost is not applied twice (BigQuery keeps it 15 min).
 *
 * Retries. The client retries HTTP 429/5xx itself but not job failures, and not uploads; here a
 * job that ends with rateLimitExceeded / backendError / internalError (or loses a transaction
 * race) and a request that keeps failing transiently are retried with exponential backoff and
 * equal jitter (every wait at least half its ceiling: a struggling backend gets some room), a
 * bounded number of times.
 */

export interface JobRunnerOptions {
  client: BigQuery;
  project: string;
  location: string;
  labels: Record<string, string>;
  retry: RetryPolicy;
}

export interface QueryJobSpec {
  sql: string;
  params?: QueryParameter[];
  /** What the job does, for messages: "select from acme.usage". */
  what: string;
  /** Deterministic id for jobs that must never run twice (see above); random otherwise. */
  jobId?: string;
  labels?: Record<string, string>;
  /** Write the result into this table (WRITE_TRUNCATE). */
  destination?: { datasetId: string; tableId: string };
  /**
   * Temporary external tables the SQL reads by name, for this job only (JobConfigurationQuery
   * tableDefinitions: name -> ExternalDataConfiguration), e.g. Cloud Storage objects.
   */
  tableDefinitions?: Record<string, Record<string, unknown>>;
  /** Read the result rows (a SELECT, or a script whose last statement is one). */
  rows?: boolean;
  /** Decides whether an earlier job found under this id can stand for this one. */
  accept?: (metadata: JobMetadata) => Promise<boolean>;
}

export interface QueryResult {
  /** The job BigQuery ran the query in; undefined when it answered without one. */
  jobId?: string;
  rows: Row[];
  fields: TableField[];
  /** numDmlAffectedRows of a single DML statement. */
  affectedRows: number;
}

export interface QueryJobResult extends QueryResult {
  jobId: string;
  metadata: JobMetadata;
}

/** A query that must run as a job of its own: under a deterministic id, or with job-only configuration. */
type JobQuerySpec = QueryJobSpec & ({ jobId: string } | { destination: object } | { tableDefinitions: object });

export interface UploadJobSpec {
  file: string;
  what: string;
  jobId: string;
  load: Record<string, unknown>;
  labels?: Record<string, string>;
  /** Decides whether an earlier job found under this id can stand for this one. */
  accept?: (metadata: JobMetadata) => Promise<boolean>;
}

/** Raw getQueryResults response, read without the client's row parser. */
interface QueryResultsPage {
  jobComplete?: boolean;
  schema?: { fields?: TableField[] };
  rows?: Array<{ f?: Array<{ v?: unknown }> }>;
  pageToken?: string;
}

/** Raw jobs.query response: the first page of results, with a jobReference only when a job was created. */
interface QueryResponse extends QueryResultsPage {
  queryId?: string;
  jobReference?: { jobId?: string; location?: string };
  numDmlAffectedRows?: string;
}

/** How long one jobs.query request waits for the query to finish before BigQuery makes it a job (its default). */
const SHORT_QUERY_TIMEOUT_MS = 10_000;

const MAX_JOB_IDS = 25;

const affected = (response: QueryResponse): number => Number(response.numDmlAffectedRows ?? 0);

/** A failed request worth making again, by BigQuery's own rules (errors.ts). */
const isRetryableError = (err: unknown): boolean => isRetryable(errorFacts(err));

export class JobRunner {
  readonly #client: BigQuery;
  readonly #project: string;
  readonly #location: string;
  readonly #labels: Record<string, string>;
  readonly #retry: RetryPolicy;

  constructor(options: JobRunnerOptions) {
    this.#client = options.client;
    this.#project = options.project;
    this.#location = options.location;
    this.#labels = options.labels;
    this.#retry = { ...options.retry, jitter: 'equal' };
  }

  #jobLabels(extra: Record<string, string> | undefined): Record<string, string> {
    return { ...this.#labels, ...extra };
  }

  /** Runs a query: as a job of its own when it needs one (see above), else as a short query. */
  query(spec: JobQuerySpec): Promise<QueryJobResult>;
  query(spec: QueryJobSpec): Promise<QueryResult>;
  query(spec: QueryJobSpec): Promise<QueryResult> {
    if (spec.jobId !== undefined || spec.destination || spec.tableDefinitions) return this.#jobQuery(spec);
    return this.#shortQuery(spec);
  }

  async #jobQuery(spec: QueryJobSpec): Promise<QueryJobResult> {
    const metadata = await this.#run(
      spec.what,
      spec.jobId,
      async (jobId) => {
        const query: Record<string, unknown> = { query: spec.sql, useLegacySql: false };
        if (spec.params?.length) {
          query['parameterMode'] = 'NAMED';
          query['queryParameters'] = spec.params;
        }
        if (spec.tableDefinitions) query['tableDefinitions'] = spec.tableDefinitions;
        if (spec.destination) {
          query['destinationTable'] = { projectId: this.#project, ...spec.destination };
          query['writeDisposition'] = 'WRITE_TRUNCATE';
          query['createDisposition'] = 'CREATE_IF_NEEDED';
        }
        return this.#createJob(jobId, { query, labels: this.#jobLabels(spec.labels) });
      },
      spec.accept,
    );
    const jobId = metadata.jobReference!.jobId!;
    const affected = Number(metadata.statistics?.query?.numDmlAffectedRows ?? 0);
    if (!spec.rows) return { jobId, metadata, rows: [], fields: [], affectedRows: affected };
    const { rows, fields } = await this.results(jobId, spec.what);
    return { jobId, metadata, rows, fields, affectedRows: affected };
  }

  /**
   * A dry-run query job: BigQuery parses and plans the SQL and reports what it would do
   * (statementType, referencedTables, schema) without running it. Labelled like every job.
   */
  async dryRun(spec: { sql: string; params?: QueryParameter[]; what: string; labels?: Record<string, string> }): Promise<JobMetadata> {
    const query: Record<string, unknown> = { query: spec.sql, useLegacySql: false };
    if (spec.params?.length) {
      query['parameterMode'] = 'NAMED';
      query['queryParameters'] = spec.params;
    }
    return retry(
      async () => {
        const [job] = await this.#client.createJob({
          location: this.#location,
          configuration: { dryRun: true, query, labels: this.#jobLabels(spec.labels) },
        });
        return job.metadata as JobMetadata;
      },
      this.#retry,
      { retryable: isRetryableError },
    );
  }

  /** jobs.insert of one job; a job that fails at once comes back as an error carrying the job resource, which is returned. */
  async #createJob(jobId: string, configuration: Record<string, unknown>): Promise<JobMetadata> {
    try {
      const [job] = await this.#client.createJob({ jobId, location: this.#location, configuration });
      return job.metadata as JobMetadata;
    } catch (err) {
      const response = (err as { response?: JobMetadata }).response;
      if (response?.jobReference && response.status) return response;
      throw err;
    }
  }

  /**
   * A load job with its data in the request (multipart media upload). The client's createLoadJob
   * would put job labels inside configuration.load, where BigQuery ignores them, so the request
   * is made through the client's own authenticated transport with the job resource we need.
   */
  async upload(spec: UploadJobSpec): Promise<JobMetadata> {
    // A missing file would leave the streamed request body open; fail before sending anything.
    await stat(spec.file);
    return this.#run(
      spec.what,
      spec.jobId,
      (jobId) =>
        new Promise<JobMetadata>((resolve, reject) => {
          const resource = {
            jobReference: { projectId: this.#project, jobId, location: this.#location },
            configuration: { load: spec.load, labels: this.#jobLabels(spec.labels) },
          };
          this.#client.request(
            {
              method: 'POST',
              uri: `${this.#client.apiEndpoint}/upload/bigquery/v2/projects/${this.#project}/jobs`,
              qs: { uploadType: 'multipart' },
              // The body is a one-shot stream: a failed upload is retried here, with the same job id.
              maxRetries: 0,
              multipart: [
                { 'Content-Type': 'application/json', body: JSON.stringify(resource) },
                { 'Content-Type': 'application/octet-stream', body: createReadStream(spec.file) },
              ],
            } as unknown as Parameters<BigQuery['request']>[0],
            (err, body) => (err ? reject(err) : resolve(body as JobMetadata)),
          );
        }),
      spec.accept,
    );
  }

  async getJob(jobId: string): Promise<JobMetadata | undefined> {
    try {
      const [metadata] = await this.#client.job(jobId, { location: this.#location }).getMetadata();
      return metadata as JobMetadata;
    } catch (err) {
      const facts = errorFacts(err);
      if (facts.status === 404 || facts.reasons.includes('notFound')) return undefined;
      throw warehouseError(err, { what: `look up job ${jobId}`, project: this.#project }, facts);
    }
  }

  /**
   * The first attempt of a deterministic job that succeeded, if any: lets a rerun of an already
   * committed load return without doing anything.
   */
  async findSucceeded(baseId: string): Promise<JobMetadata | undefined> {
    for (let index = 0; index < MAX_JOB_IDS; index++) {
      const found = await this.getJob(index === 0 ? baseId : `${baseId}_r${index}`);
      if (!found) return undefined;
      const done = await this.#wait(found, `job ${baseId}`);
      if (!done.status?.errorResult) return done;
    }
    return undefined;
  }

  /**
   * One jobs.query request with JOB_CREATION_OPTIONAL. A failure worth retrying sends the same
   * request (same requestId) again; a job BigQuery created for it is waited for and read, and
   * run again under a new request if it failed in a way worth retrying.
   */
  async #shortQuery(spec: QueryJobSpec): Promise<QueryResult> {
    const context = { what: spec.what, project: this.#project };
    let failures = 0;
    for (;;) {
      const response = await this.#request<QueryResponse>(spec.what, {
        method: 'POST',
        uri: '/queries',
        json: this.#queryRequest(spec),
        // A failed query is an HTTP error here, not a job's errorResult: the attempts are counted
        // by this class's retry policy alone, not multiplied by the client's own retries.
        maxRetries: 0,
      });
      const jobId = response.jobReference?.jobId;
      if (!jobId)
        return { rows: this.#rowsWithoutJob(response, spec.what), fields: response.schema?.fields ?? [], affectedRows: affected(response) };
      // BigQuery made a job of it: wait for it as for any job, then read what is still unread.
      let metadata: JobMetadata | undefined;
      if (response.jobComplete === false) {
        metadata = await this.#wait({ jobReference: { jobId }, status: { state: 'RUNNING' } }, spec.what);
        const errorResult = metadata.status?.errorResult;
        if (errorResult) {
          const facts = jobErrorFacts(errorResult, jobId);
          if (isRetryable(facts) && ++failures < this.#retry.attempts) {
            await this.#backoff(failures);
            continue;
          }
          throw warehouseError(new Error(facts.message), context, facts);
        }
      }
      const affectedRows = metadata ? Number(metadata.statistics?.query?.numDmlAffectedRows ?? 0) : affected(response);
      if (!spec.rows) return { jobId, rows: [], fields: [], affectedRows };
      const { rows, fields } =
        response.jobComplete === false ? await this.results(jobId, spec.what) : await this.results(jobId, spec.what, response);
      return { jobId, rows, fields, affectedRows };
    }
  }

  /** The jobs.query request body of a short query; a new requestId for each call, kept across its retries. */
  #queryRequest(spec: QueryJobSpec): Record<string, unknown> {
    const request: Record<string, unknown> = {
      query: spec.sql,
      useLegacySql: false,
      jobCreationMode: 'JOB_CREATION_OPTIONAL',
      location: this.#location,
      labels: this.#jobLabels(spec.labels),
      requestId: randomUUID(),
      timeoutMs: SHORT_QUERY_TIMEOUT_MS,
      formatOptions: { useInt64Timestamp: true },
    };
    if (spec.params?.length) {
      request['parameterMode'] = 'NAMED';
      request['queryParameters'] = spec.params;
    }
    return request;
  }

  /** The rows of an answer given without a job: all of them, as there is no job to page through. */
  #rowsWithoutJob(response: QueryResponse, what: string): Row[] {
    if (response.jobComplete === false || response.pageToken) {
      // Without a job there is nothing to poll or page: BigQuery creates one whenever it would need to.
      throw warehouseError(new Error('BigQuery answered a query with neither all its results nor a job to read them from'), {
        what,
        project: this.#project,
      });
    }
    return decodeRows(response.schema?.fields ?? [], response.rows ?? []);
  }

  /**
   * All result rows of a finished query job, page by page; `first` is a page already in hand (the
   * jobs.query answer), whose rows are kept and whose pageToken is followed.
   */
  async results(jobId: string, what: string, first?: QueryResultsPage): Promise<{ rows: Row[]; fields: TableField[] }> {
    const rows: Row[] = [];
    let fields: TableField[] | undefined;
    let pageToken: string | undefined;
    if (first) {
      fields = first.schema?.fields ?? [];
      rows.push(...decodeRows(fields, first.rows ?? []));
      if (!first.pageToken) return { rows, fields };
      pageToken = first.pageToken;
    }
    let wait = 50;
    for (;;) {
      const page = await this.#request<QueryResultsPage>(what, {
        uri: `/queries/${encodeURIComponent(jobId)}`,
        qs: { location: this.#location, 'formatOptions.useInt64Timestamp': true, ...(pageToken ? { pageToken } : {}) },
      });
      if (page.jobComplete === false) {
        await sleep(wait);
        wait = Math.min(wait * 2, 1000);
        continue;
      }
      fields ??= page.schema?.fields ?? [];
      rows.push(...decodeRows(fields, page.rows ?? []));
      if (!page.pageToken) return { rows, fields };
      pageToken = page.pageToken;
    }
  }

  /** A plain API request through the client (its auth, endpoint and HTTP retries), transient failures retried. */
  async #request<T>(
    what: string,
    options: { method?: 'POST'; uri: string; qs?: Record<string, unknown>; json?: Record<string, unknown>; maxRetries?: number },
  ): Promise<T> {
    const request = () =>
      new Promise<T>((resolve, reject) =>
        this.#client.request(options as Parameters<BigQuery['request']>[0], (err, body) => (err ? reject(err) : resolve(body as T))),
      );
    try {
      return await retry(request, this.#retry, { retryable: isRetryableError });
    } catch (err) {
      throw warehouseError(err, { what, project: this.#project });
    }
  }

  /** The wait after the `failures`th failed attempt of a job. */
  async #backoff(failures: number): Promise<void> {
    await sleep(backoffDelay(failures, this.#retry));
  }

  /** Polls jobs.get until the job is DONE. */
  async #wait(metadata: JobMetadata, what: string): Promise<JobMetadata> {
    let current = metadata;
    let wait = 50;
    while (current.status?.state !== 'DONE') {
      await sleep(wait);
      wait = Math.min(wait * 2, 2000);
      const jobId = current.jobReference!.jobId!;
      const next = await this.getJob(jobId);
      if (!next) throw warehouseError(new Error(`job ${jobId} disappeared`), { what, project: this.#project });
      current = next;
    }
    return current;
  }

  async #run(
    what: string,
    baseId: string | undefined,
    submit: (jobId: string) => Promise<JobMetadata>,
    accept?: (metadata: JobMetadata) => Promise<boolean>,
  ): Promise<JobMetadata> {
    const ids: string[] = [];
    const idAt = (index: number) =>
      (ids[index] ??= baseId ? (index === 0 ? baseId : `${baseId}_r${index}`) : `convergence_${randomUUID()}`);
    let index = 0;
    let failures = 0;
    let last: { err: unknown; facts: ErrorFacts } | undefined;
    while (index < MAX_JOB_IDS) {
      const jobId = idAt(index);
      let metadata: JobMetadata | undefined;
      let adopted = false;
      try {
        metadata = await submit(jobId);
      } catch (err) {
        const facts = errorFacts(err);
        if (isDuplicate(facts)) {
          metadata = await this.getJob(jobId);
          adopted = true;
          if (!metadata) throw warehouseError(err, { what, project: this.#project }, facts);
        } else if (isRetryable(facts) && ++failures < this.#retry.attempts) {
          // Same id again: if this job did start, the next insert finds it instead of starting another.
          last = { err, facts };
          await this.#backoff(failures);
          continue;
        } else {
          throw warehouseError(err, { what, project: this.#project }, facts);
        }
      }
      metadata = await this.#wait(metadata, what);
      const errorResult = metadata.status?.errorResult;
      if (!errorResult) {
        if (!adopted || !accept || (await accept(metadata))) return metadata;
        index++;
        continue;
      }
      const facts = jobErrorFacts(errorResult, jobId);
      if (adopted) {
        // An earlier attempt under this id failed, which changed nothing: run it under the next id.
        index++;
        continue;
      }
      if (isRetryable(facts) && ++failures < this.#retry.attempts) {
        last = { err: new Error(facts.message), facts };
        index++;
        await this.#backoff(failures);
        continue;
      }
      throw warehouseError(new Error(facts.message), { what, project: this.#project }, facts);
    }
    throw warehouseError(last?.err ?? new Error(`gave up after ${MAX_JOB_IDS} job ids`), { what, project: this.#project }, last?.facts);
  }
}
