import { asciiLower } from '../tenant-sql.ts';

/**
 * What tenant SQL may do, decided on DuckDB's own parse tree (`json_serialize_sql`), never on
 * its text. The walk visits every object of the tree, so a table or function is found wherever
 * the grammar lets it hide (CTE bodies, subqueries in WHERE, lateral joins, PIVOT sources, window
 * specs, lambdas); only the nodes that name data are judged:
 *
 * - BASE_TABLE: `<dataset>.<table>` with the tenant's dataset, or a bare name that is a CTE in
 *   scope. No catalog part, no other schema (tenants, information_schema, pg_catalog, main,
 *   other tenants), no bare table names (they would resolve to main, temp or a file path).
 * - TABLE_FUNCTION: only generators that read nothing but their arguments (unnest, range, …).
 * - FUNCTION (and WINDOW): built-in functions only, minus those that read settings, the session,
 *   sequences or the catalog, and minus every table function and pragma used as a scalar.
 * - SHOW_REF (DESCRIBE, SHOW, SUMMARIZE) and nodes only the binder makes: refused.
 * - PARAMETER: only the template variables the caller binds.
 * Expressions (DQ rules) additionally refuse subqueries, parameters and `*`.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface PolicyContext {
  /** The tenant's dataset, ASCII lower case. */
  dataset: string;
  /** Parameter names the caller will bind, lower case. */
  params: ReadonlySet<string>;
  /** Function names (lower case) that reach outside the tenant's rows. */
  deniedFunctions: ReadonlySet<string>;
  /** A DQ expression: one value per row, so no subqueries, parameters or stars. */
  expression?: boolean;
}

interface Violation {
  reason: string;
  /** Byte offset in the parsed text, when the parser recorded one. */
  location?: number;
}

export interface PolicyReport {
  /** dataset.table for every table read. */
  tables: string[];
  /** Parameter names the query uses, as written. */
  params: string[];
  violations: Violation[];
}

/** Table functions that produce rows from their arguments alone. */
const GENERATOR_FUNCTIONS: ReadonlySet<string> = new Set(['unnest', 'range', 'generate_series', 'json_each', 'json_tree']);

/**
 * Scalar functions that read the session, settings, environment, catalog or sequences (or write
 * the log, or sleep). The catalog supplies the rest of the deny list (see deniedFunctionsQuery).
 */
export const SESSION_FUNCTIONS: readonly string[] = [
  'current_setting', 'getvariable', 'getenv', 'current_database', 'current_catalog', 'current_schema', 'current_schemas',
  'current_query', 'current_query_id', 'current_connection_id', 'current_transaction_id', 'txid_current', 'current_user',
  'current_role', 'session_user', 'user', 'version', 'platform', 'in_search_path', 'nextval', 'currval', 'setseed',
  'write_log', 'sleep_ms', 'get_block_size',
]; // prettier-ignore

/**
 * Names DuckDB's catalog lists as table functions, table macros or pragmas (and not also as a
 * scalar, aggregate or macro of main), or only in a schema other than main (pg_catalog macros).
 * Called as a scalar they would read files, the catalog or settings, or fail; either way, refused.
 */
export const DENIED_FUNCTIONS_QUERY = `
  SELECT DISTINCT lower(function_name) AS name FROM duckdb_functions()
  WHERE (schema_name <> 'main' OR function_type IN ('table', 'table_macro', 'pragma'))
    AND lower(function_name) NOT IN (
      SELECT lower(function_name) FROM duckdb_functions()
      WHERE schema_name = 'main' AND function_type IN ('scalar', 'aggregate', 'macro'))`;

/** Table reference kinds that read the catalog or exist only inside the binder. */
const REFUSED_REFS: Record<string, string> = {
  SHOW_REF: 'uses DESCRIBE, SHOW or SUMMARIZE, which read the catalog',
  COLUMN_DATA: 'uses an internal table reference',
  DELIM_GET: 'uses an internal table reference',
  BOUND_TABLE_REF: 'uses an internal table reference',
  CTE: 'uses an internal table reference',
};

const NO_LOCATION = 2 ** 53;

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: Json | undefined): string => (typeof value === 'string' ? value : '');

function locationOf(node: JsonObject): number | undefined {
  const at = node['query_location'];
  return typeof at === 'number' && at >= 0 && at < NO_LOCATION ? at : undefined;
}

class Inspector {
  readonly tables = new Set<string>();
  readonly params = new Set<string>();
  readonly violations: Violation[] = [];
  readonly #ctx: PolicyContext;

  constructor(ctx: PolicyContext) {
    this.#ctx = ctx;
  }

  #refuse(node: JsonObject, reason: string): void {
    this.violations.push({ reason, ...(locationOf(node) !== undefined ? { location: locationOf(node)! } : {}) });
  }

  visit(value: Json | undefined, ctes: ReadonlySet<string>): void {
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, ctes);
      return;
    }
    if (!isObject(value)) return;
    if (typeof value['class'] === 'string') return this.#expression(value, ctes);
    if (isObject(value['cte_map'])) return this.#queryNode(value, ctes);
    const type = text(value['type']);
    if (type === 'BASE_TABLE') return this.#baseTable(value, ctes);
    if (type === 'TABLE_FUNCTION') return this.#tableFunction(value, ctes);
    if (Object.hasOwn(REFUSED_REFS, type)) return this.#refuse(value, REFUSED_REFS[type]!);
    this.#children(value, ctes);
  }

  #children(node: JsonObject, ctes: ReadonlySet<string>, skip?: string): void {
    for (const [key, child] of Object.entries(node)) if (key !== skip) this.visit(child, ctes);
  }

  /**
   * A query node and its WITH list. Each CTE body sees the CTEs before it (and itself when it is
   * recursive); the node's own clauses see them all. Anything else named without a dataset is
   * refused, so a scoping doubt can only refuse, never let a table through.
   */
  #queryNode(node: JsonObject, outer: ReadonlySet<string>): void {
    const map = (node['cte_map'] as JsonObject)['map'];
    let visible = new Set(outer);
    for (const entry of Array.isArray(map) ? map : []) {
      if (!isObject(entry)) continue;
      const name = asciiLower(text(entry['key']));
      const body = entry['value'];
      const query = isObject(body) && isObject(body['query']) ? body['query'] : undefined;
      const recursive = isObject(query?.['node']) && text((query['node'] as JsonObject)['type']) === 'RECURSIVE_CTE_NODE';
      this.visit(body, recursive ? new Set([...visible, name]) : visible);
      visible = new Set([...visible, name]);
    }
    this.#children(node, visible, 'cte_map');
  }

  #baseTable(node: JsonObject, ctes: ReadonlySet<string>): void {
    const catalog = text(node['catalog_name']);
    const schema = text(node['schema_name']);
    const table = text(node['table_name']);
    const shown = [catalog, schema, table].filter(Boolean).join('.');
    if (catalog) {
      this.#refuse(node, `reads ${shown}, in another database`);
    } else if (!schema) {
      if (!ctes.has(asciiLower(table))) {
        this.#refuse(
          node,
          `reads "${table}", which is neither a CTE nor a table of the tenant's dataset (name those with {{ ref('table') }})`,
        );
      }
    } else if (asciiLower(schema) !== this.#ctx.dataset) {
      this.#refuse(node, `reads ${shown}, outside the tenant's dataset ${this.#ctx.dataset}`);
    } else {
      this.tables.add(`${this.#ctx.dataset}.${table}`);
    }
    this.visit(node['at_clause'], ctes);
    this.visit(node['sample'], ctes);
  }

  #tableFunction(node: JsonObject, ctes: ReadonlySet<string>): void {
    const fn = isObject(node['function']) ? node['function'] : {};
    const name = asciiLower(text(fn['function_name']));
    const qualified = text(fn['catalog']) || (text(fn['schema']) && asciiLower(text(fn['schema'])) !== 'main');
    if (!GENERATOR_FUNCTIONS.has(name) || qualified) {
      this.#refuse(node, `calls the table function ${name || '?'}(), which reads outside the tenant's tables`);
      return;
    }
    this.visit(fn['children'], ctes);
    this.#children(node, ctes, 'function');
  }

  #expression(node: JsonObject, ctes: ReadonlySet<string>): void {
    const kind = text(node['class']);
    if (kind === 'SUBQUERY' && this.#ctx.expression) return this.#refuse(node, 'holds a subquery; an expression is a condition on one row');
    if (kind === 'STAR' && this.#ctx.expression) return this.#refuse(node, 'uses * or COLUMNS(); an expression is one value');
    if (kind === 'PARAMETER') {
      const name = text(node['identifier']);
      if (this.#ctx.expression) return this.#refuse(node, 'uses a query parameter; an expression has none');
      if (!this.#ctx.params.has(asciiLower(name))) {
        return this.#refuse(node, `uses the parameter $${name || '?'}, which is not a template variable`);
      }
      this.params.add(name);
      return;
    }
    if (typeof node['function_name'] === 'string') this.#function(node);
    this.#children(node, ctes);
  }

  #function(node: JsonObject): void {
    const name = asciiLower(text(node['function_name']));
    const catalog = text(node['catalog']);
    const schema = text(node['schema']);
    if (catalog) this.#refuse(node, `calls ${catalog}.${schema}.${name}(), outside the built-in functions`);
    else if (schema && asciiLower(schema) !== 'main') this.#refuse(node, `calls ${schema}.${name}(), outside the built-in functions`);
    else if (this.#ctx.deniedFunctions.has(name)) {
      this.#refuse(node, `calls ${name}(), which reads files, settings, the session or the catalog`);
    }
  }
}

/** Judges one parsed statement (statements[i].node) or expression against the tenant's rule. */
export function inspect(node: Json, ctx: PolicyContext): PolicyReport {
  const inspector = new Inspector(ctx);
  inspector.visit(node, new Set());
  return { tables: [...inspector.tables].sort(), params: [...inspector.params], violations: inspector.violations };
}

/** The smallest byte offset recorded anywhere in a subtree (where a statement starts). */
export function firstLocation(node: Json): number | undefined {
  let best: number | undefined;
  const walk = (value: Json) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (isObject(value)) {
      const at = locationOf(value);
      if (at !== undefined && (best === undefined || at < best)) best = at;
      Object.values(value).forEach(walk);
    }
  };
  walk(node);
  return best;
}

/**
 * The expression inside `SELECT (<expr>) FROM <dataset>.<table>`, provided the statement is
 * exactly that: one unnamed item from that one table and nothing else. Text that closed our
 * parenthesis and went on (an alias, a second item, a WHERE, another table) shows up here.
 */
export function expressionOf(statement: Json, dataset: string, table: string): JsonObject | undefined {
  if (!isObject(statement)) return undefined;
  const node = statement['node'];
  if (!isObject(node) || node['type'] !== 'SELECT_NODE') return undefined;
  const empty = (value: Json | undefined) => value === null || value === undefined || (Array.isArray(value) && value.length === 0);
  const cteMap = isObject(node['cte_map']) ? node['cte_map']['map'] : undefined;
  const from = node['from_table'];
  const items = node['select_list'];
  const quiet =
    empty(cteMap) &&
    empty(node['modifiers']) &&
    empty(node['where_clause']) &&
    empty(node['group_expressions']) &&
    empty(node['group_sets']) &&
    empty(node['having']) &&
    empty(node['qualify']) &&
    empty(node['sample']) &&
    text(node['aggregate_handling']) === 'STANDARD_HANDLING';
  const sameTable =
    isObject(from) &&
    from['type'] === 'BASE_TABLE' &&
    text(from['catalog_name']) === '' &&
    text(from['schema_name']) === dataset &&
    text(from['table_name']) === table &&
    text(from['alias']) === '' &&
    empty(from['sample']) &&
    empty(from['at_clause']) &&
    empty(from['column_name_alias']);
  if (!quiet || !sameTable || !Array.isArray(items) || items.length !== 1) return undefined;
  const item = items[0];
  return isObject(item) && text(item['alias']) === '' ? item : undefined;
}

/** A parse tree without its source positions, for comparing two parses of the same meaning. */
export function withoutLocations(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutLocations);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (k === 'query_location' ? [] : [[k, withoutLocations(v)]])));
}
