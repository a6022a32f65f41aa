import type { z } from 'zod';
import type { SqlDialect } from '../../backends/warehouse/dialect.ts';
import type { FieldSpec, FieldType, Scalar } from '../../backends/warehouse/port.ts';
import { ruleSchema, type DqRule } from '../../domain/pipeline.ts';
import { validationError } from '../../lib/errors.ts';
import type { DqSeverity } from './types.ts';

/** A rule as written in YAML (before defaults); the engine re-validates so any caller gets the same checks. */
export type DqRuleInput = z.input<typeof ruleSchema>;

/** A rule checked against the table: names resolved, columns in the table's own spelling, values typed. */
export interface ResolvedRule {
  name: string;
  rule: DqRule;
  severity: DqSeverity;
  columns: string[];
  types: FieldType[];
  /** expression: the tenant's text, as written (trimmed), for details and messages. */
  expr?: string;
  /** expression: the text the warehouse's check returned, the only form that goes into SQL. */
  checkedExpr?: string;
  /** accepted_values: values converted to the column's type, so both engines compare like with like. */
  values?: Scalar[];
}

export interface TableContext {
  dataset: string;
  table: string;
  /** Reads which columns an expression mentions (warehouse.dialect). */
  dialect: Pick<SqlDialect, 'referencedColumns'>;
  fields: FieldSpec[];
}

export function parseRules(inputs: readonly unknown[]): DqRule[] {
  return inputs.map((input, index) => {
    const parsed = ruleSchema.safeParse(input);
    if (parsed.success) return parsed.data;
    const label = (input as { name?: unknown } | null)?.name;
    const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    throw validationError(`dq rule ${index + 1}${typeof label === 'string' ? ` "${label}"` : ''} is invalid: ${issues}`, {
      data: { rule_index: index },
    });
  });
}

function ruleColumns(rule: DqRule): string[] {
  switch (rule.check) {
    case 'not_null':
    case 'unique':
      return [...rule.columns];
    case 'range':
    case 'accepted_values':
    case 'regex':
    case 'freshness':
      return [rule.column];
    case 'row_count':
    case 'expression':
      return [];
  }
}

const defaultRuleName = (rule: DqRule): string => [rule.check, ...ruleColumns(rule)].join('_');

/**
 * Explicit names must be unique (two rules with one name would be indistinguishable in
 * tenant_dq_results); generated names give way with _2, _3… so a table can carry, say, two ranges.
 */
export function nameRules(rules: readonly DqRule[]): string[] {
  const taken = new Set<string>();
  for (const rule of rules) {
    if (rule.name === undefined) continue;
    if (taken.has(rule.name)) throw validationError(`two dq rules are named "${rule.name}"`, { suggestion: 'give each rule its own name' });
    taken.add(rule.name);
  }
  return rules.map((rule) => {
    if (rule.name !== undefined) return rule.name;
    const base = defaultRuleName(rule);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
    taken.add(name);
    return name;
  });
}

const NUMERIC: FieldType[] = ['INT64', 'FLOAT64', 'NUMERIC'];
const ALLOWED_TYPES: Partial<Record<DqRule['check'], FieldType[]>> = {
  range: NUMERIC,
  regex: ['STRING'],
  freshness: ['DATE', 'TIMESTAMP'],
  accepted_values: ['STRING', ...NUMERIC, 'BOOL', 'DATE'],
  // BigQuery cannot group by JSON; refusing it everywhere keeps local and cloud runs alike.
  unique: ['STRING', ...NUMERIC, 'BOOL', 'DATE', 'TIMESTAMP', 'BYTES'],
};

/** Regex features JavaScript accepts (the YAML check) but RE2, the engine of both warehouses, does not. */
const NOT_RE2 = /\(\?<?[=!]|\\[1-9]|\\k</;

function coerceValue(rule: string, column: string, type: FieldType, value: string | number | boolean): Scalar {
  const fail = () =>
    validationError(`dq rule "${rule}": accepted value ${JSON.stringify(value)} cannot be compared with ${column} (${type})`, {
      data: { rule, column, type },
    });
  switch (type) {
    case 'STRING':
      return String(value);
    case 'BOOL':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw fail();
    case 'DATE':
      if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
      throw fail();
    default: {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n)) throw fail();
      return n;
    }
  }
}

/**
 * Every check that needs no warehouse: columns exist and have usable types. Expressions are
 * checked by the warehouse afterwards (checkExpression), which sets `checkedExpr`.
 */
export function resolveRules(rules: readonly DqRule[], table: TableContext): ResolvedRule[] {
  const names = nameRules(rules);
  const byName = new Map(table.fields.map((f) => [f.name.toLowerCase(), f]));
  const available = table.fields.map((f) => f.name).join(', ');
  return rules.map((rule, index) => {
    const name = names[index]!;
    const fields = ruleColumns(rule).map((column) => {
      const field = byName.get(column.toLowerCase());
      if (!field) {
        throw validationError(`dq rule "${name}": column "${column}" is not in ${table.dataset}.${table.table}`, {
          suggestion: `available columns: ${available}`,
          data: { rule: name, column, available: table.fields.map((f) => f.name) },
        });
      }
      const allowed = ALLOWED_TYPES[rule.check];
      if (allowed && !allowed.includes(field.type)) {
        throw validationError(`dq rule "${name}": ${rule.check} cannot check column ${field.name} of type ${field.type}`, {
          suggestion: `${rule.check} works on ${allowed.join(', ')} columns`,
          data: { rule: name, column: field.name, type: field.type },
        });
      }
      return field;
    });
    const resolved: ResolvedRule = {
      name,
      rule,
      severity: rule.severity,
      columns: fields.map((f) => f.name),
      types: fields.map((f) => f.type),
    };
    if (rule.check === 'regex' && NOT_RE2.test(rule.pattern)) {
      throw validationError(`dq rule "${name}": pattern ${JSON.stringify(rule.pattern)} uses lookaround or backreferences`, {
        suggestion: 'the warehouses match with RE2, which has neither; rewrite the pattern without them',
        data: { rule: name },
      });
    }
    if (rule.check === 'accepted_values') {
      resolved.values = rule.values.map((v) => coerceValue(name, fields[0]!.name, fields[0]!.type, v));
    }
    if (rule.check === 'expression') {
      resolved.expr = rule.expr.trim();
      const referenced = table.dialect.referencedColumns(resolved.expr, table.fields);
      resolved.columns = referenced;
      resolved.types = referenced.map((c) => byName.get(c.toLowerCase())!.type);
    }
    return resolved;
  });
}
