import { ExitCode, isConvergenceError, type ConvergenceError } from '../lib/errors.ts';

/** The body of every error response; `request_id` ties it to the server's log line. */
export interface ApiErrorBody {
  error: { code: string; message: string; suggestion?: string };
  request_id: string;
}

export interface HttpFailure {
  statusCode: number;
  body: Omit<ApiErrorBody, 'request_id'>;
  headers: Record<string, string>;
  /** Unexpected failures are logged with their stack; their message is not shown to callers. */
  unexpected: boolean;
}

/** Seconds until a quota frees up again, for Retry-After. */
function retryAfterSeconds(err: ConvergenceError, now: Date): number {
  const resetsAt = typeof err.data?.resetsAt === 'string' ? Date.parse(err.data.resetsAt) : NaN;
  if (Number.isFinite(resetsAt)) return Math.max(1, Math.ceil((resetsAt - now.getTime()) / 1000));
  return 30;
}

function statusOf(err: ConvergenceError): number {
  if (err.code === 'CONFLICT') return 409;
  if (err.code === 'TENANT_SUSPENDED') return 403;
  switch (err.exitCode) {
    case ExitCode.usage:
      return 400;
    case ExitCode.dataQualityFailed:
    case ExitCode.pipelineFailed:
      return 422;
    case ExitCode.alreadyRunning:
      return 409;
    case ExitCode.quotaExceeded:
      return 429;
    case ExitCode.auth:
      return 401;
    case ExitCode.notFound:
      return 404;
    default:
      return 500;
  }
}

/** Maps what a service threw to an HTTP answer: the CLI's exit-code contract, spoken as HTTP. */
export function toHttpFailure(err: unknown, now: Date = new Date()): HttpFailure {
  if (isConvergenceError(err)) {
    const statusCode = statusOf(err);
    if (statusCode < 500) {
      return {
        statusCode,
        body: { error: { code: err.code, message: err.message, ...(err.suggestion ? { suggestion: err.suggestion } : {}) } },
        headers: statusCode === 429 ? { 'retry-after': String(retryAfterSeconds(err, now)) } : {},
        unexpected: false,
      };
    }
  }
  return {
    statusCode: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error; the request id is in the server log' } },
    headers: {},
    unexpected: true,
  };
}

/** Failures the HTTP layer itself decides (bad JSON, oversized body, unknown route, rate limit). */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
  }
}
