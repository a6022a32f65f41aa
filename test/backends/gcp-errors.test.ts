/** Google API errors, in the shapes gax (gRPC and REST fallback), @google-cloud/common and gaxios produce, mapped to exit codes and remedies. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentialsError, googleErrorFacts, isTransient, toConvergenceError } from '../../src/backends/gcp/errors.ts';
import { IntegrityError, retryTransient } from '../../src/backends/gcp/retry.ts';
import { ConvergenceError, notFoundError } from '../../src/lib/errors.ts';

/** What gax rejects with for a gRPC status: "<code> <NAME>: <details>" plus the parsed ErrorInfo. */
const grpcError = (code: number, name: string, details: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${code} ${name}: ${details}`), { code, details, metadata: {}, ...extra });

/** @google-cloud/common's ApiError (BigQuery, Storage): HTTP status in `code`, reasons in `errors`. */
const apiError = (code: number, message: string, reason?: string) =>
  Object.assign(new Error(message), { code, errors: reason ? [{ reason, message }] : [], response: { statusCode: code } });

/** gaxios: HTTP status on the response, google.rpc details in the JSON body. */
const gaxiosError = (status: number, error: unknown) =>
  Object.assign(new Error(`Request failed with status code ${status}`), { status, response: { status, data: { error } } });

const ctx = { what: 'Cloud KMS key projects/p/locations/l/keyRings/r/cryptoKeys/k' };

describe('toConvergenceError', () => {
  it('maps PERMISSION_DENIED to exit 7 with the role, the resource and the principal', () => {
    const err = toConvergenceError(
      grpcError(
        7,
        'PERMISSION_DENIED',
        "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied on resource 'projects/p/.../k' (or it may not exist).",
      ),
      {
        ...ctx,
        role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter',
        resource: 'projects/p/k',
        principal: 'sa@p.iam.gserviceaccount.com',
        grantCommand: 'gcloud kms ...',
      },
    );
    assert.equal(err.exitCode, 7);
    assert.equal(err.code, 'PERMISSION_DENIED');
    assert.match(err.message, /^permission denied on Cloud KMS key .*: Permission 'cloudkms\.cryptoKeyVersions\.useToEncrypt' denied/);
    assert.ok(!err.message.includes('7 PERMISSION_DENIED'), 'the gax prefix is dropped');
    assert.match(
      err.suggestion!,
      /^grant roles\/cloudkms\.cryptoKeyEncrypterDecrypter on projects\/p\/k to sa@p\.iam\.gserviceaccount\.com \(it carries cloudkms\.cryptoKeyVersions\.useToEncrypt\)/,
    );
    assert.match(err.suggestion!, /e\.g\. gcloud kms \.\.\./);
    assert.match(err.suggestion!, /check that the name is right/);
    assert.deepEqual({ grpcCode: err.data?.grpcCode, grpcStatus: err.data?.grpcStatus }, { grpcCode: 7, grpcStatus: 'PERMISSION_DENIED' });
    assert.ok(err.cause, 'the original error is kept as the cause');
  });

  it('names the permission from the message when the caller did not', () => {
    const err = toConvergenceError(grpcError(7, 'PERMISSION_DENIED', "Permission 'run.services.get' denied on resource 'x'."), {
      what: 'service x',
    });
    assert.match(err.suggestion!, /a role that includes run\.services\.get on service x/);
    assert.match(err.suggestion!, /the account convergence runs as/);
  });

  it('maps a disabled API, over gRPC or REST, to `gcloud services enable`', () => {
    const overGrpc = toConvergenceError(
      grpcError(7, 'PERMISSION_DENIED', 'Secret Manager API has not been used in project 123 before or it is disabled.', {
        reason: 'SERVICE_DISABLED',
        domain: 'googleapis.com',
        errorInfoMetadata: { service: 'secretmanager.googleapis.com', consumer: 'projects/123' },
      }),
      { what: 'secret x' },
    );
    assert.equal(overGrpc.code, 'SERVICE_DISABLED');
    assert.equal(overGrpc.exitCode, 7);
    assert.equal(
      overGrpc.suggestion,
      'enable secretmanager.googleapis.com with `gcloud services enable secretmanager.googleapis.com --project 123`, wait a minute, then retry',
    );

    const restCommon = toConvergenceError(
      apiError(
        403,
        'BigQuery API has not been used in project 123 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/bigquery.googleapis.com/overview?project=123 then retry.',
        'accessNotConfigured',
      ),
      { what: 'dataset tenants', project: 'demo-project' },
    );
    assert.equal(restCommon.code, 'SERVICE_DISABLED');
    assert.match(restCommon.suggestion!, /gcloud services enable bigquery\.googleapis\.com --project demo-project/);

    const restGaxios = toConvergenceError(
      gaxiosError(403, {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: 'Cloud Run Admin API has not been used in project 123 before or it is disabled.',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'SERVICE_DISABLED',
            metadata: { service: 'run.googleapis.com', consumer: 'projects/123' },
          },
        ],
      }),
      { what: 'service api' },
    );
    assert.equal(restGaxios.code, 'SERVICE_DISABLED');
    assert.equal(restGaxios.data?.api, 'run.googleapis.com');
    assert.equal(restGaxios.data?.httpStatus, 403);
  });

  it('maps HTTP 403 accessDenied to exit 7 and 401 to the ADC login', () => {
    const denied = toConvergenceError(
      apiError(403, 'Access Denied: Dataset p:tenants: Permission bigquery.datasets.get denied', 'accessDenied'),
      {
        what: 'dataset tenants',
        role: 'roles/bigquery.dataViewer',
      },
    );
    assert.equal(denied.code, 'PERMISSION_DENIED');
    assert.equal(denied.exitCode, 7);
    assert.match(denied.suggestion!, /roles\/bigquery\.dataViewer/);
    const unauthenticated = toConvergenceError(apiError(401, 'Request had invalid authentication credentials.'), {
      what: 'dataset tenants',
    });
    assert.equal(unauthenticated.exitCode, 7);
    assert.match(unauthenticated.suggestion!, /gcloud auth application-default login/);
  });

  it('maps missing or expired credentials to exit 7 with the ADC login', () => {
    const cases = [
      grpcError(16, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token.'),
      new Error(
        'Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.',
      ),
      Object.assign(gaxiosError(400, 'invalid_grant'), { message: 'invalid_grant' }),
    ];
    for (const err of cases) {
      const mapped = toConvergenceError(err, ctx);
      assert.equal(mapped.code, 'UNAUTHENTICATED', mapped.message);
      assert.equal(mapped.exitCode, 7);
      assert.match(mapped.suggestion!, /gcloud auth application-default login/);
    }
  });

  it('says whether credentials are missing or expired, however the client raised it', () => {
    const missing = toConvergenceError(
      new Error(
        'Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.',
      ),
      ctx,
    );
    assert.match(missing.message, /credentials are missing/);
    assert.equal(missing.data?.credentials, 'missing');
    const expired = [
      // gaxios from the token endpoint, as google-auth-library rewrites its message
      Object.assign(gaxiosError(400, 'invalid_grant'), { message: 'invalid_grant: Token has been expired or revoked.' }),
      // a user login that needs reauthentication
      Object.assign(gaxiosError(400, 'invalid_rapt'), { message: 'invalid_grant: reauth related error (invalid_rapt)' }),
      // gRPC: the token could not be minted for the call
      grpcError(14, 'UNAVAILABLE', 'Getting metadata from plugin failed with error: invalid_grant: Token has been expired or revoked.'),
    ];
    for (const err of expired) {
      const mapped = toConvergenceError(err, ctx);
      assert.equal(mapped.exitCode, 7, mapped.message);
      assert.match(mapped.message, /expired or revoked/);
      assert.match(mapped.suggestion!, /gcloud auth application-default login/);
      assert.equal(isTransient(err), false, 'retrying cannot log anyone in');
    }
  });

  it('names the quota project command when user credentials bill the wrong project', () => {
    const cases = [
      grpcError(
        7,
        'PERMISSION_DENIED',
        'Your application is authenticating by using local Application Default Credentials. The run.googleapis.com API requires a quota project, which is not set by default.',
        { reason: 'SERVICE_DISABLED', errorInfoMetadata: { service: 'run.googleapis.com', consumer: 'projects/764086051850' } },
      ),
      gaxiosError(403, {
        code: 403,
        message: 'Cloud Run Admin API has not been used in project 764086051850 before or it is disabled.',
        status: 'PERMISSION_DENIED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'SERVICE_DISABLED',
            metadata: { service: 'run.googleapis.com', consumer: 'projects/764086051850' },
          },
        ],
      }),
      grpcError(7, 'PERMISSION_DENIED', 'Caller does not have required permission to use project other-project.', {
        reason: 'USER_PROJECT_DENIED',
      }),
    ];
    for (const err of cases) {
      const mapped = toConvergenceError(err, { ...ctx, project: 'my-project' });
      assert.equal(mapped.exitCode, 7, mapped.message);
      assert.equal(mapped.data?.credentials, 'quota-project', mapped.message);
      assert.match(mapped.suggestion!, /gcloud auth application-default set-quota-project my-project/);
    }
    // The API really disabled in the environment's own project stays a `gcloud services enable`.
    const disabled = toConvergenceError(
      grpcError(7, 'PERMISSION_DENIED', 'Cloud Run Admin API has not been used in project 123 before or it is disabled.', {
        reason: 'SERVICE_DISABLED',
        errorInfoMetadata: { service: 'run.googleapis.com', consumer: 'projects/123' },
      }),
      ctx,
    );
    assert.equal(disabled.code, 'SERVICE_DISABLED');
  });

  it('credentialsError leaves other errors alone and passes auth ConvergenceErrors through', () => {
    assert.equal(credentialsError(grpcError(5, 'NOT_FOUND', 'no such key'), ctx), undefined);
    assert.equal(credentialsError(notFoundError('x'), ctx), undefined);
    const auth = toConvergenceError(new Error('Could not load the default credentials.'), ctx);
    assert.equal(credentialsError(auth, ctx), auth);
  });

  it('maps NOT_FOUND and HTTP 404 to exit 8 naming the thing', () => {
    for (const err of [
      grpcError(5, 'NOT_FOUND', 'CryptoKey projects/p/.../k not found.'),
      apiError(404, 'Not found: Dataset p:nope', 'notFound'),
    ]) {
      const mapped = toConvergenceError(err, ctx);
      assert.equal(mapped.exitCode, 8);
      assert.equal(mapped.code, 'NOT_FOUND');
      assert.ok(mapped.message.startsWith(`${ctx.what} not found`));
    }
  });

  it('maps quota and rate limits to exit 6, transient only when they clear by themselves', () => {
    const quota = toConvergenceError(
      grpcError(8, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric.', {
        errorInfoMetadata: { quota_metric: 'cloudkms.googleapis.com/crypto_requests' },
      }),
      ctx,
    );
    assert.equal(quota.code, 'GCP_QUOTA');
    assert.equal(quota.exitCode, 6);
    assert.match(quota.message, /cloudkms\.googleapis\.com\/crypto_requests/);
    assert.equal(quota.data?.transient, undefined);
    const rate = toConvergenceError(apiError(429, 'Exceeded rate limits: too many table update operations', 'rateLimitExceeded'), ctx);
    assert.equal(rate.exitCode, 6);
    assert.equal(rate.data?.transient, true);
    // BigQuery sends both as 403, which must not read as a permission problem.
    const bigqueryQuota = toConvergenceError(
      apiError(403, 'Quota exceeded: Your project exceeded quota for free query bytes scanned', 'quotaExceeded'),
      ctx,
    );
    assert.equal(bigqueryQuota.code, 'GCP_QUOTA');
    assert.equal(bigqueryQuota.data?.transient, undefined);
    const bigqueryRate = toConvergenceError(apiError(403, 'Exceeded rate limits', 'rateLimitExceeded'), ctx);
    assert.equal(bigqueryRate.code, 'GCP_QUOTA');
    assert.equal(bigqueryRate.data?.transient, true);
  });

  it('maps UNAVAILABLE, DEADLINE_EXCEEDED, 5xx and network errors to a transient exit 1', () => {
    const cases = [
      grpcError(14, 'UNAVAILABLE', 'No connection established'),
      grpcError(4, 'DEADLINE_EXCEEDED', 'Deadline exceeded'),
      apiError(503, 'Service Unavailable'),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ];
    for (const err of cases) {
      const mapped = toConvergenceError(err, ctx);
      assert.equal(mapped.code, 'GCP_UNAVAILABLE', mapped.message);
      assert.equal(mapped.exitCode, 1);
      assert.equal(mapped.data?.transient, true);
      assert.ok(mapped.suggestion);
    }
  });

  it('maps request and state errors to exit 2', () => {
    assert.equal(toConvergenceError(grpcError(9, 'FAILED_PRECONDITION', 'is not enabled'), ctx).exitCode, 2);
    assert.equal(toConvergenceError(grpcError(3, 'INVALID_ARGUMENT', 'bad name'), ctx).code, 'INVALID_ARGUMENT');
    const exists = toConvergenceError(grpcError(6, 'ALREADY_EXISTS', 'Secret [projects/1/secrets/x] already exists.'), {
      what: 'secret x',
    });
    assert.equal(exists.code, 'CONFLICT');
    assert.equal(exists.exitCode, 2);
    assert.equal(toConvergenceError(apiError(409, 'Already Exists: Table p:d.t', 'duplicate'), ctx).exitCode, 2);
  });

  it('passes ConvergenceErrors through and calls anything else unexpected', () => {
    const own = notFoundError('tenant x not found');
    assert.equal(toConvergenceError(own, ctx), own);
    const odd = toConvergenceError(new TypeError('cannot read properties of undefined'), ctx);
    assert.ok(odd instanceof ConvergenceError);
    assert.equal(odd.code, 'GCP_ERROR');
    assert.equal(odd.exitCode, 1);
  });
});

describe('googleErrorFacts and isTransient', () => {
  it('tells gRPC codes from HTTP statuses', () => {
    const overGrpc = googleErrorFacts(grpcError(5, 'NOT_FOUND', 'x'));
    assert.equal(overGrpc.grpcCode, 5);
    assert.equal(overGrpc.httpStatus, undefined);
    const overHttp = googleErrorFacts(apiError(404, 'x'));
    assert.equal(overHttp.grpcCode, 5);
    assert.equal(overHttp.httpStatus, 404);
    // gax REST fallback: mapped gRPC code in `code`, the received status apart.
    const fallback = Object.assign(new Error('x'), { code: 13, httpStatusCode: 502 });
    assert.equal(googleErrorFacts(fallback).httpStatus, 502);
    assert.equal(googleErrorFacts(fallback).grpcCode, 13);
  });

  it('retries only what may succeed unchanged', () => {
    assert.equal(isTransient(grpcError(14, 'UNAVAILABLE', 'x')), true);
    assert.equal(isTransient(grpcError(4, 'DEADLINE_EXCEEDED', 'x')), true);
    assert.equal(isTransient(grpcError(8, 'RESOURCE_EXHAUSTED', 'x', { reason: 'RATE_LIMIT_EXCEEDED' })), true);
    assert.equal(isTransient(grpcError(8, 'RESOURCE_EXHAUSTED', 'x')), false);
    assert.equal(isTransient(apiError(429, 'x')), true);
    assert.equal(isTransient(apiError(403, 'Quota exceeded', 'quotaExceeded')), false);
    assert.equal(isTransient(apiError(500, 'x', 'backendError')), true);
    assert.equal(isTransient(grpcError(7, 'PERMISSION_DENIED', 'x')), false);
    assert.equal(isTransient(grpcError(5, 'NOT_FOUND', 'x')), false);
    assert.equal(isTransient(new Error('plain')), false);
  });
});

describe('retryTransient', () => {
  const fast = { baseDelayMs: 1, maxDelayMs: 1 };

  it('retries transient failures up to the attempt limit', async () => {
    let calls = 0;
    const result = await retryTransient(async (attempt) => {
      calls++;
      if (attempt < 3) throw grpcError(14, 'UNAVAILABLE', 'x');
      return 'ok';
    }, fast);
    assert.equal(result, 'ok');
    assert.equal(calls, 3);

    calls = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw grpcError(14, 'UNAVAILABLE', 'still down');
        },
        { ...fast, attempts: 2 },
      ),
      /still down/,
    );
    assert.equal(calls, 2);
  });

  it('stops at the first failure that is not transient', async () => {
    let calls = 0;
    await assert.rejects(
      retryTransient(async () => {
        calls++;
        throw grpcError(7, 'PERMISSION_DENIED', 'no');
      }, fast),
      /no/,
    );
    assert.equal(calls, 1);
  });

  it('makes four attempts unless told otherwise', async () => {
    let calls = 0;
    await assert.rejects(
      retryTransient(async () => {
        calls++;
        throw grpcError(4, 'DEADLINE_EXCEEDED', 'slow');
      }, fast),
      /slow/,
    );
    assert.equal(calls, 4);
  });

  it('retries a response damaged in transit', async () => {
    let calls = 0;
    const result = await retryTransient(async (attempt) => {
      calls++;
      if (attempt === 1) throw new IntegrityError('checksum mismatch');
      return 'ok';
    }, fast);
    assert.equal(result, 'ok');
    assert.equal(calls, 2);
  });
});
