/**
 * Field-by-field differences between a monitoring resource found and the one wanted, as the
 * printed diff shows them and as the update mask names them (the API's snake_case field paths).
 * Values are compared as canonical strings; secret label values are compared raw but shown by
 * the secret's name.
 */
import type {
  Aggregation,
  AlertPolicySpec,
  LogMetricSpec,
  NotificationChannelSpec,
  ThresholdCondition,
  UptimeCheckSpec,
} from '../../backends/monitoring/port.ts';
import { shownUrl } from './channels.ts';

export interface FieldChange {
  field: string;
  from: string | null;
  to: string;
}

export interface Diff {
  changes: FieldChange[];
  /** Update-mask paths of the changed fields that the API lets an update change. */
  mask: string[];
  /** Changed fields no update may change: the resource must be deleted and created again. */
  immutable: string[];
}

interface Field<T> {
  field: string;
  /** The canonical value compared. */
  value: (spec: T) => string;
  /** The value as printed, when it differs from the compared one (secrets, long text). */
  shown?: (spec: T, compared: string) => string;
  immutable?: boolean;
}

const sortedJson = (record: Record<string, string>) =>
  JSON.stringify(Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b))));

function diffFields<T>(fields: Array<Field<T>>, found: T | undefined, want: T): Diff {
  const changes: FieldChange[] = [];
  const mask: string[] = [];
  const immutable: string[] = [];
  for (const f of fields) {
    const to = f.value(want);
    const from = found === undefined ? null : f.value(found);
    if (from === to) continue;
    changes.push({
      field: f.field,
      from: from === null || found === undefined ? null : (f.shown?.(found, from) ?? from),
      to: f.shown?.(want, to) ?? to,
    });
    if (found !== undefined) (f.immutable ? immutable : mask).push(f.field);
  }
  return { changes, mask, immutable };
}

export function diffLogMetric(found: LogMetricSpec | undefined, want: LogMetricSpec): Diff {
  return diffFields<LogMetricSpec>(
    [
      { field: 'description', value: (s) => s.description },
      { field: 'filter', value: (s) => s.filter },
      { field: 'label_extractors', value: (s) => sortedJson(s.labelExtractors) },
      {
        field: 'metric_descriptor.labels',
        value: (s) =>
          s.labels
            .map((l) => l.key)
            .sort()
            .join(', '),
      },
    ],
    found,
    want,
  );
}

/** Channel labels as printed: secret values by their secret's name, inline URLs without query or user info. */
function shownChannelLabels(labels: Record<string, string>, wanted: Record<string, string>, secretLabels: Record<string, string>): string {
  const shown = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => {
      const secret = secretLabels[key];
      if (secret) return `${key}=${value === wanted[key] ? `(secret ${secret})` : '(another value)'}`;
      return `${key}=${key === 'url' ? shownUrl(value) : value}`;
    });
  return shown.join(', ');
}

export function diffChannel(
  found: NotificationChannelSpec | undefined,
  want: NotificationChannelSpec,
  secretLabels: Record<string, string>,
): Diff {
  return diffFields<NotificationChannelSpec>(
    [
      { field: 'type', value: (s) => s.type, immutable: true },
      { field: 'display_name', value: (s) => s.displayName },
      { field: 'description', value: (s) => s.description },
      {
        field: 'labels',
        value: (s) => sortedJson(s.labels),
        shown: (s) => shownChannelLabels(s.labels, want.labels, secretLabels),
      },
      { field: 'user_labels', value: (s) => sortedJson(s.userLabels) },
      { field: 'enabled', value: (s) => String(s.enabled) },
    ],
    found,
    want,
  );
}

const httpCheck = (s: UptimeCheckSpec) =>
  `GET ${s.useSsl ? 'https' : 'http'}://${s.host}:${s.port}${s.path}${s.validateSsl ? '' : ' (certificate not validated)'}${s.oidcToken ? ' with an OIDC token' : ''}`;

export function diffUptimeCheck(found: UptimeCheckSpec | undefined, want: UptimeCheckSpec): Diff {
  return diffFields<UptimeCheckSpec>(
    [
      { field: 'display_name', value: (s) => s.displayName },
      { field: 'monitored_resource', value: (s) => `uptime_url ${s.host}`, immutable: true },
      // Host and port live in the monitored resource and http_check; the rest of the check is here.
      { field: 'http_check', value: httpCheck },
      { field: 'period', value: (s) => `${s.periodSeconds}s`, immutable: true },
      { field: 'timeout', value: (s) => `${s.timeoutSeconds}s` },
      { field: 'user_labels', value: (s) => sortedJson(s.userLabels), immutable: true },
    ],
    found,
    want,
  );
}

const aggregation = (a: Aggregation) =>
  `${a.perSeriesAligner}/${a.alignmentPeriodSeconds}s ${a.crossSeriesReducer}${a.groupByFields.length ? ` by ${a.groupByFields.join(',')}` : ''}`;

/** One condition as one line: what it watches, how, and when it fires. */
function describeCondition(c: ThresholdCondition): string {
  if (c.kind && c.kind !== 'threshold') return `${c.displayName} (${c.kind} condition)`;
  const ratio = c.denominatorFilter ? ` / {${c.denominatorFilter}} [${c.denominatorAggregations.map(aggregation).join('; ')}]` : '';
  return `${c.displayName}: {${c.filter}} [${c.aggregations.map(aggregation).join('; ')}]${ratio} ${c.comparison} ${c.thresholdValue} for ${c.durationSeconds}s`;
}

export function diffPolicy(found: AlertPolicySpec | undefined, want: AlertPolicySpec): Diff {
  return diffFields<AlertPolicySpec>(
    [
      { field: 'display_name', value: (s) => s.displayName },
      { field: 'documentation', value: (s) => s.documentation, shown: (s) => `${s.documentation.split('\n')[0]}…` },
      { field: 'user_labels', value: (s) => sortedJson(s.userLabels) },
      { field: 'conditions', value: (s) => s.conditions.map(describeCondition).join(' | ') },
      { field: 'combiner', value: (s) => s.combiner },
      { field: 'enabled', value: (s) => String(s.enabled) },
      { field: 'notification_channels', value: (s) => [...s.notificationChannels].sort().join(', ') || '(none)' },
      { field: 'severity', value: (s) => s.severity },
    ],
    found,
    want,
  );
}
