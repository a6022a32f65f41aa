import { z } from 'zod';
import { DURATION_PATTERN } from '../lib/duration.ts';

/** Durations as users write them: 90s, 10m, 24h, 90d (or plain milliseconds). */
const duration = z.string().regex(DURATION_PATTERN, 'expected a duration like 30s, 10m, 24h or 90d');

export const PROJECT_ID_PATTERN = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

/**
 * Absolute folders the tenants' file sources may read with an absolute `path:` (none by default;
 * relative paths read data/<tenant>/). `{tenant}` in a root stands for the tenant id, which keeps
 * the tenants of a shared export folder apart; a root without it is open to every tenant.
 */
const fileRoots = z
  .array(
    z
      .string()
      .startsWith('/', 'expected an absolute folder, e.g. /srv/exports/{tenant}')
      .refine((root) => !root.split('/').includes('..'), 'expected a folder without ".."'),
  )
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
  })
  .strict();

const localEnvironment = z
  .object({
    backend: z.literal('local'),
    /** Directory of local state, relative to the workspace; defaults to .convergence */
    state_dir: z.string().min(1).optional(),
    file_roots: fileRoots,
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
