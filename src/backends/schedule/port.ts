/**
 * The Schedule port: cron jobs that start the headless job tasks. gcp keeps them in Cloud
 * Scheduler (HTTP targets on the Cloud Run Jobs `:run` endpoint); local has no scheduler daemon,
 * so it only runs a job now, in process.
 */

/** An HTTP target as convergence writes it: POST with a JSON body and an OAuth token. */
interface HttpTargetSpec {
  uri: string;
  httpMethod: string;
  /** Headers convergence sets; Google may add its own (User-Agent), which are not compared. */
  headers: Record<string, string>;
  body: string;
  oauthServiceAccount: string | null;
  oauthScope: string | null;
  /** Set only on jobs found with an OIDC token instead (never written by convergence). */
  oidcServiceAccount: string | null;
}

interface RetrySpec {
  retryCount: number;
  maxRetryDurationSeconds: number;
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  maxDoublings: number;
}

export interface JobSpec {
  /** Full resource name: projects/P/locations/L/jobs/convergence-<env>-<id>. */
  name: string;
  description: string;
  schedule: string;
  timeZone: string;
  /** null when the job found has another kind of target (Pub/Sub, App Engine). */
  httpTarget: HttpTargetSpec | null;
  retry: RetrySpec;
  attemptDeadlineSeconds: number;
}

interface JobStatus {
  code: number;
  message: string;
}

export interface ScheduledJob {
  spec: JobSpec;
  state: string;
  lastAttemptTime: Date | null;
  /** Result of the last attempt; null when it succeeded or never ran. */
  lastStatus: JobStatus | null;
}

export interface Schedule {
  readonly kind: 'local' | 'gcp';
  /** Where jobs live: projects/P/locations/L (gcp) or the environment name (local). */
  readonly parent: string;
  get(name: string): Promise<ScheduledJob | undefined>;
  /** Jobs under the parent whose id starts with `idPrefix`. */
  list(idPrefix: string): Promise<ScheduledJob[]>;
  create(spec: JobSpec): Promise<ScheduledJob>;
  /** Updates only the fields named by `mask` (snake_case paths, e.g. retry_config.retry_count). */
  update(spec: JobSpec, mask: string[]): Promise<ScheduledJob>;
  /** Runs the job now. */
  run(name: string): Promise<ScheduledJob | undefined>;
  delete(name: string): Promise<void>;
  close(): Promise<void>;
}
