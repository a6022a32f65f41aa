/**
 * Cloud Monitoring v3 as `monitoring setup|list` meets it: AlertPolicyService,
 * NotificationChannelService and UptimeCheckService under projects/P, with the rules Google
 * applies on write.
 *
 *   alert policies  a display name; 1-6 conditions, each named and of exactly one kind; a
 *                   combiner when there is more than one; a threshold needs a filter whose
 *                   metric.type is a metric the project has (built-in Cloud Run and uptime metrics,
 *                   or a log-based metric of the Logging fake) on its monitored resource type;
 *                   aligners and reducers that fit the metric's kind and value type (percentiles
 *                   for distributions, COUNT_FALSE for booleans, RATE/DELTA not on gauges), an
 *                   alignment period of at least 60 s, a threshold that ends on a number, a
 *                   duration in whole minutes, a comparison; every notification channel must exist
 *   channels        a known type with its required labels and no others (webhook_tokenauth: url;
 *                   pubsub: topic projects/P/topics/T; email, slack, pagerduty, sms); sensitive
 *                   labels come back obfuscated; the type never changes; a channel a policy names
 *                   is deleted only with force
 *   uptime checks   one monitored resource (uptime_url with host and project_id), an http or tcp
 *                   check, a period of 60, 300, 600 or 900 s, a timeout of 1-60 s; an update may
 *                   change only display_name, http_check, tcp_check, timeout, content_matchers and
 *                   selected_regions
 *   all             user labels of at most 64 entries, keys [a-z][a-z0-9_-]{0,62} and values
 *                   [a-z0-9_-]{0,63}; update masks naming fields that do not exist are refused;
 *                   PERMISSION_DENIED per caller (granted for the operator, grantedTo by account).
 *
 * Test hooks: writes() counts the create/update/delete calls made; policy(name), channels(),
 * policies(), uptimeChecks() read state; seedPolicy/seedChannel add resources made by others.
 */
import { randomBytes } from 'node:crypto';
import { currentCaller } from './caller.ts';
import type { LogMetricsFake } from './logging-metrics.ts';
import { paginate, timestamp } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

type Message = Record<string, unknown>;

export const MONITORING_PERMISSIONS = [
  'monitoring.alertPolicies.create',
  'monitoring.alertPolicies.get',
  'monitoring.alertPolicies.list',
  'monitoring.alertPolicies.update',
  'monitoring.alertPolicies.delete',
  'monitoring.notificationChannels.create',
  'monitoring.notificationChannels.get',
  'monitoring.notificationChannels.list',
  'monitoring.notificationChannels.update',
  'monitoring.notificationChannels.delete',
  'monitoring.uptimeCheckConfigs.create',
  'monitoring.uptimeCheckConfigs.get',
  'monitoring.uptimeCheckConfigs.list',
  'monitoring.uptimeCheckConfigs.update',
  'monitoring.uptimeCheckConfigs.delete',
] as const;

const PROTOS = protosJsonOf('@google-cloud/monitoring');
const PARENT = /^projects\/([^/]+)$/;
const WRITE_METHODS = /^(Create|Update|Delete)/;

const invalid = (message: string) => new FakeStatus(status.INVALID_ARGUMENT, message);
const notFound = (what: string) => new FakeStatus(status.NOT_FOUND, `${what} does not exist.`);

type ValueType = 'INT64' | 'DOUBLE' | 'BOOL' | 'DISTRIBUTION';
interface MetricInfo {
  kind: 'DELTA' | 'GAUGE' | 'CUMULATIVE';
  valueType: ValueType;
  /** Monitored resource types the metric is written for; undefined: any. */
  resources?: string[];
}

const BUILT_IN: Record<string, MetricInfo> = {
  'run.googleapis.com/request_count': { kind: 'DELTA', valueType: 'INT64', resources: ['cloud_run_revision'] },
  'run.googleapis.com/request_latencies': { kind: 'DELTA', valueType: 'DISTRIBUTION', resources: ['cloud_run_revision'] },
  'run.googleapis.com/container/instance_count': { kind: 'GAUGE', valueType: 'INT64', resources: ['cloud_run_revision'] },
  'monitoring.googleapis.com/uptime_check/check_passed': { kind: 'GAUGE', valueType: 'BOOL', resources: ['uptime_url'] },
  'monitoring.googleapis.com/uptime_check/request_latency': { kind: 'GAUGE', valueType: 'DOUBLE', resources: ['uptime_url'] },
};

/** Channel types and their labels: required ones first, then optional; `sensitive` ones come back obfuscated. */
const CHANNEL_TYPES: Record<string, { required: string[]; optional?: string[]; sensitive?: string[] }> = {
  webhook_tokenauth: { required: ['url'] },
  webhook_basicauth: { required: ['url', 'username', 'password'], sensitive: ['password'] },
  pubsub: { required: ['topic'] },
  email: { required: ['email_address'] },
  slack: { required: ['channel_name'], optional: ['auth_token', 'team'], sensitive: ['auth_token'] },
  pagerduty: { required: ['service_key'], sensitive: ['service_key'] },
  sms: { required: ['number'] },
};

const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

function checkUserLabels(labels: unknown, field: string): void {
  const entries = Object.entries((labels as Record<string, string> | null) ?? {});
  if (entries.length > 64) throw invalid(`${field} has more than 64 entries`);
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key))
      throw invalid(`${field} key "${key}" is invalid: lowercase letters, digits, "_" and "-", starting with a letter, at most 63`);
    if (!LABEL_VALUE.test(String(value)))
      throw invalid(`${field} value "${String(value)}" of "${key}" is invalid: lowercase letters, digits, "_" and "-", at most 63`);
  }
}

const secondsOf = (value: unknown): number => {
  const d = value as { seconds?: unknown; nanos?: unknown } | null;
  return d ? Number(d.seconds ?? 0) + Number(d.nanos ?? 0) / 1e9 : 0;
};

const DISTRIBUTION_ALIGNERS = new Set(['ALIGN_PERCENTILE_99', 'ALIGN_PERCENTILE_95', 'ALIGN_PERCENTILE_50', 'ALIGN_PERCENTILE_05']);
const BOOL_ALIGNERS = new Set(['ALIGN_COUNT_TRUE', 'ALIGN_COUNT_FALSE', 'ALIGN_FRACTION_TRUE']);
const PERCENTILE_REDUCERS = new Set(['REDUCE_PERCENTILE_99', 'REDUCE_PERCENTILE_95', 'REDUCE_PERCENTILE_50', 'REDUCE_PERCENTILE_05']);
const BOOL_REDUCERS = new Set(['REDUCE_COUNT_TRUE', 'REDUCE_COUNT_FALSE', 'REDUCE_FRACTION_TRUE']);

/** The value type after an aligner; throws where the aligner does not fit the metric. */
function aligned(aligner: string, metric: MetricInfo, field: string): ValueType {
  const refuse = () => invalid(`${field}.per_series_aligner ${aligner} is not valid for a ${metric.kind} ${metric.valueType} metric`);
  if (aligner === 'ALIGN_NONE' || aligner === 'ALIGN_NEXT_OLDER') return metric.valueType;
  if (DISTRIBUTION_ALIGNERS.has(aligner)) {
    if (metric.valueType !== 'DISTRIBUTION') throw refuse();
    return 'DOUBLE';
  }
  if (BOOL_ALIGNERS.has(aligner)) {
    if (metric.valueType !== 'BOOL') throw refuse();
    return aligner === 'ALIGN_FRACTION_TRUE' ? 'DOUBLE' : 'INT64';
  }
  if (aligner === 'ALIGN_RATE' || aligner === 'ALIGN_DELTA') {
    if (metric.kind === 'GAUGE' || metric.valueType === 'BOOL') throw refuse();
    if (aligner === 'ALIGN_RATE' && metric.valueType === 'DISTRIBUTION') throw refuse();
    return aligner === 'ALIGN_RATE' ? 'DOUBLE' : metric.valueType;
  }
  if (['ALIGN_SUM', 'ALIGN_MEAN', 'ALIGN_MIN', 'ALIGN_MAX', 'ALIGN_COUNT'].includes(aligner)) {
    if (metric.valueType === 'BOOL' && aligner !== 'ALIGN_COUNT') throw refuse();
    if (metric.valueType === 'DISTRIBUTION' && (aligner === 'ALIGN_MIN' || aligner === 'ALIGN_MAX')) throw refuse();
    return aligner === 'ALIGN_MEAN' ? 'DOUBLE' : aligner === 'ALIGN_COUNT' ? 'INT64' : metric.valueType;
  }
  throw invalid(`${field}.per_series_aligner ${aligner} is not supported`);
}

function reduced(reducer: string, input: ValueType, field: string): ValueType {
  if (reducer === 'REDUCE_NONE') return input;
  const refuse = () => invalid(`${field}.cross_series_reducer ${reducer} is not valid for ${input} values`);
  if (PERCENTILE_REDUCERS.has(reducer)) {
    if (input === 'BOOL') throw refuse();
    return 'DOUBLE';
  }
  if (BOOL_REDUCERS.has(reducer)) {
    if (input !== 'BOOL') throw refuse();
    return reducer === 'REDUCE_FRACTION_TRUE' ? 'DOUBLE' : 'INT64';
  }
  if (['REDUCE_SUM', 'REDUCE_MEAN', 'REDUCE_MIN', 'REDUCE_MAX', 'REDUCE_COUNT'].includes(reducer)) {
    if (input === 'BOOL' && reducer !== 'REDUCE_COUNT') throw refuse();
    return reducer === 'REDUCE_MEAN' ? 'DOUBLE' : reducer === 'REDUCE_COUNT' ? 'INT64' : input;
  }
  throw invalid(`${field}.cross_series_reducer ${reducer} is not supported`);
}

const CONDITION_KINDS = [
  'conditionThreshold',
  'conditionAbsent',
  'conditionMatchedLog',
  'conditionMonitoringQueryLanguage',
  'conditionPrometheusQueryLanguage',
  'conditionSql',
] as const;

const POLICY_MASK = new Set([
  'display_name',
  'documentation',
  'user_labels',
  'conditions',
  'combiner',
  'enabled',
  'validity',
  'notification_channels',
  'alert_strategy',
  'severity',
]);
const CHANNEL_MASK = new Set(['display_name', 'description', 'labels', 'user_labels', 'enabled']);
const CHANNEL_FIELDS_ALL = new Set([...CHANNEL_MASK, 'type', 'name', 'verification_status']);
const UPTIME_MASK = new Set(['display_name', 'http_check', 'tcp_check', 'timeout', 'content_matchers', 'selected_regions']);
const UPTIME_FIELDS_ALL = new Set([
  ...UPTIME_MASK,
  'name',
  'monitored_resource',
  'resource_group',
  'synthetic_monitor',
  'period',
  'checker_type',
  'is_internal',
  'internal_checkers',
  'user_labels',
]);

const camel = (path: string) => path.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Applies `mask` (top-level snake_case paths) of `update` onto `current`; an empty mask takes every field in `all`. */
function masked(current: Message, update: Message, mask: string[], updatable: Set<string>, known: Set<string>, what: string): Message {
  const paths = mask.length ? mask : [...updatable];
  for (const path of paths) {
    const top = path.split('.')[0]!;
    if (!known.has(top)) throw invalid(`Invalid update mask path "${path}" for ${what}`);
    if (!updatable.has(top)) throw invalid(`The field "${path}" of ${what} cannot be updated`);
  }
  const next = { ...current };
  for (const path of paths) next[camel(path.split('.')[0]!)] = update[camel(path.split('.')[0]!)];
  return next;
}

const newId = () => BigInt(`0x${randomBytes(7).toString('hex')}`).toString();

export class MonitoringFake implements FakeService {
  granted = new Set<string>(MONITORING_PERMISSIONS);
  readonly grantedTo = new Map<string, Set<string>>();
  readonly #logMetrics: LogMetricsFake | undefined;
  readonly #policies = new Map<string, Message>();
  readonly #channels = new Map<string, Message>();
  readonly #uptime = new Map<string, Message>();
  #writes = 0;

  constructor(options: { logMetrics?: LogMetricsFake } = {}) {
    this.#logMetrics = options.logMetrics;
  }

  /** Create, update and delete calls that reached state (successful or not). */
  writes(): number {
    return this.#writes;
  }
  policies(): Message[] {
    return [...this.#policies.values()];
  }
  channels(): Message[] {
    return [...this.#channels.values()];
  }
  uptimeChecks(): Message[] {
    return [...this.#uptime.values()];
  }

  /** A policy made by someone else (no convergence labels), as the console would. */
  seedPolicy(project: string, policy: Message): Message {
    const name = `projects/${project}/alertPolicies/${newId()}`;
    const stored = { enabled: { value: true }, userLabels: {}, notificationChannels: [], conditions: [], ...policy, name };
    this.#policies.set(name, stored);
    return stored;
  }

  seedChannel(project: string, channel: Message): Message {
    const name = `projects/${project}/notificationChannels/${newId()}`;
    const stored = { enabled: { value: true }, userLabels: {}, labels: {}, ...channel, name };
    this.#channels.set(name, stored);
    return stored;
  }

  bindings(): ServiceBinding[] {
    const counted = (handlers: ServiceBinding['handlers']): ServiceBinding['handlers'] =>
      Object.fromEntries(
        Object.entries(handlers).map(([method, handler]) => [
          method,
          (request: Message, call: Parameters<ServiceBinding['handlers'][string]>[1]) => {
            if (WRITE_METHODS.test(method)) this.#writes += 1;
            return handler(request, call);
          },
        ]),
      );
    return [
      { protos: PROTOS, service: 'google.monitoring.v3.AlertPolicyService', handlers: counted(this.#policyHandlers()) },
      { protos: PROTOS, service: 'google.monitoring.v3.NotificationChannelService', handlers: counted(this.#channelHandlers()) },
      { protos: PROTOS, service: 'google.monitoring.v3.UptimeCheckService', handlers: counted(this.#uptimeHandlers()) },
    ];
  }

  #permissions(): ReadonlySet<string> {
    const caller = currentCaller();
    return caller === undefined ? this.granted : (this.grantedTo.get(caller) ?? new Set());
  }

  #require(permission: string, resource: string): void {
    if (!this.#permissions().has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission ${permission} denied (or the resource may not exist) on ${resource}.`);
    }
  }

  #project(parent: unknown, permission: string): string {
    const match = PARENT.exec(String(parent ?? ''));
    if (!match) throw invalid(`Invalid resource name "${String(parent)}"; expected projects/[PROJECT_ID_OR_NUMBER]`);
    this.#require(permission, String(parent));
    return match[1]!;
  }

  #get(store: Map<string, Message>, name: unknown, pattern: RegExp, permission: string, what: string): Message {
    const text = String(name ?? '');
    if (!pattern.test(text)) throw invalid(`Invalid ${what} name "${text}"`);
    this.#require(permission, text);
    const found = store.get(text);
    if (!found) throw notFound(`${what} ${text}`);
    return found;
  }

  #list(store: Map<string, Message>, project: string, request: Message, key: string): Message {
    const all = [...store.values()].filter((item) => String(item.name).startsWith(`projects/${project}/`));
    const { items, nextPageToken } = paginate(all, request, 1000);
    return { [key]: items, nextPageToken, totalSize: all.length };
  }

  // ---- alert policies ----

  #policyHandlers(): ServiceBinding['handlers'] {
    const NAME = /^projects\/[^/]+\/alertPolicies\/[^/]+$/;
    return {
      ListAlertPolicies: (request) =>
        this.#list(this.#policies, this.#project(request.name, 'monitoring.alertPolicies.list'), request, 'alertPolicies'),
      GetAlertPolicy: (request) => this.#get(this.#policies, request.name, NAME, 'monitoring.alertPolicies.get', 'alert policy'),
      CreateAlertPolicy: (request) => {
        const project = this.#project(request.name, 'monitoring.alertPolicies.create');
        const policy = (request.alertPolicy as Message | null) ?? {};
        const name = `projects/${project}/alertPolicies/${newId()}`;
        const stored = this.#checkPolicy(project, { ...policy, name }, undefined);
        this.#policies.set(name, stored);
        return stored;
      },
      UpdateAlertPolicy: (request) => {
        const update = (request.alertPolicy as Message | null) ?? {};
        const current = this.#get(this.#policies, update.name, NAME, 'monitoring.alertPolicies.update', 'alert policy');
        const mask = ((request.updateMask as Message | null)?.paths as string[] | undefined) ?? [];
        const project = String(current.name).split('/')[1]!;
        const next = masked(current, update, mask, POLICY_MASK, POLICY_MASK, 'an alert policy');
        const stored = this.#checkPolicy(project, next, current);
        this.#policies.set(String(current.name), stored);
        return stored;
      },
      DeleteAlertPolicy: (request) => {
        const found = this.#get(this.#policies, request.name, NAME, 'monitoring.alertPolicies.delete', 'alert policy');
        this.#policies.delete(String(found.name));
        return {};
      },
    };
  }

  #metric(project: string, type: string): MetricInfo | undefined {
    if (BUILT_IN[type]) return BUILT_IN[type];
    if (this.#logMetrics?.userMetricTypes(project).has(type)) return { kind: 'DELTA', valueType: 'INT64' };
    return undefined;
  }

  /** The metric a filter selects, checked against the project's metrics and its resource type. */
  #filterMetric(project: string, filter: unknown, field: string): MetricInfo {
    const text = String(filter ?? '');
    if (!text.trim()) throw invalid(`Field ${field} is required.`);
    const type = /metric\.type\s*=\s*"([^"]+)"/.exec(text)?.[1];
    if (!type) throw invalid(`${field} must name a metric with metric.type="..."`);
    const metric = this.#metric(project, type);
    if (!metric)
      throw invalid(
        `Cannot find metric(s) that match type = "${type}". If a metric was created recently, it could take up to 10 minutes to become available.`,
      );
    const resource = /resource\.type\s*=\s*"([^"]+)"/.exec(text)?.[1];
    if (resource && metric.resources && !metric.resources.includes(resource)) {
      throw invalid(`The metric ${type} is not written for monitored resource type "${resource}"`);
    }
    return metric;
  }

  #aggregated(metric: MetricInfo, aggregations: unknown, field: string): { valueType: ValueType; groupBy: string } {
    let valueType = metric.valueType;
    let groupBy = '';
    for (const [i, a] of ((aggregations as Message[] | undefined) ?? []).entries()) {
      const at = `${field}[${i}]`;
      const aligner = String(a.perSeriesAligner ?? 'ALIGN_NONE');
      const reducer = String(a.crossSeriesReducer ?? 'REDUCE_NONE');
      const period = secondsOf(a.alignmentPeriod);
      if (aligner !== 'ALIGN_NONE' && period < 60)
        throw invalid(`${at}.alignment_period must be at least 60s when a per_series_aligner is set`);
      if (reducer !== 'REDUCE_NONE' && aligner === 'ALIGN_NONE') throw invalid(`${at}: a cross_series_reducer needs a per_series_aligner`);
      valueType = reduced(reducer, aligned(aligner, { ...metric, valueType }, at), at);
      groupBy = JSON.stringify(a.groupByFields ?? []);
    }
    return { valueType, groupBy };
  }

  #checkPolicy(project: string, policy: Message, previous: Message | undefined): Message {
    if (!String(policy.displayName ?? '').trim()) throw invalid('Field alert_policy.display_name is required.');
    checkUserLabels(policy.userLabels, 'alert_policy.user_labels');
    const conditions = (policy.conditions as Message[] | undefined) ?? [];
    if (conditions.length === 0 || conditions.length > 6) throw invalid('An alert policy needs 1 to 6 conditions.');
    const combiner = String(policy.combiner ?? 'COMBINE_UNSPECIFIED');
    if (conditions.length > 1 && combiner === 'COMBINE_UNSPECIFIED')
      throw invalid('Field alert_policy.combiner is required when there is more than one condition.');
    const named = conditions.map((condition, i) => {
      const field = `alert_policy.conditions[${i}]`;
      if (!String(condition.displayName ?? '').trim()) throw invalid(`Field ${field}.display_name is required.`);
      const kinds = CONDITION_KINDS.filter((kind) => condition[kind]);
      if (kinds.length !== 1) throw invalid(`${field} must set exactly one condition type.`);
      const threshold = condition.conditionThreshold as Message | null;
      if (threshold) {
        const at = `${field}.condition_threshold`;
        const metric = this.#filterMetric(project, threshold.filter, `${at}.filter`);
        const numerator = this.#aggregated(metric, threshold.aggregations, `${at}.aggregations`);
        let result = numerator.valueType;
        if (threshold.denominatorFilter) {
          const denominatorMetric = this.#filterMetric(project, threshold.denominatorFilter, `${at}.denominator_filter`);
          const denominator = this.#aggregated(denominatorMetric, threshold.denominatorAggregations, `${at}.denominator_aggregations`);
          if (!((threshold.denominatorAggregations as Message[] | undefined) ?? []).length) {
            throw invalid(`${at}.denominator_aggregations are required with a denominator_filter`);
          }
          if (denominator.groupBy !== numerator.groupBy)
            throw invalid(`${at}: the numerator and denominator must group by the same fields`);
          result = 'DOUBLE';
        }
        if (result === 'DISTRIBUTION' || result === 'BOOL') {
          throw invalid(`${at}: a threshold compares numbers; aggregate the ${result} metric to a number (a percentile, or a count)`);
        }
        if (String(threshold.comparison ?? 'COMPARISON_UNSPECIFIED') === 'COMPARISON_UNSPECIFIED')
          throw invalid(`Field ${at}.comparison is required.`);
        const duration = secondsOf(threshold.duration);
        if (duration % 60 !== 0) throw invalid(`${at}.duration must be a multiple of 60 seconds; got ${duration}s`);
      }
      const previousName = ((previous?.conditions as Message[] | undefined) ?? []).some((c) => c.name === condition.name)
        ? condition.name
        : undefined;
      return { ...condition, name: previousName ?? `${String(policy.name)}/conditions/${newId()}` };
    });
    for (const channel of (policy.notificationChannels as string[] | undefined) ?? []) {
      if (!this.#channels.has(channel)) throw invalid(`Notification channel ${channel} does not exist in project ${project}.`);
    }
    const record = { mutateTime: timestamp(new Date()), mutatedBy: currentCaller() ?? 'operator@example.com' };
    return {
      ...policy,
      conditions: named,
      enabled: policy.enabled ?? { value: true },
      creationRecord: previous?.creationRecord ?? record,
      mutationRecord: record,
    };
  }

  // ---- notification channels ----

  #channelHandlers(): ServiceBinding['handlers'] {
    const NAME = /^projects\/[^/]+\/notificationChannels\/[^/]+$/;
    const shown = (channel: Message): Message => {
      const sensitive = CHANNEL_TYPES[String(channel.type)]?.sensitive ?? [];
      const labels = Object.fromEntries(
        Object.entries((channel.labels as Record<string, string>) ?? {}).map(([k, v]) => [
          k,
          sensitive.includes(k) ? `${'*'.repeat(8)}${v.slice(-4)}` : v,
        ]),
      );
      return { ...channel, labels };
    };
    return {
      ListNotificationChannels: (request) => {
        const list = this.#list(
          this.#channels,
          this.#project(request.name, 'monitoring.notificationChannels.list'),
          request,
          'notificationChannels',
        );
        return { ...list, notificationChannels: (list.notificationChannels as Message[]).map(shown) };
      },
      GetNotificationChannel: (request) =>
        shown(this.#get(this.#channels, request.name, NAME, 'monitoring.notificationChannels.get', 'notification channel')),
      CreateNotificationChannel: (request) => {
        const project = this.#project(request.name, 'monitoring.notificationChannels.create');
        const channel = (request.notificationChannel as Message | null) ?? {};
        const name = `projects/${project}/notificationChannels/${newId()}`;
        const stored = this.#checkChannel(project, { ...channel, name });
        this.#channels.set(name, stored);
        return shown(stored);
      },
      UpdateNotificationChannel: (request) => {
        const update = (request.notificationChannel as Message | null) ?? {};
        const current = this.#get(this.#channels, update.name, NAME, 'monitoring.notificationChannels.update', 'notification channel');
        const mask = ((request.updateMask as Message | null)?.paths as string[] | undefined) ?? [];
        if (mask.length === 0 && update.type && update.type !== current.type)
          throw invalid('The type of a notification channel cannot be changed.');
        const next = masked(current, update, mask, CHANNEL_MASK, CHANNEL_FIELDS_ALL, 'a notification channel');
        const stored = this.#checkChannel(String(current.name).split('/')[1]!, next);
        this.#channels.set(String(current.name), stored);
        return shown(stored);
      },
      DeleteNotificationChannel: (request) => {
        const found = this.#get(this.#channels, request.name, NAME, 'monitoring.notificationChannels.delete', 'notification channel');
        const users = [...this.#policies.values()].filter((p) =>
          ((p.notificationChannels as string[] | undefined) ?? []).includes(String(found.name)),
        );
        if (users.length && !request.force) {
          throw new FakeStatus(
            status.FAILED_PRECONDITION,
            `Notification channel ${String(found.name)} is referenced by alert policies: ${users.map((p) => String(p.name)).join(', ')}`,
          );
        }
        for (const policy of users) policy.notificationChannels = (policy.notificationChannels as string[]).filter((n) => n !== found.name);
        this.#channels.delete(String(found.name));
        return {};
      },
    };
  }

  #checkChannel(project: string, channel: Message): Message {
    const type = String(channel.type ?? '');
    const spec = CHANNEL_TYPES[type];
    if (!spec) throw invalid(`Unknown notification channel type "${type}".`);
    const labels = (channel.labels as Record<string, string> | null) ?? {};
    for (const key of spec.required) if (!labels[key]) throw invalid(`Notification channel of type ${type} requires the label "${key}".`);
    const allowed = new Set([...spec.required, ...(spec.optional ?? [])]);
    for (const key of Object.keys(labels))
      if (!allowed.has(key)) throw invalid(`Unknown label "${key}" for notification channel type ${type}.`);
    if (type.startsWith('webhook') && !/^https?:\/\/\S+$/.test(labels.url ?? ''))
      throw invalid(`The webhook URL of a ${type} channel must be an http(s) URL.`);
    if (type === 'pubsub' && !new RegExp(`^projects/${project}/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`).test(labels.topic ?? '')) {
      throw invalid(`The topic of a pubsub channel must be projects/${project}/topics/TOPIC_ID.`);
    }
    checkUserLabels(channel.userLabels, 'notification_channel.user_labels');
    return { ...channel, enabled: channel.enabled ?? { value: true }, verificationStatus: 'VERIFICATION_STATUS_UNSPECIFIED' };
  }

  // ---- uptime checks ----

  #uptimeHandlers(): ServiceBinding['handlers'] {
    const NAME = /^projects\/[^/]+\/uptimeCheckConfigs\/[^/]+$/;
    return {
      ListUptimeCheckConfigs: (request) =>
        this.#list(this.#uptime, this.#project(request.parent, 'monitoring.uptimeCheckConfigs.list'), request, 'uptimeCheckConfigs'),
      GetUptimeCheckConfig: (request) => this.#get(this.#uptime, request.name, NAME, 'monitoring.uptimeCheckConfigs.get', 'uptime check'),
      CreateUptimeCheckConfig: (request) => {
        const project = this.#project(request.parent, 'monitoring.uptimeCheckConfigs.create');
        const check = (request.uptimeCheckConfig as Message | null) ?? {};
        const slug = String(check.displayName ?? 'check')
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '-')
          .replace(/^-|-$/g, '')
          .slice(0, 40);
        const name = `projects/${project}/uptimeCheckConfigs/${slug}-${randomBytes(4).toString('hex')}`;
        const stored = this.#checkUptime(project, { ...check, name });
        this.#uptime.set(name, stored);
        return stored;
      },
      UpdateUptimeCheckConfig: (request) => {
        const update = (request.uptimeCheckConfig as Message | null) ?? {};
        const current = this.#get(this.#uptime, update.name, NAME, 'monitoring.uptimeCheckConfigs.update', 'uptime check');
        const mask = ((request.updateMask as Message | null)?.paths as string[] | undefined) ?? [];
        const next = masked(current, update, mask, UPTIME_MASK, UPTIME_FIELDS_ALL, 'an uptime check');
        const stored = this.#checkUptime(String(current.name).split('/')[1]!, next);
        this.#uptime.set(String(current.name), stored);
        return stored;
      },
      DeleteUptimeCheckConfig: (request) => {
        const found = this.#get(this.#uptime, request.name, NAME, 'monitoring.uptimeCheckConfigs.delete', 'uptime check');
        this.#uptime.delete(String(found.name));
        return {};
      },
    };
  }

  #checkUptime(project: string, check: Message): Message {
    if (!String(check.displayName ?? '').trim()) throw invalid('Field uptime_check_config.display_name is required.');
    const resources = ['monitoredResource', 'resourceGroup', 'syntheticMonitor'].filter((key) => check[key]);
    if (resources.length !== 1)
      throw invalid('An uptime check needs exactly one of monitored_resource, resource_group and synthetic_monitor.');
    const resource = check.monitoredResource as Message | null;
    if (resource) {
      const labels = (resource.labels as Record<string, string> | null) ?? {};
      if (resource.type !== 'uptime_url')
        throw invalid(`Unsupported monitored resource type "${String(resource.type)}" for an uptime check.`);
      if (!labels.host) throw invalid('The uptime_url resource needs the label "host".');
      if (labels.project_id !== project) throw invalid(`The uptime_url resource's project_id must be ${project}.`);
    }
    const checks = ['httpCheck', 'tcpCheck'].filter((key) => check[key]);
    if (checks.length !== 1) throw invalid('An uptime check needs exactly one of http_check and tcp_check.');
    const http = check.httpCheck as Message | null;
    if (http) {
      if (http.path && !String(http.path).startsWith('/')) throw invalid('http_check.path must start with "/".');
      const port = Number(http.port ?? 0);
      if (port < 0 || port > 65535) throw invalid('http_check.port must be between 1 and 65535.');
    }
    const period = secondsOf(check.period) || 60;
    if (![60, 300, 600, 900].includes(period)) throw invalid(`period must be 60s, 300s, 600s or 900s; got ${period}s`);
    const timeout = secondsOf(check.timeout);
    if (timeout < 1 || timeout > 60) throw invalid(`timeout must be between 1s and 60s; got ${timeout}s`);
    checkUserLabels(check.userLabels, 'uptime_check_config.user_labels');
    return { ...check, period: { seconds: String(period), nanos: 0 }, checkerType: check.checkerType ?? 'STATIC_IP_CHECKERS' };
  }
}
