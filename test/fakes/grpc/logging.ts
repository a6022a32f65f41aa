/**
 * google.logging.v2.LoggingServiceV2 as `pipeline logs` meets it: WriteLogEntries and
 * ListLogEntries over the entries of any number of projects, plus what Cloud Run does with a job
 * container's output (containerLine: a JSON line becomes a jsonPayload entry with its special
 * fields lifted out, any other line a textPayload entry, on the cloud_run_job resource).
 *
 * ListLogEntries is strict where Google is: resource_names required, page_size at most 1000,
 * order_by only by timestamp, and the filter is parsed by a small parser of the Logging query
 * language subset the product writes (comparisons joined by AND); anything else is refused with
 * INVALID_ARGUMENT, so a filter the product starts writing differently fails a test first.
 */
import { randomUUID } from 'node:crypto';
import { paginate } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const LOGGING_PERMISSIONS = ['logging.logEntries.create', 'logging.logEntries.list'] as const;

const SEVERITIES = ['DEFAULT', 'DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY'];
const SEVERITY_NUMBERS: Record<string, number> = {
  DEFAULT: 0,
  DEBUG: 100,
  INFO: 200,
  NOTICE: 300,
  WARNING: 400,
  ERROR: 500,
  CRITICAL: 600,
  ALERT: 700,
  EMERGENCY: 800,
};
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
const LOG_NAME = /^projects\/([^/]+)\/logs\/[^/]+$/;
const RESOURCE_NAME = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

type Struct = { fields: Record<string, StructValue> };
type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: Struct }
  | { listValue: { values: StructValue[] } };

interface StoredEntry {
  logName: string;
  resource: { type: string; labels: Record<string, string> };
  timestamp: Date;
  receiveTimestamp: Date;
  severity: string;
  insertId: string;
  labels: Record<string, string>;
  trace: string;
  textPayload?: string;
  jsonPayload?: Struct;
}

/** Where a line of a Cloud Run job's container came from. */
export interface ContainerSource {
  project: string;
  location: string;
  job: string;
  execution: string;
  taskIndex: number;
  taskAttempt?: number;
  stream: 'stdout' | 'stderr';
}

export interface ContainerLogSink {
  containerLine(line: string, source: ContainerSource): void;
}

type Comparison = '=' | '>=' | '<=' | '>' | '<';

/** One comparison of the filter: a field path, an operator and its value. */
interface Term {
  field: 'resource.type' | 'logName' | 'timestamp' | 'severity' | { map: 'resource.labels' | 'labels'; key: string };
  op: Comparison;
  value: string;
}

const toStructValue = (value: unknown): StructValue => {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toStructValue) } };
  return { structValue: toStruct(value as Record<string, unknown>) };
};
const toStruct = (object: Record<string, unknown>): Struct => ({
  fields: Object.fromEntries(Object.entries(object).map(([key, value]) => [key, toStructValue(value)])),
});

const timestampOf = (date: Date) => ({ seconds: String(Math.floor(date.getTime() / 1000)), nanos: (date.getTime() % 1000) * 1_000_000 });

function dateOf(value: unknown): Date | undefined {
  const ts = value as { seconds?: string | number; nanos?: number } | null | undefined;
  if (!ts || (ts.seconds === undefined && ts.nanos === undefined)) return undefined;
  return new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1_000_000));
}

const unparseable = (detail: string) => new FakeStatus(status.INVALID_ARGUMENT, `Unparseable filter: ${detail}`);

/** Splits a filter at top-level AND (outside quotes); OR, NOT and parentheses are not in the subset. */
function splitConjunction(filter: string): string[] {
  const terms: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < filter.length; i += 1) {
    const ch = filter[i]!;
    if (quoted) {
      current += ch;
      if (ch === '\\') current += filter[++i] ?? '';
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    if ('()'.includes(ch))
      throw unparseable(`syntax error at column ${i + 1}, token '${ch}' (the fake supports comparisons joined by AND)`);
    const rest = filter.slice(i);
    const keyword = /^\s+(AND|OR|NOT)\s+/.exec(rest) ?? (i === 0 ? /^(NOT)\s+/.exec(rest) : null);
    if (keyword) {
      if (keyword[1] !== 'AND')
        throw unparseable(`unsupported operator ${keyword[1]} at column ${i + 1} (the fake supports comparisons joined by AND)`);
      terms.push(current);
      current = '';
      i += keyword[0].length - 1;
      continue;
    }
    current += ch;
  }
  if (quoted) throw unparseable('unterminated string literal');
  terms.push(current);
  return terms.map((term) => term.trim());
}

const unquote = (literal: string): string | undefined => {
  if (!/^"(?:[^"\\]|\\.)*"$/.test(literal)) return undefined;
  return literal.slice(1, -1).replace(/\\(.)/g, '$1');
};

function parseTerm(text: string): Term {
  const match =
    /^(resource\.type|logName|timestamp|severity|resource\.labels\.(?:[A-Za-z_][\w]*)|labels\.(?:[A-Za-z_][\w]*|"[^"]+"))\s*(>=|<=|=|>|<)\s*(.+)$/.exec(
      text,
    );
  if (!match)
    throw unparseable(
      `cannot parse the comparison '${text}' (the fake supports resource.type, resource.labels.K, labels.K, logName, timestamp, severity)`,
    );
  const [, path, op, raw] = match as unknown as [string, string, Comparison, string];
  if (path === 'severity') {
    const value = (unquote(raw) ?? raw).toUpperCase();
    if (!SEVERITIES.includes(value)) throw unparseable(`invalid severity '${raw}'`);
    return { field: 'severity', op, value };
  }
  const value = unquote(raw);
  if (value === undefined) throw unparseable(`expected a quoted string after '${path}${op}', got '${raw}'`);
  if (path === 'timestamp') {
    if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid timestamp value '${value}': expected RFC 3339, e.g. 2025-01-31T12:00:00Z`);
    }
    return { field: 'timestamp', op, value };
  }
  if (op !== '=') throw unparseable(`the fake compares '${path}' with = only, got ${op}`);
  if (path === 'resource.type' || path === 'logName') return { field: path, op, value };
  const [map, key] = path.startsWith('resource.labels.')
    ? (['resource.labels', path.slice('resource.labels.'.length)] as const)
    : (['labels', path.slice('labels.'.length)] as const);
  return { field: { map, key: unquote(key) ?? key }, op, value };
}

/** Parses a filter of the supported subset; an empty filter matches everything. */
export function parseFilter(filter: string): Term[] {
  if (filter.trim() === '') return [];
  if (filter.length > 20_000) throw new FakeStatus(status.INVALID_ARGUMENT, 'The filter is too long (at most 20000 characters).');
  return splitConjunction(filter).map(parseTerm);
}

function compare(actual: number, op: Comparison, wanted: number): boolean {
  switch (op) {
    case '=':
      return actual === wanted;
    case '>=':
      return actual >= wanted;
    case '<=':
      return actual <= wanted;
    case '>':
      return actual > wanted;
    case '<':
      return actual < wanted;
  }
}

function matches(entry: StoredEntry, term: Term): boolean {
  const { field, op, value } = term;
  if (field === 'timestamp') return compare(entry.timestamp.getTime(), op, Date.parse(value));
  if (field === 'severity') return compare(SEVERITY_NUMBERS[entry.severity] ?? 0, op, SEVERITY_NUMBERS[value]!);
  if (field === 'resource.type') return entry.resource.type === value;
  if (field === 'logName') return entry.logName === value;
  const labels = field.map === 'labels' ? entry.labels : entry.resource.labels;
  return labels[field.key] === value;
}

export class LoggingFake implements FakeService, ContainerLogSink {
  /** Permissions the caller holds, in every project. Tests remove some to see PERMISSION_DENIED. */
  granted = new Set<string>(LOGGING_PERMISSIONS);
  readonly #entries: StoredEntry[] = [];
  #lastTime = 0;

  /** Every stored entry, oldest write first, for assertions behind the client. */
  entries(): ReadonlyArray<Readonly<StoredEntry>> {
    return this.#entries;
  }

  /**
   * A line a Cloud Run job's container wrote, as Cloud Run forwards it: JSON objects become
   * jsonPayload with severity, time, `logging.googleapis.com/labels` and `/trace` lifted out;
   * anything else becomes textPayload. The execution and task go into the entry's labels.
   */
  containerLine(line: string, source: ContainerSource): void {
    const text = line.replace(/\r?\n$/, '');
    if (text === '') return;
    let parsed: Record<string, unknown> | undefined;
    try {
      const value: unknown = text.startsWith('{') ? JSON.parse(text) : undefined;
      if (value && typeof value === 'object' && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    const labels: Record<string, string> = {};
    let severity = 'DEFAULT';
    let timestamp = this.#now();
    let trace = '';
    if (parsed) {
      const special = { ...parsed };
      const raw = String(special['severity'] ?? '').toUpperCase();
      if (SEVERITIES.includes(raw)) severity = raw;
      delete special['severity'];
      const own = special['logging.googleapis.com/labels'];
      if (own && typeof own === 'object') for (const [k, v] of Object.entries(own)) labels[k] = String(v);
      delete special['logging.googleapis.com/labels'];
      trace = typeof special['logging.googleapis.com/trace'] === 'string' ? special['logging.googleapis.com/trace'] : '';
      delete special['logging.googleapis.com/trace'];
      const time = special['time'] ?? special['timestamp'];
      if (typeof time === 'string' && RFC3339.test(time)) {
        timestamp = new Date(time);
        delete special['time'];
        delete special['timestamp'];
      }
      parsed = special;
    }
    this.#store({
      logName: `projects/${source.project}/logs/run.googleapis.com%2F${source.stream}`,
      resource: { type: 'cloud_run_job', labels: { project_id: source.project, job_name: source.job, location: source.location } },
      timestamp,
      receiveTimestamp: this.#now(),
      severity,
      insertId: randomUUID().replaceAll('-', '').slice(0, 16),
      labels: {
        ...labels,
        'run.googleapis.com/execution_name': source.execution,
        'run.googleapis.com/task_index': String(source.taskIndex),
        'run.googleapis.com/task_attempt': String(source.taskAttempt ?? 0),
      },
      trace,
      ...(parsed ? { jsonPayload: toStruct(parsed) } : { textPayload: text }),
    });
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: protosJsonOf('@google-cloud/logging-api'),
        service: 'google.logging.v2.LoggingServiceV2',
        handlers: {
          WriteLogEntries: (request) => this.#write(request),
          ListLogEntries: (request) => this.#list(request),
        },
      },
    ];
  }

  #now(): Date {
    this.#lastTime = Math.max(Date.now(), this.#lastTime + 1);
    return new Date(this.#lastTime);
  }

  #store(entry: StoredEntry): void {
    this.#entries.push(entry);
  }

  #require(permission: string, resource: string): void {
    if (!this.granted.has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource (or it may not exist).`, {
        reason: 'IAM_PERMISSION_DENIED',
        domain: 'logging.googleapis.com',
        metadata: { permission, resource },
      });
    }
  }

  #write(request: Record<string, unknown>) {
    const entries = (request.entries ?? []) as Array<Record<string, unknown>>;
    if (entries.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'entries: at least one log entry is required.');
    const defaultLog = String(request.logName ?? '');
    const defaultResource = request.resource as StoredEntry['resource'] | null;
    const defaultLabels = (request.labels ?? {}) as Record<string, string>;
    const stored = entries.map((entry, index) => {
      const logName = String(entry.logName || defaultLog);
      const project = LOG_NAME.exec(logName)?.[1];
      if (!project) throw new FakeStatus(status.INVALID_ARGUMENT, `entries[${index}].log_name: '${logName}' is not a valid log name.`);
      this.#require('logging.logEntries.create', `projects/${project}`);
      const resource = (entry.resource as StoredEntry['resource'] | null) ?? defaultResource;
      if (!resource?.type) throw new FakeStatus(status.INVALID_ARGUMENT, `entries[${index}].resource: a monitored resource is required.`);
      const severity = String(entry.severity || 'DEFAULT');
      const payload = String(entry.payload ?? '');
      return {
        logName,
        resource: { type: resource.type, labels: { ...(resource.labels ?? {}) } },
        timestamp: dateOf(entry.timestamp) ?? this.#now(),
        receiveTimestamp: this.#now(),
        severity: SEVERITIES.includes(severity) ? severity : 'DEFAULT',
        insertId: String(entry.insertId || randomUUID().replaceAll('-', '').slice(0, 16)),
        labels: { ...defaultLabels, ...((entry.labels ?? {}) as Record<string, string>) },
        trace: String(entry.trace ?? ''),
        ...(payload === 'jsonPayload' ? { jsonPayload: entry.jsonPayload as Struct } : { textPayload: String(entry.textPayload ?? '') }),
      } satisfies StoredEntry;
    });
    if (!request.dryRun) for (const entry of stored) this.#store(entry);
    return {};
  }

  #list(request: Record<string, unknown>) {
    const resourceNames = (request.resourceNames ?? []) as string[];
    if (resourceNames.length === 0)
      throw new FakeStatus(status.INVALID_ARGUMENT, 'resource_names: at least one resource name is required.');
    const projects = resourceNames.map((name) => {
      const project = RESOURCE_NAME.exec(name)?.[1];
      if (!project) throw new FakeStatus(status.INVALID_ARGUMENT, `resource_names: '${name}' is not a valid resource name.`);
      this.#require('logging.logEntries.list', name);
      return project;
    });
    const orderBy = String(request.orderBy ?? '').trim() || 'timestamp asc';
    if (orderBy !== 'timestamp asc' && orderBy !== 'timestamp desc') {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `Invalid order_by '${orderBy}': only "timestamp asc" and "timestamp desc" are supported.`,
      );
    }
    const pageSize = Number(request.pageSize ?? 0);
    if (pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `page_size must be between 0 and ${MAX_PAGE_SIZE}, got ${pageSize}.`);
    }
    const terms = parseFilter(String(request.filter ?? ''));
    const selected = this.#entries
      .filter((entry) => projects.includes(LOG_NAME.exec(entry.logName)![1]!) && terms.every((term) => matches(entry, term)))
      .sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    if (orderBy === 'timestamp desc') selected.reverse();
    const { items, nextPageToken } = paginate(
      selected,
      { pageSize: pageSize || DEFAULT_PAGE_SIZE, pageToken: request.pageToken },
      MAX_PAGE_SIZE,
    );
    return { entries: items.map((entry) => this.#describe(entry)), nextPageToken };
  }

  #describe(entry: StoredEntry) {
    return {
      logName: entry.logName,
      resource: entry.resource,
      timestamp: timestampOf(entry.timestamp),
      receiveTimestamp: timestampOf(entry.receiveTimestamp),
      severity: entry.severity,
      insertId: entry.insertId,
      labels: entry.labels,
      trace: entry.trace,
      ...(entry.jsonPayload ? { jsonPayload: entry.jsonPayload } : { textPayload: entry.textPayload ?? '' }),
    };
  }
}
