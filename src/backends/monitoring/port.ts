/**
 * The Monitoring port: what `monitoring setup|list` reads and writes in Google Cloud's operations
 * suite. Log-based metrics live in Cloud Logging (MetricsServiceV2); alert policies, notification
 * channels and uptime checks in Cloud Monitoring v3. Specs are the fields convergence manages, in
 * plain values (seconds, not Durations); the adapter maps them to and from the API messages.
 * Only gcp has an adapter: a local environment has nothing to monitor.
 */

/** A counter of matching log entries, with labels extracted from each entry. */
export interface LogMetricSpec {
  /** Metric id, e.g. convergence/runs_failed (the slash is part of the id). */
  id: string;
  description: string;
  /** Cloud Logging query language. */
  filter: string;
  /** Label key → extractor expression, e.g. EXTRACT(labels.tenant_id). */
  labelExtractors: Record<string, string>;
  /** The STRING labels of the metric descriptor; every extractor key must be one of them. */
  labels: Array<{ key: string; description: string }>;
}

export interface NotificationChannelSpec {
  /** projects/P/notificationChannels/ID once it exists. */
  name?: string;
  /** webhook_tokenauth, pubsub, email, ... */
  type: string;
  displayName: string;
  description: string;
  /** Type-specific settings: url for webhook_tokenauth, topic for pubsub. */
  labels: Record<string, string>;
  userLabels: Record<string, string>;
  enabled: boolean;
}

export interface Aggregation {
  alignmentPeriodSeconds: number;
  perSeriesAligner: string;
  /** REDUCE_NONE when series are kept apart. */
  crossSeriesReducer: string;
  groupByFields: string[];
}

/** A metric-threshold condition; conditions of other kinds are read with `kind` naming them. */
export interface ThresholdCondition {
  /** Set on conditions read back; other kinds (absence, MQL, PromQL, log match) are never written by convergence. */
  kind?: 'threshold' | string;
  displayName: string;
  filter: string;
  aggregations: Aggregation[];
  /** For a ratio: the denominator's filter and aggregations (empty otherwise). */
  denominatorFilter: string;
  denominatorAggregations: Aggregation[];
  /** COMPARISON_GT, COMPARISON_LT, ... */
  comparison: string;
  thresholdValue: number;
  durationSeconds: number;
}

export interface AlertPolicySpec {
  /** projects/P/alertPolicies/ID once it exists. */
  name?: string;
  displayName: string;
  /** Markdown shown in the incident. */
  documentation: string;
  userLabels: Record<string, string>;
  conditions: ThresholdCondition[];
  /** OR, AND, AND_WITH_MATCHING_RESOURCE. */
  combiner: string;
  enabled: boolean;
  /** Full notification channel names. */
  notificationChannels: string[];
  /** CRITICAL, ERROR, WARNING or SEVERITY_UNSPECIFIED. */
  severity: string;
}

/** An HTTPS GET of one path on a public host, from Google's checkers. */
export interface UptimeCheckSpec {
  /** projects/P/uptimeCheckConfigs/ID once it exists. */
  name?: string;
  displayName: string;
  host: string;
  path: string;
  port: number;
  useSsl: boolean;
  validateSsl: boolean;
  /** Sign the check with an OIDC token of the Monitoring service agent (a private Cloud Run service). */
  oidcToken: boolean;
  periodSeconds: number;
  timeoutSeconds: number;
  userLabels: Record<string, string>;
}

export interface Monitoring {
  readonly project: string;
  getLogMetric(id: string): Promise<LogMetricSpec | undefined>;
  listLogMetrics(idPrefix: string): Promise<LogMetricSpec[]>;
  createLogMetric(spec: LogMetricSpec): Promise<LogMetricSpec>;
  /** Replaces the metric (Cloud Logging has no update mask for metrics). */
  updateLogMetric(spec: LogMetricSpec): Promise<LogMetricSpec>;

  listNotificationChannels(): Promise<NotificationChannelSpec[]>;
  createNotificationChannel(spec: NotificationChannelSpec): Promise<NotificationChannelSpec>;
  /** Updates the fields named by `mask` (snake_case, e.g. display_name, labels). */
  updateNotificationChannel(spec: NotificationChannelSpec & { name: string }, mask: string[]): Promise<NotificationChannelSpec>;
  deleteNotificationChannel(name: string): Promise<void>;

  listUptimeChecks(): Promise<UptimeCheckSpec[]>;
  createUptimeCheck(spec: UptimeCheckSpec): Promise<UptimeCheckSpec>;
  updateUptimeCheck(spec: UptimeCheckSpec & { name: string }, mask: string[]): Promise<UptimeCheckSpec>;
  deleteUptimeCheck(name: string): Promise<void>;

  listAlertPolicies(): Promise<AlertPolicySpec[]>;
  createAlertPolicy(spec: AlertPolicySpec): Promise<AlertPolicySpec>;
  updateAlertPolicy(spec: AlertPolicySpec & { name: string }, mask: string[]): Promise<AlertPolicySpec>;
  deleteAlertPolicy(name: string): Promise<void>;

  close(): Promise<void>;
}
