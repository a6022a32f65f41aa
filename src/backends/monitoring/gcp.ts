import type { protos as loggingProtos } from '@google-cloud/logging';
import type { protos } from '@google-cloud/monitoring';
import type { GcpClients } from '../gcp/clients.ts';
import { GrpcCode, googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type {
  Aggregation,
  AlertPolicySpec,
  LogMetricSpec,
  Monitoring,
  NotificationChannelSpec,
  ThresholdCondition,
  UptimeCheckSpec,
} from './port.ts';

type IAlertPolicy = protos.google.monitoring.v3.IAlertPolicy;
type ICondition = protos.google.monitoring.v3.AlertPolicy.ICondition;
type IAggregation = protos.google.monitoring.v3.IAggregation;
type IChannel = protos.google.monitoring.v3.INotificationChannel;
type IUptime = protos.google.monitoring.v3.IUptimeCheckConfig;
type IDuration = protos.google.protobuf.IDuration;
type ILogMetric = loggingProtos.google.logging.v2.ILogMetric;

/** The MetricsServiceV2 calls the adapter makes (@google-cloud/logging types its GAPIC clients as any). */
interface LogMetricsClient {
  getLogMetric(request: { metricName: string }, options: object): Promise<[ILogMetric]>;
  listLogMetrics(
    request: { parent: string; pageSize?: number; pageToken?: string },
    options: object,
  ): Promise<[ILogMetric[], unknown, { nextPageToken?: string | null } | undefined]>;
  createLogMetric(request: { parent: string; metric: ILogMetric }, options: object): Promise<[ILogMetric]>;
  updateLogMetric(request: { metricName: string; metric: ILogMetric }, options: object): Promise<[ILogMetric]>;
}

const LOGGING_API = 'logging.googleapis.com';
const MONITORING_API = 'monitoring.googleapis.com';

const seconds = (value: number): IDuration => ({ seconds: value, nanos: 0 });
const fromDuration = (value: IDuration | null | undefined): number =>
  value ? Number(value.seconds ?? 0) + Number(value.nanos ?? 0) / 1e9 : 0;
const enumName = (value: unknown, fallback: string): string => (value === null || value === undefined ? fallback : String(value));

/** The metric id as it appears in a resource name: percent-encoded, so its "/" is not a path separator. */
const logMetricName = (project: string, id: string) => `projects/${project}/metrics/${encodeURIComponent(id)}`;

function toApiMetric(spec: LogMetricSpec): ILogMetric {
  return {
    name: spec.id,
    description: spec.description,
    filter: spec.filter,
    labelExtractors: spec.labelExtractors,
    metricDescriptor: {
      metricKind: 'DELTA',
      valueType: 'INT64',
      unit: '1',
      labels: spec.labels.map((label) => ({ key: label.key, valueType: 'STRING', description: label.description })),
    },
  };
}

function fromApiMetric(metric: ILogMetric): LogMetricSpec {
  return {
    id: metric.name ?? '',
    description: metric.description ?? '',
    filter: metric.filter ?? '',
    labelExtractors: { ...(metric.labelExtractors ?? {}) },
    labels: (metric.metricDescriptor?.labels ?? []).map((label) => ({ key: label.key ?? '', description: label.description ?? '' })),
  };
}

function toApiChannel(spec: NotificationChannelSpec): IChannel {
  return {
    ...(spec.name ? { name: spec.name } : {}),
    type: spec.type,
    displayName: spec.displayName,
    description: spec.description,
    labels: spec.labels,
    userLabels: spec.userLabels,
    enabled: { value: spec.enabled },
  };
}

function fromApiChannel(channel: IChannel): NotificationChannelSpec {
  return {
    name: channel.name ?? '',
    type: channel.type ?? '',
    displayName: channel.displayName ?? '',
    description: channel.description ?? '',
    labels: { ...(channel.labels ?? {}) },
    userLabels: { ...(channel.userLabels ?? {}) },
    // An unset BoolValue means enabled, as the API documents.
    enabled: channel.enabled?.value ?? true,
  };
}

const toApiAggregation = (a: Aggregation): IAggregation => ({
  alignmentPeriod: seconds(a.alignmentPeriodSeconds),
  perSeriesAligner: a.perSeriesAligner as keyof typeof protos.google.monitoring.v3.Aggregation.Aligner,
  crossSeriesReducer: a.crossSeriesReducer as keyof typeof protos.google.monitoring.v3.Aggregation.Reducer,
  groupByFields: a.groupByFields,
});

const fromApiAggregation = (a: IAggregation): Aggregation => ({
  alignmentPeriodSeconds: fromDuration(a.alignmentPeriod),
  perSeriesAligner: enumName(a.perSeriesAligner, 'ALIGN_NONE'),
  crossSeriesReducer: enumName(a.crossSeriesReducer, 'REDUCE_NONE'),
  groupByFields: [...(a.groupByFields ?? [])],
});

function toApiCondition(c: ThresholdCondition): ICondition {
  return {
    displayName: c.displayName,
    conditionThreshold: {
      filter: c.filter,
      aggregations: c.aggregations.map(toApiAggregation),
      ...(c.denominatorFilter
        ? { denominatorFilter: c.denominatorFilter, denominatorAggregations: c.denominatorAggregations.map(toApiAggregation) }
        : {}),
      comparison: c.comparison as keyof typeof protos.google.monitoring.v3.ComparisonType,
      thresholdValue: c.thresholdValue,
      duration: seconds(c.durationSeconds),
      trigger: { count: 1 },
    },
  };
}

const OTHER_KINDS = [
  'conditionAbsent',
  'conditionMatchedLog',
  'conditionMonitoringQueryLanguage',
  'conditionPrometheusQueryLanguage',
  'conditionSql',
] as const;

/** Conditions of other kinds keep their kind so a diff shows they are not what convergence writes. */
function fromApiCondition(c: ICondition): ThresholdCondition {
  const t = c.conditionThreshold;
  const kind = t ? 'threshold' : (OTHER_KINDS.find((key) => c[key]) ?? 'unknown');
  return {
    kind,
    displayName: c.displayName ?? '',
    filter: t?.filter ?? '',
    aggregations: (t?.aggregations ?? []).map(fromApiAggregation),
    denominatorFilter: t?.denominatorFilter ?? '',
    denominatorAggregations: (t?.denominatorAggregations ?? []).map(fromApiAggregation),
    comparison: enumName(t?.comparison, 'COMPARISON_UNSPECIFIED'),
    thresholdValue: Number(t?.thresholdValue ?? 0),
    durationSeconds: fromDuration(t?.duration),
  };
}

function toApiPolicy(spec: AlertPolicySpec): IAlertPolicy {
  return {
    ...(spec.name ? { name: spec.name } : {}),
    displayName: spec.displayName,
    documentation: { content: spec.documentation, mimeType: 'text/markdown' },
    userLabels: spec.userLabels,
    conditions: spec.conditions.map(toApiCondition),
    combiner: spec.combiner as keyof typeof protos.google.monitoring.v3.AlertPolicy.ConditionCombinerType,
    enabled: { value: spec.enabled },
    notificationChannels: spec.notificationChannels,
    severity: spec.severity as keyof typeof protos.google.monitoring.v3.AlertPolicy.Severity,
  };
}

function fromApiPolicy(policy: IAlertPolicy): AlertPolicySpec {
  return {
    name: policy.name ?? '',
    displayName: policy.displayName ?? '',
    documentation: policy.documentation?.content ?? '',
    userLabels: { ...(policy.userLabels ?? {}) },
    conditions: (policy.conditions ?? []).map(fromApiCondition),
    combiner: enumName(policy.combiner, 'COMBINE_UNSPECIFIED'),
    enabled: policy.enabled?.value ?? true,
    notificationChannels: [...(policy.notificationChannels ?? [])],
    severity: enumName(policy.severity, 'SEVERITY_UNSPECIFIED'),
  };
}

function toApiUptime(spec: UptimeCheckSpec, project: string): IUptime {
  return {
    ...(spec.name ? { name: spec.name } : {}),
    displayName: spec.displayName,
    monitoredResource: { type: 'uptime_url', labels: { project_id: project, host: spec.host } },
    httpCheck: {
      requestMethod: 'GET',
      path: spec.path,
      port: spec.port,
      useSsl: spec.useSsl,
      validateSsl: spec.validateSsl,
      acceptedResponseStatusCodes: [{ statusClass: 'STATUS_CLASS_2XX' }],
      ...(spec.oidcToken ? { serviceAgentAuthentication: { type: 'OIDC_TOKEN' } } : {}),
    },
    period: seconds(spec.periodSeconds),
    timeout: seconds(spec.timeoutSeconds),
    userLabels: spec.userLabels,
  };
}

function fromApiUptime(check: IUptime): UptimeCheckSpec {
  const http = check.httpCheck;
  return {
    name: check.name ?? '',
    displayName: check.displayName ?? '',
    host: check.monitoredResource?.labels?.host ?? '',
    path: http?.path ?? '',
    port: Number(http?.port ?? 0),
    useSsl: http?.useSsl ?? false,
    validateSsl: http?.validateSsl ?? false,
    oidcToken: enumName(http?.serviceAgentAuthentication?.type, '') === 'OIDC_TOKEN',
    periodSeconds: fromDuration(check.period),
    timeoutSeconds: fromDuration(check.timeout),
    userLabels: { ...(check.userLabels ?? {}) },
  };
}

/** Cloud Logging metrics and Cloud Monitoring policies, channels and uptime checks of one project. */
export class GcpMonitoring implements Monitoring {
  readonly project: string;
  readonly #clients: GcpClients;
  readonly #timeoutMs: number;

  constructor(clients: GcpClients, options: { timeoutMs?: number } = {}) {
    this.#clients = clients;
    this.project = clients.target.project;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  get #parent() {
    return `projects/${this.project}`;
  }

  async #metrics(): Promise<LogMetricsClient> {
    return (await this.#clients.logMetrics()) as unknown as LogMetricsClient;
  }

  async getLogMetric(id: string): Promise<LogMetricSpec | undefined> {
    const client = await this.#metrics();
    try {
      const [metric] = await retryTransient(() => client.getLogMetric({ metricName: logMetricName(this.project, id) }, this.#call()));
      return fromApiMetric(metric);
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
      throw this.#loggingError(err, `log-based metric ${id}`, 'logging.logMetrics.get');
    }
  }

  async listLogMetrics(idPrefix: string): Promise<LogMetricSpec[]> {
    const client = await this.#metrics();
    try {
      const found: LogMetricSpec[] = [];
      let pageToken: string | undefined;
      do {
        const [page, , response] = await retryTransient(() =>
          client.listLogMetrics(
            { parent: this.#parent, pageSize: 100, ...(pageToken ? { pageToken } : {}) },
            { ...this.#call(), autoPaginate: false },
          ),
        );
        for (const metric of page) if ((metric.name ?? '').startsWith(idPrefix)) found.push(fromApiMetric(metric));
        pageToken = response?.nextPageToken || undefined;
      } while (pageToken);
      return found.sort((a, b) => a.id.localeCompare(b.id));
    } catch (err) {
      throw this.#loggingError(err, `log-based metrics of ${this.#parent}`, 'logging.logMetrics.list');
    }
  }

  async createLogMetric(spec: LogMetricSpec): Promise<LogMetricSpec> {
    const client = await this.#metrics();
    try {
      // Not retried: a create whose answer was lost would fail again with ALREADY_EXISTS.
      const [metric] = await client.createLogMetric({ parent: this.#parent, metric: toApiMetric(spec) }, this.#call());
      return fromApiMetric(metric);
    } catch (err) {
      throw this.#loggingError(err, `log-based metric ${spec.id}`, 'logging.logMetrics.create');
    }
  }

  async updateLogMetric(spec: LogMetricSpec): Promise<LogMetricSpec> {
    const client = await this.#metrics();
    try {
      const [metric] = await retryTransient(() =>
        client.updateLogMetric({ metricName: logMetricName(this.project, spec.id), metric: toApiMetric(spec) }, this.#call()),
      );
      return fromApiMetric(metric);
    } catch (err) {
      throw this.#loggingError(err, `log-based metric ${spec.id}`, 'logging.logMetrics.update');
    }
  }

  async listNotificationChannels(): Promise<NotificationChannelSpec[]> {
    const client = await this.#clients.notificationChannels();
    try {
      const [channels] = await retryTransient(() =>
        client.listNotificationChannels({ name: this.#parent }, { ...this.#call(), autoPaginate: true }),
      );
      return channels.map(fromApiChannel);
    } catch (err) {
      throw this.#monitoringError(err, `notification channels of ${this.#parent}`, 'monitoring.notificationChannels.list');
    }
  }

  async createNotificationChannel(spec: NotificationChannelSpec): Promise<NotificationChannelSpec> {
    const client = await this.#clients.notificationChannels();
    try {
      const [channel] = await client.createNotificationChannel(
        { name: this.#parent, notificationChannel: toApiChannel(spec) },
        this.#call(),
      );
      return fromApiChannel(channel);
    } catch (err) {
      throw this.#monitoringError(err, `notification channel "${spec.displayName}"`, 'monitoring.notificationChannels.create');
    }
  }

  async updateNotificationChannel(spec: NotificationChannelSpec & { name: string }, mask: string[]): Promise<NotificationChannelSpec> {
    const client = await this.#clients.notificationChannels();
    try {
      const [channel] = await retryTransient(() =>
        client.updateNotificationChannel({ notificationChannel: toApiChannel(spec), updateMask: { paths: mask } }, this.#call()),
      );
      return fromApiChannel(channel);
    } catch (err) {
      throw this.#monitoringError(err, `notification channel ${spec.name}`, 'monitoring.notificationChannels.update');
    }
  }

  async deleteNotificationChannel(name: string): Promise<void> {
    const client = await this.#clients.notificationChannels();
    try {
      // Without force: Monitoring refuses while a policy still names the channel, which setup never leaves behind.
      await retryTransient(() => client.deleteNotificationChannel({ name, force: false }, this.#call()));
    } catch (err) {
      throw this.#monitoringError(err, `notification channel ${name}`, 'monitoring.notificationChannels.delete');
    }
  }

  async listUptimeChecks(): Promise<UptimeCheckSpec[]> {
    const client = await this.#clients.uptimeChecks();
    try {
      const [checks] = await retryTransient(() =>
        client.listUptimeCheckConfigs({ parent: this.#parent }, { ...this.#call(), autoPaginate: true }),
      );
      return checks.map(fromApiUptime);
    } catch (err) {
      throw this.#monitoringError(err, `uptime checks of ${this.#parent}`, 'monitoring.uptimeCheckConfigs.list');
    }
  }

  async createUptimeCheck(spec: UptimeCheckSpec): Promise<UptimeCheckSpec> {
    const client = await this.#clients.uptimeChecks();
    try {
      const [check] = await client.createUptimeCheckConfig(
        { parent: this.#parent, uptimeCheckConfig: toApiUptime(spec, this.project) },
        this.#call(),
      );
      return fromApiUptime(check);
    } catch (err) {
      throw this.#monitoringError(err, `uptime check "${spec.displayName}"`, 'monitoring.uptimeCheckConfigs.create');
    }
  }

  async updateUptimeCheck(spec: UptimeCheckSpec & { name: string }, mask: string[]): Promise<UptimeCheckSpec> {
    const client = await this.#clients.uptimeChecks();
    try {
      const [check] = await retryTransient(() =>
        client.updateUptimeCheckConfig({ uptimeCheckConfig: toApiUptime(spec, this.project), updateMask: { paths: mask } }, this.#call()),
      );
      return fromApiUptime(check);
    } catch (err) {
      throw this.#monitoringError(err, `uptime check ${spec.name}`, 'monitoring.uptimeCheckConfigs.update');
    }
  }

  async deleteUptimeCheck(name: string): Promise<void> {
    const client = await this.#clients.uptimeChecks();
    try {
      await retryTransient(() => client.deleteUptimeCheckConfig({ name }, this.#call()));
    } catch (err) {
      throw this.#monitoringError(err, `uptime check ${name}`, 'monitoring.uptimeCheckConfigs.delete');
    }
  }

  async listAlertPolicies(): Promise<AlertPolicySpec[]> {
    const client = await this.#clients.alertPolicies();
    try {
      const [policies] = await retryTransient(() =>
        client.listAlertPolicies({ name: this.#parent }, { ...this.#call(), autoPaginate: true }),
      );
      return policies.map(fromApiPolicy);
    } catch (err) {
      throw this.#monitoringError(err, `alert policies of ${this.#parent}`, 'monitoring.alertPolicies.list');
    }
  }

  async createAlertPolicy(spec: AlertPolicySpec): Promise<AlertPolicySpec> {
    const client = await this.#clients.alertPolicies();
    try {
      const [policy] = await client.createAlertPolicy({ name: this.#parent, alertPolicy: toApiPolicy(spec) }, this.#call());
      return fromApiPolicy(policy);
    } catch (err) {
      throw this.#monitoringError(err, `alert policy "${spec.displayName}"`, 'monitoring.alertPolicies.create');
    }
  }

  async updateAlertPolicy(spec: AlertPolicySpec & { name: string }, mask: string[]): Promise<AlertPolicySpec> {
    const client = await this.#clients.alertPolicies();
    try {
      const [policy] = await retryTransient(() =>
        client.updateAlertPolicy({ alertPolicy: toApiPolicy(spec), updateMask: { paths: mask } }, this.#call()),
      );
      return fromApiPolicy(policy);
    } catch (err) {
      throw this.#monitoringError(err, `alert policy ${spec.name}`, 'monitoring.alertPolicies.update');
    }
  }

  async deleteAlertPolicy(name: string): Promise<void> {
    const client = await this.#clients.alertPolicies();
    try {
      await retryTransient(() => client.deleteAlertPolicy({ name }, this.#call()));
    } catch (err) {
      throw this.#monitoringError(err, `alert policy ${name}`, 'monitoring.alertPolicies.delete');
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  #call() {
    return { retry: null, timeout: this.#timeoutMs };
  }

  #loggingError(err: unknown, what: string, permission: string) {
    return toConvergenceError(err, {
      what,
      permission,
      role: 'roles/logging.configWriter',
      resource: `project ${this.project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${this.project} --member=user:YOU@example.com --role=roles/logging.configWriter`,
      api: LOGGING_API,
      project: this.project,
    });
  }

  #monitoringError(err: unknown, what: string, permission: string) {
    return toConvergenceError(err, {
      what,
      permission,
      role: 'roles/monitoring.editor',
      resource: `project ${this.project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${this.project} --member=user:YOU@example.com --role=roles/monitoring.editor`,
      api: MONITORING_API,
      project: this.project,
    });
  }
}
