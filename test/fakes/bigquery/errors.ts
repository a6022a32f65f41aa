/** BigQuery's error shapes: the REST envelope and the job errorResult carry the same reason. */
export const STATUS_TEXT: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** HTTP status BigQuery answers with for a given error reason. */
export const REASON_STATUS: Record<string, number> = {
  invalid: 400,
  invalidQuery: 400,
  badRequest: 400,
  resourceInUse: 400,
  unauthorized: 401,
  accessDenied: 403,
  billingNotEnabled: 403,
  quotaExceeded: 403,
  notFound: 404,
  duplicate: 409,
  conditionNotMet: 412,
  rateLimitExceeded: 429,
  backendError: 500,
  internalError: 500,
  jobBackendError: 500,
  jobInternalError: 500,
};

export class FakeError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }

  /** The errorResult of a failed job. */
  toErrorProto(): { reason: string; message: string; location?: string } {
    return { reason: this.reason, message: this.message };
  }

  toBody() {
    return {
      error: {
        code: this.status,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason: this.reason }],
        status: STATUS_TEXT[this.status] ?? 'UNKNOWN',
      },
    };
  }
}

export const notFound = (what: string) => new FakeError(404, 'notFound', `Not found: ${what}`);
export const invalid = (message: string) => new FakeError(400, 'invalid', message);
export const invalidQuery = (message: string) => new FakeError(400, 'invalidQuery', message);
