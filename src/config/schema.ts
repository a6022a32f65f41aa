import { z } from 'zod';
import { notificationsSchema } from '../domain/notifications.ts';
import { DURATION_PATTERN } from '../lib/duration.ts';
import { parseHostEntry } from '../lib/net/private-hosts.ts';

/** Durations as users write them: 90s, 10m, 24h, 90d (or plain milliseconds). */
const duration = z.string().regex(DURATION_PATTERN, 'expected a duration like 30s, 10m, 24h or 90d');

export const PROJECT_ID_PATTERN = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

/**
 * Where the tenants' file sources may read besides data/<tenant>/ (nothing by default): absolute
 * folders for an absolute `path:`, and `gs://bucket/prefix/` for a gs:// one. `{tenant}` in a
 * root stands for the tenant id, which keeps the tenants of a shared folder or bucket apart; a
 * root without it is open to every tenant.
 */
/** gs://, a bucket name (lowercase letters, digits, "-", "_", "."), then an optional prefix without wildcards. */
const GCS_ROOT = /^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/[^*?[\]]*)?$/;
const fileRoot = z
  .string()
  .refine(
    (root) => root.startsWith('/') || /^gs:\/\//i.test(root),
    'expected an absolute folder or a gs:// prefix, e.g. /srv/exports/{tenant} or gs://acme-exports/{tenant}/',
  )
  .refine((root) => !root.split('/').includes('..'), 'expected a folder without ".."')
  .refine(
    (root) => !/^gs:\/\//i.test(root) || GCS_ROOT.test(root.replaceAll('{tenant}', 'tenant')),
    'expected gs://<bucket>/<prefix>/ with a lowercase bucket name and no wildcards, e.g. gs://acme-exports/{tenant}/',
  );
const fileRoots = z.array(fileRoot).optional();

/**
 * What the tenants' REST sources may reach besides the public internet (nothing by default):
 * `private_hosts` lists the `host` or `host:port` an operator runs internal APIs on (loopback,
 * private or link-local addresses are refused for every other host); `google_adc` lets a source
 * with `auth: { type: google }` and no key_secret use the environment's own Google credentials.
 */
const restSources = z
  .object({
    private_hosts: z
      .array(
        z
          .string()
          .refine(
            (entry) => parseHostEntry(entry) !== undefined,
            'expected a host or host:port, e.g. 127.0.0.1:8787, localhost or [::1]:8080',
          ),
      )
      .default([]),
    google_adc: z.boolean().default(false),
  })
  .strict()
  .optional();

const canary = z
  .object({
    steps: z.array(z.number().int().min(1).max(100)).nonempty().optional(),
    interval: duration.optional(),
    max_error_rate: z.number().min(0).max(1).optional(),
    max_latency_p95_ms: z.number().int().positive().optional(),
    failure_limit: z.number().int().min(0).optional(),
    health_path: z.string().startsWith('/').optional(),
  })
  .strict();

const SECONDS_PATTERN = /^(\d+)(s|m|h)$/;
const secondsOf = (value: string) => {
  const [, amount, unit] = SECONDS_PATTERN.exec(value) ?? [];
  return Number(amount) * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1);
};
/** A whole-second duration Cloud Run accepts, within 1 second and `maxSeconds`. */
const runDuration = (maxSeconds: number) =>
  z
    .string()
    .regex(SECONDS_PATTERN, 'expected a duration in whole seconds, minutes or hours, e.g. 300s, 10m or 1h')
    .refine((value) => secondsOf(value) >= 1 && secondsOf(value) <= maxSeconds, `expected a duration between 1s and ${maxSeconds}s`);

/**
 * What deploy sets on the Cloud Run service's revisions and on the pipeline job (Cloud Run
 * Admin API v2 fields); a key left out keeps what the service or job has.
 */
const serviceSettings = {
  cpu: z
    .string()
    .regex(/^(\d+(\.\d+)?|\d+m)$/, 'expected a CPU limit like "1", "2" or "1000m"')
    .optional(),
  memory: z
    .string()
    .regex(/^\d+(Mi|Gi)$/, 'expected a memory limit like "512Mi" or "2Gi"')
    .optional(),
  min_instances: z.number().int().min(0, 'expected 0 or more instances').optional(),
  max_instances: z.number().int().min(1, 'expected at least 1 instance').optional(),
  concurrency: z
    .number()
    .int()
    .min(1, 'expected 1 to 1000 requests per instance')
    .max(1000, 'expected 1 to 1000 requests per instance')
    .optional(),
  /** Request timeout of the service. */
  timeout: runDuration(3600).optional(),
  ingress: z
    .enum(['all', 'internal', 'internal-and-cloud-load-balancing'], {
      message: 'expected all, internal or internal-and-cloud-load-balancing',
    })
    .optional(),
  /** Anyone may invoke the service (invokerIamDisabled); private services need an ID token. */
  public: z.boolean().default(false),
  /** Timeout of each task of the pipeline job (up to 168h). */
  task_timeout: runDuration(168 * 3600).optional(),
  max_retries: z.number().int().min(0, 'expected 0 to 10 retries').max(10, 'expected 0 to 10 retries').optional(),
};

const gcpEnvironment = z
  .object({
    backend: z.literal('gcp').optional(),
    project: z.string().regex(PROJECT_ID_PATTERN, 'expected a Google Cloud project id').optional(),
    region: z.string().min(1).default('us-central1'),
    location: z.string().min(1).default('US'),
    kms_key: z
      .string()
      .regex(
        /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/,
        'expected projects/P/locations/L/keyRings/R/cryptoKeys/K',
      )
      .optional(),
    state_bucket: z.string().min(3).optional(),
    service: z
      .string()
      .regex(/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/, 'expected a Cloud Run service name')
      .optional(),
    job: z
      .string()
      .regex(/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/, 'expected a Cloud Run job name')
      .optional(),
    image: z.string().min(1).optional(),
    service_account: z.string().email('expected a service account email').optional(),
    /** The pipeline job's runtime account; the job runs as service_account when absent. */
    job_service_account: z.string().email('expected a service account email').optional(),
    /** The account Cloud Scheduler calls the job with; service_account when absent. */
    scheduler_service_account: z.string().email('expected a service account email').optional(),
    ...serviceSettings,
    /**
     * Run each tenant's warehouse jobs as its own service account (impersonated), e.g.
     * tenant-{tenant}@PROJECT.iam.gserviceaccount.com; off when absent.
     */
    tenant_service_account: z
      .string()
      .regex(
        /^[a-z0-9{}-]+@[a-z0-9.-]+\.gserviceaccount\.com$/,
        'expected a service account email, e.g. tenant-{tenant}@PROJECT.iam.gserviceaccount.com',
      )
      .optional(),
    production: z.boolean().default(false),
    canary: canary.optional(),
    file_roots: fileRoots,
    rest_sources: restSources,
    notifications: notificationsSchema.optional(),
  })
  .strict();

const localEnvironment = z
  .object({
    backend: z.literal('local'),
    /** Directory of local state, relative to the workspace; defaults to .convergence */
    state_dir: z.string().min(1).optional(),
    file_roots: fileRoots,
    rest_sources: restSources,
    notifications: notificationsSchema.optional(),
  })
  .strict();

// Discriminated on `backend` (absent means gcp), so an error names the offending key of the
// environment the user meant instead of a bare "Invalid input" for the whole union.
const environmentSchema = z.discriminatedUnion('backend', [localEnvironment, gcpEnvironment]);

const ENV_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

export const workspaceConfigSchema = z
  .object({
    version: z.literal(1).default(1),
    default_env: z.string().regex(ENV_NAME_PATTERN, 'expected an environment name').optional(),
    environments: z.record(z.string().regex(ENV_NAME_PATTERN, 'expected an environment name'), environmentSchema.nullable()).default({}),
  })
  .strict();

export type WorkspaceConfig = z.infer<typeof workspaceConfigSchema>;
export type GcpEnvironment = z.infer<typeof gcpEnvironment>;
