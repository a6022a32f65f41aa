import { authError, ConvergenceError, ExitCode, isConvergenceError, notFoundError } from '../../../lib/errors.ts';
import { credentialsError } from '../../gcp/errors.ts';

/**
 * BigQuery failures as ConvergenceErrors. HTTP errors (ApiError: code + errors[].reason) and job
 * errors (status.errorResult) carry the same reasons, so both map here: permission problems exit 7
 * naming the permission and the role that grants it, missing datasets and tables exit 8, and
 * everything else is a warehouse error.
 */

export interface ErrorFacts {
  status?: number;
  reasons: string[];
  message: string;
  jobId?: string;
}

interface ApiErrorLike {
  code?: number | string;
  errors?: Array<{ reason?: string; message?: string }>;
  message?: string;
  response?: { status?: { errorResult?: { reason?: string; message?: string } }; jobReference?: { jobId?: string } };
}

export function errorFacts(err: unknown): ErrorFacts {
  const e = (err ?? {}) as ApiErrorLike;
  const reasons = (e.errors ?? []).map((x) => x.reason).filter((r): r is string => Boolean(r));
  const status = typeof e.code === 'number' ? e.code : undefined;
  return { status, reasons, message: firstLine(e.errors?.[0]?.message ?? e.message ?? String(err)) };
}

export function jobErrorFacts(errorResult: { reason?: string | null; message?: string | null }, jobId: string): ErrorFacts {
  return { reasons: errorResult.reason ? [errorResult.reason] : [], message: firstLine(errorResult.message ?? 'the job failed'), jobId };
}

const firstLine = (text: string) =>
  text
    .split('\n')
    .find((l) => l.trim().length > 0)
    ?.trim() ?? text;

const RETRYABLE_REASONS = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'backendError',
  'internalError',
  'jobBackendError',
  'jobInternalError',
]);
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/**
 * BigQuery runs at most 2 mutating DML statements per table at once and queues 20 more; beyond
 * that it refuses the statement. A transaction that loses a race with another one on the same
 * table is aborted. Both pass once the other writers are done.
 */
const TOO_MANY_DML = /Too many DML statements outstanding against table/i;
const CONCURRENT_UPDATE = /concurrent update|could not serialize access/i;
/** Messages of failures that running the same work again can cure. */
const RETRYABLE_MESSAGE = new RegExp(
  `${TOO_MANY_DML.source}|${CONCURRENT_UPDATE.source}|Retrying the job may solve the problem|Retrying may solve the problem`,
  'i',
);
const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|socket hang up|network|fetch failed/i;

export function isRetryable(facts: ErrorFacts): boolean {
  if (facts.status !== undefined && RETRYABLE_STATUS.has(facts.status)) return true;
  if (facts.reasons.some((r) => RETRYABLE_REASONS.has(r))) return true;
  if (RETRYABLE_MESSAGE.test(facts.message)) return true;
  return facts.status === undefined && facts.reasons.length === 0 && NETWORK.test(facts.message);
}

export const isDuplicate = (facts: ErrorFacts) => facts.status === 409 || facts.reasons.includes('duplicate');
export const isNotFound = (facts: ErrorFacts) => facts.status === 404 || facts.reasons.includes('notFound');

/** The predefined role that grants a permission BigQuery reported missing. */
function roleFor(permission: string | undefined): string {
  if (!permission) return 'roles/bigquery.dataEditor';
  if (permission === 'bigquery.jobs.create') return 'roles/bigquery.jobUser';
  if (/^bigquery\.(tables\.(get|getData|list)|datasets\.get)$/.test(permission)) return 'roles/bigquery.dataViewer';
  return 'roles/bigquery.dataEditor';
}

export interface ErrorContext {
  /** What was being done, e.g. "load into acme.usage". */
  what: string;
  project: string;
}

export function warehouseError(err: unknown, context: ErrorContext, facts: ErrorFacts = errorFacts(err)): ConvergenceError {
  if (isConvergenceError(err)) return err;
  // A token that could not be minted (expired login, refused key) fails the request with a 400.
  const credentials = credentialsError(err, context);
  if (credentials) return credentials;
  const cause = err instanceof Error ? err : undefined;
  const data = { reasons: facts.reasons, status: facts.status ?? null, jobId: facts.jobId ?? null };
  if (facts.reasons.includes('accessDenied') || (facts.status === 403 && !facts.reasons.some((r) => /quota|billing|rateLimit/i.test(r)))) {
    const permission = /\b(bigquery\.[a-zA-Z]+\.[a-zA-Z]+)\b/.exec(facts.message)?.[1];
    const role = roleFor(permission);
    const needs = permission
      ? `permission ${permission} (granted by ${role})`
      : `${role} on the dataset and roles/bigquery.jobUser on project ${context.project}`;
    return authError(`BigQuery denied ${context.what}: ${facts.message} — the caller needs ${needs}`, {
      suggestion: `grant the service account ${role}${role === 'roles/bigquery.jobUser' ? ` on project ${context.project}` : ' on the dataset (or project)'}, e.g. gcloud projects add-iam-policy-binding ${context.project} --member=serviceAccount:SA_EMAIL --role=${role}`,
      data: { ...data, permission: permission ?? null, role },
      cause,
    });
  }
  if (facts.status === 401 || facts.reasons.includes('unauthorized')) {
    return authError(`BigQuery rejected the credentials for ${context.what}: ${facts.message}`, {
      suggestion: 'run `gcloud auth application-default login`, or check the service account of this environment',
      data,
      cause,
    });
  }
  if (isNotFound(facts)) {
    return notFoundError(`${context.what}: ${facts.message}`, { data, cause });
  }
  if (/Could not load the default credentials/i.test(facts.message)) {
    return authError(`no Google credentials for ${context.what}`, {
      suggestion: 'run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file',
      data,
      cause,
    });
  }
  const network = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b/.exec(facts.message)?.[1];
  if (network) {
    return new ConvergenceError('GCP_UNREACHABLE', ExitCode.unexpected, `BigQuery ${context.what}: cannot reach the API (${network})`, {
      suggestion: 'check network access, DNS and proxy settings (HTTPS_PROXY); to use an emulator, set CONVERGENCE_BIGQUERY_ENDPOINT',
      data: { ...data, network },
      cause,
    });
  }
  const busy = busyTableError(facts, context, data, cause);
  if (busy) return busy;
  const code = facts.reasons.some((r) => r === 'invalidQuery' || r === 'invalid') ? 'WAREHOUSE_QUERY' : 'WAREHOUSE_ERROR';
  return new ConvergenceError(code, ExitCode.unexpected, `BigQuery ${context.what}: ${facts.message}`, {
    ...(isRetryable(facts) ? { suggestion: 'BigQuery kept failing with a transient error; retry later' } : {}),
    data,
    cause,
  });
}

/**
 * Contention on one table that outlasted the retries: too many DML statements queued on it (a
 * BigQuery quota: exit 6), or transactions on it aborting each other (another writer: exit 5).
 * Loads are atomic, so nothing of the failed one was written and running it again is safe.
 */
function busyTableError(
  facts: ErrorFacts,
  context: ErrorContext,
  data: Record<string, unknown>,
  cause: Error | undefined,
): ConvergenceError | undefined {
  if (TOO_MANY_DML.test(facts.message)) {
    return new ConvergenceError('WAREHOUSE_DML_QUEUE_FULL', ExitCode.quotaExceeded, `BigQuery ${context.what}: ${facts.message}`, {
      suggestion:
        'BigQuery runs 2 changing statements per table at once and queues 20; write to this table from fewer runs at the same time (a lower backfill --concurrency, schedules spread apart), then run again: nothing of this load was written',
      data,
      cause,
    });
  }
  if (CONCURRENT_UPDATE.test(facts.message)) {
    return new ConvergenceError('WAREHOUSE_CONFLICT', ExitCode.alreadyRunning, `BigQuery ${context.what}: ${facts.message}`, {
      suggestion: 'another job kept changing the same table; run again once it is done: nothing of this load was written',
      data,
      cause,
    });
  }
  return undefined;
}
