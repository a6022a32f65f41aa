/**
 * What an environment's monitoring should be, derived from convergence.yaml alone: the log-based
 * metrics over the headless job's JSON lines, the uptime check on the service's /health, and the
 * alert policies for the seed SLOs (availability 99.9 %, error rate < 0.1 %, P95 < 500 ms,
 * P99 < 1000 ms) and for failed runs. Pure: no API is called here.
 */
import type { Aggregation, AlertPolicySpec, LogMetricSpec, ThresholdCondition, UptimeCheckSpec } from '../../backends/monitoring/port.ts';
import type { NotificationEvent } from '../../domain/notifications.ts';

/** Every resource convergence owns carries these user labels; setup never touches one without them. */
const MANAGED_BY = { key: 'managed_by', value: 'convergence' } as const;
const ENV_LABEL = 'convergence_env';
export const ID_LABEL = 'convergence_id';

export const ownedLabels = (envName: string, id: string): Record<string, string> => ({
  [MANAGED_BY.key]: MANAGED_BY.value,
  [ENV_LABEL]: envName,
  [ID_LABEL]: id,
});

/** True for a resource of this environment that convergence made (its user labels say so). */
export const isOwned = (userLabels: Record<string, string>, envName: string): boolean =>
  userLabels[MANAGED_BY.key] === MANAGED_BY.value && userLabels[ENV_LABEL] === envName;

/** Log-based metric ids start with this; metric ids carry no labels, so the prefix is the mark. */
export const METRIC_PREFIX = 'convergence/';
const RUNS_FAILED_METRIC = `${METRIC_PREFIX}runs_failed`;
const DQ_FAILED_METRIC = `${METRIC_PREFIX}dq_failed`;

/**
 * The line a headless run writes when it ends badly (src/job/tasks.ts, run-pipeline and dispatch):
 * severity ERROR, jsonPayload.status and jsonPayload.exitCode, and the run's labels, which Cloud
 * Logging lifts from logging.googleapis.com/labels into the entry's labels. Step lines and the
 * command's closing error line carry no status, so each run is counted once.
 */
const RUN_END = ['resource.type="cloud_run_job"', 'severity>=ERROR', 'labels.run_id:*'];
const RUN_LABELS = [
  { key: 'tenant_id', description: 'Tenant of the run' },
  { key: 'pipeline_id', description: 'Pipeline of the run' },
];
const RUN_LABEL_EXTRACTORS = { tenant_id: 'EXTRACT(labels.tenant_id)', pipeline_id: 'EXTRACT(labels.pipeline_id)' };

/** Project-wide (the filter names no environment), so environments sharing a project share them. */
export function desiredLogMetrics(): LogMetricSpec[] {
  return [
    {
      id: RUNS_FAILED_METRIC,
      description: 'Pipeline runs that ended FAILED or TIMEOUT, by tenant and pipeline (managed by convergence)',
      filter: [...RUN_END, 'jsonPayload.status=("FAILED" OR "TIMEOUT")'].join(' AND '),
      labelExtractors: RUN_LABEL_EXTRACTORS,
      labels: RUN_LABELS,
    },
    {
      id: DQ_FAILED_METRIC,
      description: 'Pipeline runs stopped by a failed data-quality check (exit code 4), by tenant and pipeline (managed by convergence)',
      filter: [...RUN_END, 'jsonPayload.status:*', 'jsonPayload.exitCode=4'].join(' AND '),
      labelExtractors: RUN_LABEL_EXTRACTORS,
      labels: RUN_LABELS,
    },
  ];
}

export const UPTIME_ID = 'health';

/** HTTPS GET of the health path every minute; a private service is called with the Monitoring agent's OIDC token. */
export function desiredUptimeCheck(envName: string, serviceUri: string, healthPath: string, isPublic: boolean): UptimeCheckSpec {
  const url = new URL(serviceUri);
  return {
    displayName: `convergence ${envName}: ${url.host}${healthPath}`,
    host: url.host,
    path: healthPath,
    port: 443,
    useSsl: true,
    validateSsl: true,
    oidcToken: !isPublic,
    periodSeconds: 60,
    timeoutSeconds: 10,
    userLabels: ownedLabels(envName, UPTIME_ID),
  };
}

/** Which targets a policy notifies: the events a target subscribes to that the policy stands for. */
type PolicyAudience = 'service' | 'runs' | 'dq';

const AUDIENCE_EVENTS: Record<PolicyAudience, ReadonlyArray<NotificationEvent | 'all'>> = {
  // The API's SLOs concern every operator who asked for alerts at all.
  service: ['all', 'run_failed', 'run_timeout', 'dq_failed'],
  runs: ['all', 'run_failed', 'run_timeout'],
  dq: ['all', 'dq_failed'],
};

/** Events that make a notification target an alerting channel; a target with none of them gets no channel. */
export const ALERTING_EVENTS: ReadonlySet<string> = new Set(AUDIENCE_EVENTS.service);

export const audienceWants = (audience: PolicyAudience, events: readonly string[]) =>
  events.some((event) => AUDIENCE_EVENTS[audience].includes(event as NotificationEvent));

export interface PolicyPlan {
  id: string;
  audience: PolicyAudience;
  spec: AlertPolicySpec;
}

const agg = (periodSeconds: number, aligner: string, reducer: string, groupBy: string[]): Aggregation => ({
  alignmentPeriodSeconds: periodSeconds,
  perSeriesAligner: aligner,
  crossSeriesReducer: reducer,
  groupByFields: groupBy,
});

const threshold = (
  c: Partial<ThresholdCondition> & Pick<ThresholdCondition, 'displayName' | 'filter' | 'aggregations'>,
): ThresholdCondition => ({
  denominatorFilter: '',
  denominatorAggregations: [],
  comparison: 'COMPARISON_GT',
  thresholdValue: 0,
  durationSeconds: 0,
  ...c,
});

export interface PolicyInputs {
  envName: string;
  service: string;
  /** The uptime check's id (last part of its name); undefined when there is none, and then no uptime policy. */
  uptimeCheckId: string | undefined;
}

/** The alert policies of an environment, without notification channels (setup adds those per audience). */
export function desiredPolicies(inputs: PolicyInputs): PolicyPlan[] {
  const { envName, service } = inputs;
  const requests = `resource.type="cloud_run_revision" AND resource.labels.service_name="${service}" AND metric.type="run.googleapis.com/request_count"`;
  const errors = `${requests} AND metric.labels.response_code_class="5xx"`;
  const latencies = `resource.type="cloud_run_revision" AND resource.labels.service_name="${service}" AND metric.type="run.googleapis.com/request_latencies"`;
  const byService = ['resource.label.service_name'];
  const runbook = (what: string) =>
    `${what}\n\nService \`${service}\` of environment \`${envName}\`. Managed by \`convergence monitoring setup --env ${envName}\`: edits made here are reset by the next setup.`;
  const policy = (
    id: string,
    audience: PolicyAudience,
    severity: string,
    displayName: string,
    doc: string,
    condition: ThresholdCondition,
  ): PolicyPlan => ({
    id,
    audience,
    spec: {
      displayName: `convergence ${envName}: ${displayName}`,
      documentation: runbook(doc),
      userLabels: ownedLabels(envName, id),
      conditions: [condition],
      combiner: 'OR',
      enabled: true,
      notificationChannels: [],
      severity,
    },
  });
  /** A latency SLO: the P<percentile> request latency above <ms> for 5 minutes. */
  const latencyPolicy = (percentile: 50 | 95 | 99, ms: number, measure: string) =>
    policy(
      `latency-p${percentile}`,
      'service',
      'WARNING',
      `API latency P${percentile} > ${ms} ms`,
      `${measure} API request latency stayed above ${ms} ms for 5 minutes (SLO: P${percentile} < ${ms} ms).`,
      threshold({
        displayName: `request latency P${percentile} > ${ms} ms for 5 min`,
        filter: latencies,
        aggregations: [agg(300, 'ALIGN_DELTA', `REDUCE_PERCENTILE_${percentile}`, byService)],
        thresholdValue: ms,
        durationSeconds: 300,
      }),
    );
  const plans: PolicyPlan[] = [
    policy(
      'error-rate',
      'service',
      'CRITICAL',
      'API error rate > 0.1%',
      'More than 0.1 % of the API requests answered 5xx over 5 minutes (SLO: error rate < 0.1 %).',
      threshold({
        displayName: '5xx / all requests > 0.1% for 5 min',
        filter: errors,
        aggregations: [agg(300, 'ALIGN_RATE', 'REDUCE_SUM', byService)],
        denominatorFilter: requests,
        denominatorAggregations: [agg(300, 'ALIGN_RATE', 'REDUCE_SUM', byService)],
        thresholdValue: 0.001,
        durationSeconds: 300,
      }),
    ),
    policy(
      'availability',
      'service',
      'CRITICAL',
      'API availability < 99.9%',
      'Fewer than 99.9 % of the API requests of the last hour succeeded (SLO: availability 99.9 %). A slow burn the 5-minute error-rate alert does not catch.',
      threshold({
        displayName: 'successful requests < 99.9% over 1 h',
        filter: errors,
        aggregations: [agg(3600, 'ALIGN_RATE', 'REDUCE_SUM', byService)],
        denominatorFilter: requests,
        denominatorAggregations: [agg(3600, 'ALIGN_RATE', 'REDUCE_SUM', byService)],
        thresholdValue: 0.001,
        durationSeconds: 0,
      }),
    ),
    latencyPolicy(50, 100, 'The median'),
    latencyPolicy(95, 500, 'The 95th percentile of the'),
    latencyPolicy(99, 1000, 'The 99th percentile of the'),
    policy(
      'runs-failed',
      'runs',
      'ERROR',
      'pipeline run failed',
      `A pipeline run ended FAILED or TIMEOUT. See \`convergence pipeline runs --env ${envName}\` for the run and its error.`,
      threshold({
        displayName: 'failed runs > 0, by tenant and pipeline',
        filter: `resource.type="cloud_run_job" AND metric.type="logging.googleapis.com/user/${RUNS_FAILED_METRIC}"`,
        aggregations: [agg(300, 'ALIGN_SUM', 'REDUCE_SUM', ['metric.label.tenant_id', 'metric.label.pipeline_id'])],
      }),
    ),
    policy(
      'dq-failed',
      'dq',
      'WARNING',
      'data quality failed',
      `A pipeline run was stopped by a failed data-quality check. See \`convergence pipeline runs --env ${envName}\` for the run and its checks.`,
      threshold({
        displayName: 'data-quality failures > 0, by tenant and pipeline',
        filter: `resource.type="cloud_run_job" AND metric.type="logging.googleapis.com/user/${DQ_FAILED_METRIC}"`,
        aggregations: [agg(300, 'ALIGN_SUM', 'REDUCE_SUM', ['metric.label.tenant_id', 'metric.label.pipeline_id'])],
      }),
    ),
  ];
  if (inputs.uptimeCheckId !== undefined) {
    plans.push(
      policy(
        'uptime',
        'service',
        'CRITICAL',
        'health check failing',
        'The uptime check on the health path failed from more than one region (SLO: availability 99.9 %).',
        threshold({
          displayName: 'uptime check failed in 2+ regions',
          filter: `resource.type="uptime_url" AND metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND metric.labels.check_id="${inputs.uptimeCheckId}"`,
          aggregations: [agg(1200, 'ALIGN_NEXT_OLDER', 'REDUCE_COUNT_FALSE', ['resource.label.host'])],
          thresholdValue: 1,
          durationSeconds: 60,
        }),
      ),
    );
  }
  return plans;
}
