/**
 * Google API failures as ConvergenceErrors with a next step. Every gcp adapter funnels its
 * errors through toConvergenceError, so an operator sees the same shape whether the call went
 * over gRPC (gax: numeric gRPC `code`, `details`, and ErrorInfo decoded into `reason` and
 * `errorInfoMetadata`) or REST (HTTP status in `code`/`status`, `errors[].reason`, or a JSON
 * error body with google.rpc details).
 *
 * No Google module is imported here: the codes are stable wire numbers, so this file stays
 * cheap for code paths that only need to classify an error.
 */
import { ConvergenceError, ExitCode, type ExitCodeValue } from '../../lib/errors.ts';

/** gRPC status codes (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
type GrpcCodeValue = (typeof GrpcCode)[keyof typeof GrpcCode];

const GRPC_NAMES = Object.fromEntries(Object.entries(GrpcCode).map(([name, code]) => [code, name])) as Record<number, string>;

/** The gRPC code an HTTP status stands for (the mapping Google documents for its REST surface). */
const HTTP_TO_GRPC: Record<number, GrpcCodeValue> = {
  400: GrpcCode.INVALID_ARGUMENT,
  401: GrpcCode.UNAUTHENTICATED,
  403: GrpcCode.PERMISSION_DENIED,
  404: GrpcCode.NOT_FOUND,
  408: GrpcCode.DEADLINE_EXCEEDED,
  409: GrpcCode.ABORTED,
  412: GrpcCode.FAILED_PRECONDITION,
  429: GrpcCode.RESOURCE_EXHAUSTED,
  499: GrpcCode.CANCELLED,
  500: GrpcCode.INTERNAL,
  501: GrpcCode.UNIMPLEMENTED,
  502: GrpcCode.UNAVAILABLE,
  503: GrpcCode.UNAVAILABLE,
  504: GrpcCode.DEADLINE_EXCEEDED,
};

const NETWORK_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);
const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RATE_LIMIT_EXCEEDED']);
const QUOTA_REASONS = new Set(['quotaExceeded', 'dailyLimitExceeded', 'RESOURCE_QUOTA_EXCEEDED']);
const SERVICE_DISABLED_REASONS = new Set(['SERVICE_DISABLED', 'accessNotConfigured', 'API_DISABLED']);
const ADC_LOGIN = 'gcloud auth application-default login';

/** What a failed call was about, so the message and remedy can name it. */
export interface GoogleCallContext {
  /** The thing acted on, in words: "Cloud KMS key projects/p/.../cryptoKeys/k". */
  what: string;
  /** The IAM permission the call needs, e.g. cloudkms.cryptoKeyVersions.useToEncrypt. */
  permission?: string;
  /** A predefined role that grants it, e.g. roles/cloudkms.cryptoKeyEncrypterDecrypter. */
  role?: string;
  /** Resource the role should be granted on (defaults to `what`). */
  resource?: string;
  /** Who needs the grant, when known (service account email or user). */
  principal?: string;
  /** Exact command that grants the role, when the adapter can build one. */
  grantCommand?: string;
  /** Service name of the API, e.g. cloudkms.googleapis.com. */
  api?: string;
  /** Project, for the `gcloud services enable` remedy when the error does not name one. */
  project?: string;
}

/** The parts of a Google error this module reads, whatever library produced it. */
export interface GoogleErrorFacts {
  grpcCode: GrpcCodeValue | undefined;
  httpStatus: number | undefined;
  /** ErrorInfo reason or the first errors[].reason. */
  reason: string | undefined;
  /** ErrorInfo metadata: service, consumer, quota_metric, ... */
  metadata: Record<string, string>;
  /** The server's own message, without the "7 PERMISSION_DENIED: " prefix gax adds. */
  detail: string;
  errno: string | undefined;
}

type Loose = Record<string, unknown> | undefined;

const asRecord = (value: unknown): Loose => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined);

function jsonErrorBody(err: Loose): Loose {
  const response = asRecord(err?.response);
  const data = asRecord(response?.data) ?? asRecord(response?.body) ?? asRecord(err?.body);
  return asRecord(data?.error) ?? undefined;
}

function errorInfoOf(details: unknown): { reason?: string; metadata?: Record<string, string> } | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const detail of details) {
    const record = asRecord(detail);
    if (record && typeof record['@type'] === 'string' && record['@type'].endsWith('google.rpc.ErrorInfo')) {
      return { reason: record.reason as string | undefined, metadata: asRecord(record.metadata) as Record<string, string> | undefined };
    }
  }
  return undefined;
}

export function googleErrorFacts(error: unknown): GoogleErrorFacts {
  const err = asRecord(error);
  const body = jsonErrorBody(err);
  const rawCode = err?.code;
  const numericCode =
    typeof rawCode === 'number' ? rawCode : typeof rawCode === 'string' && /^\d+$/.test(rawCode) ? Number(rawCode) : undefined;
  const errno = typeof rawCode === 'string' && !/^\d+$/.test(rawCode) ? rawCode : undefined;

  // gax REST fallback keeps the HTTP status apart from the mapped gRPC code; other libraries put
  // the HTTP status in `code` or `status`. gRPC codes stop at 16, HTTP statuses start at 100.
  const httpStatus =
    (typeof err?.httpStatusCode === 'number' ? err.httpStatusCode : undefined) ??
    (numericCode !== undefined && numericCode >= 100 ? numericCode : undefined) ??
    (typeof err?.status === 'number' ? err.status : undefined) ??
    (typeof asRecord(err?.response)?.status === 'number' ? (asRecord(err?.response)!.status as number) : undefined) ??
    (typeof body?.code === 'number' ? body.code : undefined);
  const grpcCode =
    numericCode !== undefined && numericCode <= 16
      ? (numericCode as GrpcCodeValue)
      : httpStatus !== undefined
        ? (HTTP_TO_GRPC[httpStatus] ?? (httpStatus >= 500 ? GrpcCode.INTERNAL : undefined))
        : undefined;

  const info = errorInfoOf(body?.details);
  const firstReason = Array.isArray(err?.errors) ? (asRecord(err.errors[0])?.reason as string | undefined) : undefined;
  const bodyReason = Array.isArray(body?.errors) ? (asRecord(body.errors[0])?.reason as string | undefined) : undefined;
  const reason = (typeof err?.reason === 'string' && err.reason) || info?.reason || firstReason || bodyReason || undefined;
  const metadata = { ...(info?.metadata ?? {}), ...((asRecord(err?.errorInfoMetadata) as Record<string, string>) ?? {}) };
  // BigQuery answers quota and rate limits with 403; the reason, not the status, says which.
  const limited = reason !== undefined && (QUOTA_REASONS.has(reason) || RATE_LIMIT_REASONS.has(reason));

  let detail = typeof err?.details === 'string' && err.details ? err.details : typeof body?.message === 'string' ? body.message : '';
  if (!detail) detail = error instanceof Error ? error.message : String(error);
  detail = detail.replace(/^\d+ [A-Z_]+: /, '');
  return { grpcCode: limited ? GrpcCode.RESOURCE_EXHAUSTED : grpcCode, httpStatus, reason, metadata, detail, errno };
}

/** Failures worth retrying (gcp/retry.ts does): the call may succeed unchanged a moment later. */
export function isTransient(err: unknown): boolean {
  const facts = googleErrorFacts(err);
  // gRPC reports a token that could not be minted as UNAVAILABLE; retrying cannot log anyone in.
  if (NO_CREDENTIALS.test(facts.detail) || EXPIRED_CREDENTIALS.test(facts.detail)) return false;
  if (facts.errno && NETWORK_ERRNOS.has(facts.errno)) return true;
  if (facts.httpStatus !== undefined && [408, 500, 502, 503, 504].includes(facts.httpStatus)) return true;
  if (facts.grpcCode === GrpcCode.UNAVAILABLE || facts.grpcCode === GrpcCode.DEADLINE_EXCEEDED) return true;
  // Rate limits clear by themselves; exhausted quotas (daily, per project) do not. A REST 429
  // without a reason is a rate limit; a gRPC RESOURCE_EXHAUSTED without one may be either.
  if (facts.reason && RATE_LIMIT_REASONS.has(facts.reason)) return true;
  if (facts.httpStatus === 429) return !(facts.reason && QUOTA_REASONS.has(facts.reason));
  return false;
}

/** google-auth-library found no Application Default Credentials at all. */
const NO_CREDENTIALS = /could not load the default credentials/i;
/** The token endpoint refused the credentials: a revoked or expired login, a deleted key, a needed reauth. */
const EXPIRED_CREDENTIALS =
  /invalid_grant|invalid_rapt|reauth(entication)? (is )?(related|required)|token has been expired or revoked|invalid jwt signature|account not found/i;
/** User credentials need a quota project for this API, and the one set (if any) cannot be billed. */
const QUOTA_PROJECT_MESSAGE = /requires a quota project|quota project (is )?not set|set-quota-project/i;
const QUOTA_PROJECT_REASONS = new Set(['USER_PROJECT_DENIED']);
/** The gcloud CLI's own project: the consumer Google names when user ADC carry no quota project. */
const GCLOUD_OWN_PROJECT = '764086051850';
const NO_PROJECT = /unable to detect a project id/i;
const DISABLED_MESSAGE = /has not been used in project \S+ before or it is disabled|API has not been enabled/i;

function disabledApi(facts: GoogleErrorFacts, ctx: GoogleCallContext): string | undefined {
  const named = () => /\b([a-z0-9-]+\.googleapis\.com)\b/.exec(facts.detail)?.[1];
  if (facts.reason && SERVICE_DISABLED_REASONS.has(facts.reason)) return facts.metadata.service ?? named() ?? ctx.api ?? 'the API';
  if (DISABLED_MESSAGE.test(facts.detail)) return named() ?? ctx.api ?? 'the API';
  return undefined;
}

function projectOf(facts: GoogleErrorFacts, ctx: GoogleCallContext): string | undefined {
  const consumer = facts.metadata.consumer?.replace(/^projects\//, '');
  return ctx.project ?? consumer ?? /project[ =]'?(\d+|[a-z][a-z0-9-]{4,28}[a-z0-9])/i.exec(facts.detail)?.[1];
}

function permissionRemedy(facts: GoogleErrorFacts, ctx: GoogleCallContext): string {
  const permission = ctx.permission ?? /Permission '([^']+)'/.exec(facts.detail)?.[1];
  const who = ctx.principal ?? 'the account convergence runs as (`gcloud auth list`; on Cloud Run, the service account)';
  const parts: string[] = [];
  if (ctx.role) parts.push(`grant ${ctx.role} on ${ctx.resource ?? ctx.what} to ${who}`);
  else if (permission) parts.push(`grant ${who} a role that includes ${permission} on ${ctx.resource ?? ctx.what}`);
  else parts.push(`grant ${who} access to ${ctx.resource ?? ctx.what}`);
  if (ctx.role && permission) parts[0] += ` (it carries ${permission})`;
  if (ctx.grantCommand) parts.push(`e.g. ${ctx.grantCommand}`);
  if (/or it may not exist/i.test(facts.detail))
    parts.push('and check that the name is right: Google reports a missing resource this way too');
  return parts.join('; ');
}

function build(code: string, exit: ExitCodeValue, message: string, err: unknown, facts: GoogleErrorFacts, suggestion?: string, extra = {}) {
  return new ConvergenceError(code, exit, message, {
    cause: err,
    ...(suggestion ? { suggestion } : {}),
    data: {
      ...(facts.grpcCode !== undefined ? { grpcCode: facts.grpcCode, grpcStatus: GRPC_NAMES[facts.grpcCode] } : {}),
      ...(facts.httpStatus !== undefined ? { httpStatus: facts.httpStatus } : {}),
      ...(facts.reason ? { reason: facts.reason } : {}),
      ...extra,
    },
  });
}

/**
 * Credentials that are missing, expired or billed to the wrong project, whichever Google client
 * or call raised it: one error with the login (or quota project) command. Undefined when the
 * error is about something else.
 */
export function credentialsError(err: unknown, ctx: GoogleCallContext): ConvergenceError | undefined {
  if (err instanceof ConvergenceError) return err.exitCode === ExitCode.auth ? err : undefined;
  const facts = googleErrorFacts(err);
  const { detail } = facts;
  const denied = facts.grpcCode === GrpcCode.PERMISSION_DENIED || facts.httpStatus === 403;
  const consumer = facts.metadata.consumer?.replace(/^projects\//, '');
  const quotaProject =
    QUOTA_PROJECT_MESSAGE.test(detail) ||
    (facts.reason !== undefined && QUOTA_PROJECT_REASONS.has(facts.reason)) ||
    (denied && consumer === GCLOUD_OWN_PROJECT);
  if (quotaProject) {
    const project = ctx.project ?? '<project>';
    return build(
      'UNAUTHENTICATED',
      ExitCode.auth,
      `the Application Default Credentials have no usable quota project for ${ctx.what}: ${detail}`,
      err,
      facts,
      `run \`gcloud auth application-default set-quota-project ${project}\` (or \`${ADC_LOGIN}\` as an account that can use project ${project})`,
      { credentials: 'quota-project' },
    );
  }
  if (NO_CREDENTIALS.test(detail)) {
    return build(
      'UNAUTHENTICATED',
      ExitCode.auth,
      `Google credentials are missing: no Application Default Credentials found for ${ctx.what}`,
      err,
      facts,
      `run \`${ADC_LOGIN}\`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file`,
      { credentials: 'missing' },
    );
  }
  if (EXPIRED_CREDENTIALS.test(detail)) {
    return build(
      'UNAUTHENTICATED',
      ExitCode.auth,
      `Google credentials are expired or revoked (used for ${ctx.what}): ${detail}`,
      err,
      facts,
      `run \`${ADC_LOGIN}\` again (for a service account key: create a new key and point GOOGLE_APPLICATION_CREDENTIALS at it)`,
      { credentials: 'expired' },
    );
  }
  return undefined;
}

/**
 * Maps any error from a Google client to a ConvergenceError. ConvergenceErrors pass through, so
 * adapters can call this on whatever their try block caught.
 */
export function toConvergenceError(err: unknown, ctx: GoogleCallContext): ConvergenceError {
  if (err instanceof ConvergenceError) return err;
  // Raised by google-auth-library (often before any request leaves, so with no status to go
  // by), and checked first: a token refresh fails with whatever status the transport reports.
  const credentials = credentialsError(err, ctx);
  if (credentials) return credentials;
  const facts = googleErrorFacts(err);
  const { detail } = facts;

  const api = facts.grpcCode === GrpcCode.PERMISSION_DENIED || facts.httpStatus === 403 ? disabledApi(facts, ctx) : undefined;
  if (api) {
    const project = projectOf(facts, ctx);
    return build(
      'SERVICE_DISABLED',
      ExitCode.auth,
      `${api} is not enabled${project ? ` in project ${project}` : ''} (needed for ${ctx.what})`,
      err,
      facts,
      `enable ${api} with \`gcloud services enable ${api}${project ? ` --project ${project}` : ''}\`, wait a minute, then retry`,
      { api },
    );
  }

  if (facts.grpcCode === undefined && NO_PROJECT.test(detail)) {
    return build(
      'USAGE',
      ExitCode.usage,
      `no Google Cloud project for ${ctx.what}`,
      err,
      facts,
      'set `project:` for the environment in convergence.yaml',
    );
  }

  switch (facts.grpcCode) {
    case GrpcCode.PERMISSION_DENIED:
      return build(
        'PERMISSION_DENIED',
        ExitCode.auth,
        `permission denied on ${ctx.what}: ${detail}`,
        err,
        facts,
        permissionRemedy(facts, ctx),
        {
          ...(ctx.permission ? { permission: ctx.permission } : {}),
          ...(ctx.role ? { role: ctx.role } : {}),
        },
      );
    case GrpcCode.UNAUTHENTICATED:
      return build(
        'UNAUTHENTICATED',
        ExitCode.auth,
        `Google rejected the credentials used for ${ctx.what}: ${detail}`,
        err,
        facts,
        `run \`${ADC_LOGIN}\` (or check the service account of the job)`,
      );
    case GrpcCode.NOT_FOUND:
      return build(
        'NOT_FOUND',
        ExitCode.notFound,
        `${ctx.what} not found: ${detail}`,
        err,
        facts,
        'check the name, project and location in convergence.yaml',
      );
    case GrpcCode.ALREADY_EXISTS:
      return build('CONFLICT', ExitCode.usage, `${ctx.what} already exists: ${detail}`, err, facts);
    case GrpcCode.ABORTED:
      return build('CONFLICT', ExitCode.usage, `${ctx.what} was changed concurrently: ${detail}`, err, facts, 'retry the command');
    case GrpcCode.FAILED_PRECONDITION:
      return build('FAILED_PRECONDITION', ExitCode.usage, `${ctx.what} is not in a state that allows this: ${detail}`, err, facts);
    case GrpcCode.INVALID_ARGUMENT:
    case GrpcCode.OUT_OF_RANGE:
      return build('INVALID_ARGUMENT', ExitCode.usage, `Google refused the request for ${ctx.what}: ${detail}`, err, facts);
    case GrpcCode.RESOURCE_EXHAUSTED: {
      const metric = facts.metadata.quota_metric ?? facts.metadata.quota_limit;
      return build(
        'GCP_QUOTA',
        ExitCode.quotaExceeded,
        `Google Cloud quota or rate limit reached for ${ctx.what}${metric ? ` (${metric})` : ''}: ${detail}`,
        err,
        facts,
        'wait and retry, or raise the quota in the console (IAM & Admin > Quotas)',
        isTransient(err) ? { transient: true } : {},
      );
    }
    case GrpcCode.UNAVAILABLE:
    case GrpcCode.DEADLINE_EXCEEDED:
      return build(
        'GCP_UNAVAILABLE',
        ExitCode.unexpected,
        `Google Cloud did not answer in time for ${ctx.what}: ${detail}`,
        err,
        facts,
        'retry in a minute; if it persists, check the network and https://status.cloud.google.com',
        { transient: true },
      );
    case GrpcCode.UNIMPLEMENTED:
      return build('GCP_UNIMPLEMENTED', ExitCode.unexpected, `the API does not support this call for ${ctx.what}: ${detail}`, err, facts);
    default:
      break;
  }
  if (facts.errno && NETWORK_ERRNOS.has(facts.errno)) {
    return build(
      'GCP_UNAVAILABLE',
      ExitCode.unexpected,
      `cannot reach Google Cloud for ${ctx.what}: ${detail}`,
      err,
      facts,
      'check the network, then retry',
      {
        transient: true,
      },
    );
  }
  return build('GCP_ERROR', ExitCode.unexpected, `Google Cloud call failed for ${ctx.what}: ${detail}`, err, facts, undefined, {
    ...(isTransient(err) ? { transient: true } : {}),
  });
}
