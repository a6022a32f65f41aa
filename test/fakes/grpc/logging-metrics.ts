/**
 * google.logging.v2.MetricsServiceV2 as `monitoring setup` meets it: log-based metrics under
 * projects/P, with the documented rules. A metric id is 1-100 characters of A-Z a-z 0-9 and
 * _-.,+!*',()%/ and does not start with "/"; in a metric_name the id is URL-encoded
 * (projects/p/metrics/nginx%2Frequests), so a raw "/" there names nothing. The filter must parse
 * (balanced quotes and parentheses, known operators, no dangling AND/OR); every label extractor
 * names a label of the metric descriptor and is an EXTRACT or REGEXP_EXTRACT; a metric's kind and
 * value type never change. UpdateLogMetric creates a missing metric, as Cloud Logging does.
 *
 * Test hooks: granted (the operator's permissions), grantedTo (a service account's), metric(id),
 * userMetricTypes(project) for the Monitoring fake's filter checks.
 */
import { currentCaller } from './caller.ts';
import { paginate, timestamp } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

type Message = Record<string, unknown>;

export const LOG_METRIC_PERMISSIONS = [
  'logging.logMetrics.create',
  'logging.logMetrics.get',
  'logging.logMetrics.list',
  'logging.logMetrics.update',
  'logging.logMetrics.delete',
] as const;

const PROTOS = protosJsonOf('@google-cloud/logging-api');
const SERVICE = 'google.logging.v2.MetricsServiceV2';
const PARENT = /^projects\/([^/]+)$/;
const METRIC_NAME = /^projects\/([^/]+)\/metrics\/([^/]+)$/;
const METRIC_ID = /^[A-Za-z0-9_\-.,+!*'()%][A-Za-z0-9_\-.,+!*'()%/]{0,99}$/;
const EXTRACTOR = /^(EXTRACT\([^()]+\)|REGEXP_EXTRACT\([^,()]+,\s*"(?:[^"\\]|\\.)*"\))$/;
const MAX_FILTER = 20_000;

const invalid = (message: string) => new FakeStatus(status.INVALID_ARGUMENT, message);

/**
 * The Logging query language's shape, enough to refuse what Cloud Logging refuses: unbalanced
 * quotes or parentheses, `==`, and an expression that starts or ends with a boolean operator.
 */
export function loggingFilterProblem(filter: string): string | undefined {
  if (!filter.trim()) return 'the filter is empty';
  if (filter.length > MAX_FILTER) return `the filter is longer than ${MAX_FILTER} characters`;
  let depth = 0;
  let outside = '';
  for (let i = 0; i < filter.length; i += 1) {
    const ch = filter[i]!;
    if (ch === '"') {
      const end = filter.slice(i + 1).search(/(?<!\\)"/);
      if (end < 0) return 'unterminated string';
      i += end + 1;
      outside += ' "" ';
      continue;
    }
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (depth < 0) return 'unbalanced parentheses';
    outside += ch;
  }
  if (depth !== 0) return 'unbalanced parentheses';
  if (/==/.test(outside)) return 'unexpected "==" (the equality operator is "=")';
  if (/^\s*(AND|OR)\b|\b(AND|OR|NOT)\s*$/.test(outside)) return 'an expression is missing around a boolean operator';
  if (/\b(AND|OR)\s+(AND|OR)\b/.test(outside)) return 'two boolean operators in a row';
  return undefined;
}

interface StoredMetric {
  project: string;
  metric: Message;
}

const descriptorOf = (metric: Message) => (metric.metricDescriptor as Message | null) ?? null;
const kindOf = (metric: Message) => String(descriptorOf(metric)?.metricKind ?? 'METRIC_KIND_UNSPECIFIED');
const valueTypeOf = (metric: Message) => String(descriptorOf(metric)?.valueType ?? 'VALUE_TYPE_UNSPECIFIED');

export class LogMetricsFake implements FakeService {
  granted = new Set<string>(LOG_METRIC_PERMISSIONS);
  readonly grantedTo = new Map<string, Set<string>>();
  readonly #metrics = new Map<string, StoredMetric>();

  /** A stored metric by project and id, as the API would return it. */
  metric(project: string, id: string): Message | undefined {
    return this.#metrics.get(`${project}/${id}`)?.metric;
  }

  /** Monitoring metric types of a project's log-based metrics: logging.googleapis.com/user/<id>. */
  userMetricTypes(project: string): Set<string> {
    return new Set(
      [...this.#metrics.values()].filter((m) => m.project === project).map((m) => `logging.googleapis.com/user/${String(m.metric.name)}`),
    );
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: PROTOS,
        service: SERVICE,
        handlers: {
          ListLogMetrics: (request) => {
            const project = this.#project(String(request.parent), 'logging.logMetrics.list');
            const all = [...this.#metrics.values()].filter((m) => m.project === project).map((m) => m.metric);
            const { items, nextPageToken } = paginate(all, request, 1000);
            return { metrics: items, nextPageToken };
          },
          GetLogMetric: (request) => this.#find(String(request.metricName), 'logging.logMetrics.get').metric,
          CreateLogMetric: (request) => {
            const project = this.#project(String(request.parent), 'logging.logMetrics.create');
            const metric = this.#validate((request.metric as Message | null) ?? {});
            const key = `${project}/${String(metric.name)}`;
            if (this.#metrics.has(key)) throw new FakeStatus(status.ALREADY_EXISTS, `Metric ${String(metric.name)} already exists`);
            const stored = this.#stamp(project, metric, undefined);
            this.#metrics.set(key, { project, metric: stored });
            return stored;
          },
          UpdateLogMetric: (request) => {
            const { project, id } = this.#parseName(String(request.metricName));
            this.#require('logging.logMetrics.update', String(request.metricName));
            const metric = this.#validate((request.metric as Message | null) ?? {});
            if (metric.name !== id)
              throw invalid(`metric.name "${String(metric.name)}" does not match the metric_name ${String(request.metricName)}`);
            const previous = this.#metrics.get(`${project}/${id}`);
            if (previous && (kindOf(previous.metric) !== kindOf(metric) || valueTypeOf(previous.metric) !== valueTypeOf(metric))) {
              throw invalid(`the metric kind and value type of ${id} cannot be changed`);
            }
            const stored = this.#stamp(project, metric, previous?.metric);
            this.#metrics.set(`${project}/${id}`, { project, metric: stored });
            return stored;
          },
          DeleteLogMetric: (request) => {
            const found = this.#find(String(request.metricName), 'logging.logMetrics.delete');
            this.#metrics.delete(`${found.project}/${String(found.metric.name)}`);
            return {};
          },
        },
      },
    ];
  }

  #permissions(): ReadonlySet<string> {
    const caller = currentCaller();
    return caller === undefined ? this.granted : (this.grantedTo.get(caller) ?? new Set());
  }

  #require(permission: string, resource: string): void {
    if (!this.#permissions().has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource (or it may not exist): ${resource}`);
    }
  }

  #project(parent: string, permission: string): string {
    const match = PARENT.exec(parent);
    if (!match) throw invalid(`Invalid parent: "${parent}"; expected projects/[PROJECT_ID]`);
    this.#require(permission, parent);
    return match[1]!;
  }

  #parseName(name: string): { project: string; id: string } {
    const match = METRIC_NAME.exec(name);
    if (!match) throw invalid(`Invalid metric name "${name}": expected projects/[PROJECT_ID]/metrics/[METRIC_ID] with the id URL-encoded`);
    return { project: match[1]!, id: decodeURIComponent(match[2]!) };
  }

  #find(name: string, permission: string): StoredMetric {
    const { project, id } = this.#parseName(name);
    this.#require(permission, name);
    const found = this.#metrics.get(`${project}/${id}`);
    if (!found) throw new FakeStatus(status.NOT_FOUND, `Metric ${id} does not exist`);
    return found;
  }

  #validate(metric: Message): Message {
    const id = String(metric.name ?? '');
    if (!METRIC_ID.test(id)) {
      throw invalid(`Invalid metric name "${id}": 1-100 characters of A-Z, a-z, 0-9 and _-.,+!*',()%/, not starting with "/"`);
    }
    const problem = loggingFilterProblem(String(metric.filter ?? ''));
    if (problem) throw invalid(`Invalid filter for metric ${id}: ${problem}`);
    const descriptor = descriptorOf(metric);
    const labelKeys = new Set(((descriptor?.labels as Message[] | undefined) ?? []).map((label) => String(label.key)));
    for (const [key, extractor] of Object.entries((metric.labelExtractors as Record<string, string> | undefined) ?? {})) {
      if (!labelKeys.has(key)) throw invalid(`Label extractor "${key}" has no matching label in the metric descriptor of ${id}`);
      if (!EXTRACTOR.test(extractor)) throw invalid(`Invalid label extractor for "${key}": ${extractor}`);
    }
    const kind = kindOf(metric);
    if (!['METRIC_KIND_UNSPECIFIED', 'DELTA'].includes(kind)) throw invalid(`Log-based metrics are DELTA metrics; got ${kind}`);
    const valueType = valueTypeOf(metric);
    if (valueType === 'DISTRIBUTION' && !metric.valueExtractor) throw invalid(`A distribution metric needs a value_extractor`);
    if (!['VALUE_TYPE_UNSPECIFIED', 'INT64', 'DISTRIBUTION'].includes(valueType)) {
      throw invalid(`Log-based metrics count (INT64) or distribute (DISTRIBUTION); got ${valueType}`);
    }
    return metric;
  }

  #stamp(project: string, metric: Message, previous: Message | undefined): Message {
    const now = timestamp(new Date());
    const id = String(metric.name);
    const descriptor = descriptorOf(metric) ?? {};
    return {
      ...metric,
      metricDescriptor: {
        ...descriptor,
        name: `projects/${project}/metricDescriptors/logging.googleapis.com/user/${id}`,
        type: `logging.googleapis.com/user/${id}`,
        metricKind: 'DELTA',
        valueType: valueTypeOf(metric) === 'VALUE_TYPE_UNSPECIFIED' ? 'INT64' : valueTypeOf(metric),
      },
      createTime: previous?.createTime ?? now,
      updateTime: now,
      version: 'V2',
    };
  }
}
