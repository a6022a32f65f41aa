/**
 * RunLogs on Cloud Logging (google.logging.v2.LoggingServiceV2 ListLogEntries). Cloud Run turns
 * each JSON line of a job's container into an entry whose labels are the line's
 * `logging.googleapis.com/labels`, so a run's lines are those of the job's resource carrying its
 * run_id label, or all those of the execution it had to itself (Run labels each line with its
 * execution). The filter is built from the query's validated ids and dates alone.
 */
import { UUID_PATTERN } from '../../domain/ids.ts';
import { validationError } from '../../lib/errors.ts';
import type { GcpClients } from '../gcp/clients.ts';
import { toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import { LOG_SEVERITIES, type LogSeverity, type RunLogEntry, type RunLogPage, type RunLogQuery, type RunLogs } from './port.ts';

/** Cloud Run job ids: lowercase letters, digits and "-", a letter first, at most 63. */
const JOB_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_PAGE_SIZE = 1000;

/** The LogEntry fields read here, as gax decodes them (Struct as fields/kind, Timestamp as seconds/nanos). */
interface DecodedEntry {
  insertId?: string | null;
  timestamp?: { seconds?: string | number | null; nanos?: number | null } | null;
  severity?: string | number | null;
  textPayload?: string | null;
  jsonPayload?: DecodedStruct | null;
  labels?: Record<string, string> | null;
}
interface DecodedStruct {
  fields?: Record<string, DecodedValue> | null;
}
interface DecodedValue {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number | null;
  stringValue?: string | null;
  boolValue?: boolean | null;
  structValue?: DecodedStruct | null;
  listValue?: { values?: DecodedValue[] | null } | null;
}

/** The one method of the generated LoggingServiceV2Client used here. */
interface LogEntriesClient {
  listLogEntries(
    request: Record<string, unknown>,
    options: { autoPaginate: false; retry: null },
  ): Promise<[DecodedEntry[], { pageToken?: string | null } | null, unknown]>;
}

const quote = (value: string) => `"${value}"`;

/** The Logging query for a run's entries; every value is checked against its pattern first. */
export function runLogFilter(query: Pick<RunLogQuery, 'job' | 'runId' | 'execution' | 'since' | 'minSeverity'>): string {
  if (!JOB_ID.test(query.job)) throw validationError(`invalid Cloud Run job id ${JSON.stringify(query.job)}`);
  if (!UUID_PATTERN.test(query.runId)) throw validationError(`invalid run id ${JSON.stringify(query.runId)}`);
  // Execution ids are the job id and a suffix: the same alphabet.
  if (query.execution !== undefined && !JOB_ID.test(query.execution)) {
    throw validationError(`invalid Cloud Run execution id ${JSON.stringify(query.execution)}`);
  }
  if (Number.isNaN(query.since.getTime())) throw validationError('invalid start time for the log query');
  if (query.minSeverity !== undefined && !LOG_SEVERITIES.includes(query.minSeverity)) {
    throw validationError(`invalid severity ${JSON.stringify(query.minSeverity)}`);
  }
  return [
    `resource.type=${quote('cloud_run_job')}`,
    `resource.labels.job_name=${quote(query.job)}`,
    query.execution ? `labels."run.googleapis.com/execution_name"=${quote(query.execution)}` : `labels.run_id=${quote(query.runId)}`,
    `timestamp>=${quote(query.since.toISOString())}`,
    ...(query.minSeverity ? [`severity>=${query.minSeverity}`] : []),
  ].join(' AND ');
}

function structValue(value: DecodedValue | undefined): unknown {
  switch (value?.kind) {
    case 'stringValue':
      return value.stringValue;
    case 'numberValue':
      return value.numberValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return structToObject(value.structValue);
    case 'listValue':
      return (value.listValue?.values ?? []).map(structValue);
    default:
      return null;
  }
}

function structToObject(struct: DecodedStruct | null | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(struct?.fields ?? {}).map(([key, value]) => [key, structValue(value)]));
}

function toEntry(entry: DecodedEntry): RunLogEntry {
  const seconds = Number(entry.timestamp?.seconds ?? 0);
  const nanos = Number(entry.timestamp?.nanos ?? 0);
  const severity = String(entry.severity ?? 'DEFAULT');
  const payload = entry.jsonPayload ? structToObject(entry.jsonPayload) : undefined;
  const message = payload
    ? typeof payload['message'] === 'string'
      ? payload['message']
      : JSON.stringify(payload)
    : (entry.textPayload ?? '');
  return {
    insertId: String(entry.insertId ?? ''),
    timestamp: new Date(seconds * 1000 + Math.floor(nanos / 1_000_000)),
    severity: (LOG_SEVERITIES as readonly string[]).includes(severity) ? (severity as LogSeverity) : 'DEFAULT',
    message,
    labels: { ...(entry.labels ?? {}) },
  };
}

export class GcpRunLogs implements RunLogs {
  readonly #clients: GcpClients;

  constructor(clients: GcpClients) {
    this.#clients = clients;
  }

  async list(query: RunLogQuery): Promise<RunLogPage> {
    if (!Number.isInteger(query.pageSize) || query.pageSize < 1 || query.pageSize > MAX_PAGE_SIZE) {
      throw validationError(`page size must be between 1 and ${MAX_PAGE_SIZE}, got ${query.pageSize}`);
    }
    const { project } = this.#clients.target;
    const request = {
      resourceNames: [`projects/${project}`],
      filter: runLogFilter(query),
      orderBy: `timestamp ${query.order}`,
      pageSize: query.pageSize,
      ...(query.pageToken ? { pageToken: query.pageToken } : {}),
    };
    try {
      const client = (await this.#clients.logEntries()) as unknown as LogEntriesClient;
      const [entries, next] = await retryTransient(() => client.listLogEntries(request, { autoPaginate: false, retry: null }));
      return { entries: entries.map(toEntry), ...(next?.pageToken ? { nextPageToken: next.pageToken } : {}) };
    } catch (err) {
      throw toConvergenceError(err, {
        what: `the Cloud Logging entries of project ${project}`,
        permission: 'logging.logEntries.list',
        role: 'roles/logging.viewer',
        resource: `project ${project}`,
        grantCommand: `gcloud projects add-iam-policy-binding ${project} --member=user:YOU@example.com --role=roles/logging.viewer`,
        api: 'logging.googleapis.com',
        project,
      });
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }
}
