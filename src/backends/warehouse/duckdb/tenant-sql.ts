import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { assertIdentifier } from '../../../domain/ids.ts';
import type { TenantExpressionScope } from '../port.ts';
import { asciiLower, leadingWord, lineAtByte, lineAtChar, tenantSqlInvalid, tenantSqlRefused, type Place } from '../tenant-sql.ts';
import {
  DENIED_FUNCTIONS_QUERY,
  expressionOf,
  firstLocation,
  inspect,
  SESSION_FUNCTIONS,
  withoutLocations,
  type JsonObject,
  type PolicyContext,
} from './sql-policy.ts';
import { translatePlaceholders } from './session.ts';

/**
 * The tenant SQL gate of the DuckDB warehouse. DuckDB's own parser reads the SQL
 * (`json_serialize_sql`), sql-policy.ts judges the tree, and what runs is the parser's
 * restatement of that tree (`json_deserialize_sql`), checked once more: no comment, no second
 * statement and no unbalanced parenthesis of the tenant's survives into the SQL we build around
 * it, so a `)` or a trailing `--` cannot close our wrapper.
 *
 * Parsing happens on a private in-memory database that can reach nothing: no files or URLs
 * (enable_external_access off), no extension loading, configuration locked.
 */

export interface CheckedQuery {
  /** The restated query, DuckDB dialect, with `$name` parameters. */
  sql: string;
  tables: string[];
  /** Names of the parameters it uses, as written. */
  params: string[];
}

export interface QueryScope {
  dataset: string;
  /** Names of the parameters the caller will bind. */
  params: Iterable<string>;
  origin?: string | undefined;
}

const MAX_EXPRESSION_LENGTH = 4000;

/** Settings that make a DuckDB database unable to reach outside itself; the last one freezes them. */
export const SANDBOX_SETTINGS: ReadonlyArray<[string, string]> = [
  ['enable_external_access', 'false'],
  ['autoinstall_known_extensions', 'false'],
  ['autoload_known_extensions', 'false'],
  ['lock_configuration', 'true'],
];

interface ParseError {
  error: true;
  error_type?: string;
  error_message?: string;
  position?: string;
}
interface Parsed {
  error: false;
  statements: JsonObject[];
}

/** JSON.rawJSON (ES2025) keeps 64-bit integers exact when a parse tree is written back. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
const lossless = (text: string): unknown =>
  JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: { source?: string }) {
    return typeof value === 'number' && context?.source !== undefined ? rawJSON(context.source) : value;
  } as (this: unknown, key: string, value: unknown) => unknown);

const article = (word: string) => ('AEIOU'.includes(word[0] ?? '') ? 'an' : 'a');

export class DuckDbSqlGate {
  #parser?: Promise<{ instance: DuckDBInstance; conn: DuckDBConnection; denied: ReadonlySet<string> }>;
  #queue: Promise<unknown> = Promise.resolve();

  /** Parse calls go one at a time through one connection. */
  #use<T>(work: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => work((await this.#open()).conn));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #open() {
    this.#parser ??= (async () => {
      const instance = await DuckDBInstance.create(':memory:', Object.fromEntries(SANDBOX_SETTINGS));
      const conn = await instance.connect();
      const rows = (await conn.runAndReadAll(DENIED_FUNCTIONS_QUERY)).getRowObjectsJS();
      const denied = new Set([...SESSION_FUNCTIONS, ...rows.map((r) => String(r['name']))]);
      return { instance, conn, denied };
    })().catch((err: unknown) => {
      // A parser that failed to open is tried again by the next check, not cached as broken.
      this.#parser = undefined;
      throw err;
    });
    return this.#parser;
  }

  async #serialize(sql: string): Promise<{ text: string; parsed: Parsed | ParseError }> {
    return this.#use(async (conn) => {
      const reader = await conn.runAndReadAll('SELECT json_serialize_sql($sql::VARCHAR) AS tree', { sql });
      const text = String(reader.getRowObjectsJS()[0]?.['tree']);
      return { text, parsed: JSON.parse(text) as Parsed | ParseError };
    });
  }

  async #render(tree: string): Promise<string> {
    return this.#use(async (conn) => {
      const reader = await conn.runAndReadAll('SELECT json_deserialize_sql(json($tree::VARCHAR)) AS sql', { tree });
      return String(reader.getRowObjectsJS()[0]?.['sql']);
    });
  }

  async #statementCount(sql: string): Promise<number | undefined> {
    return this.#use(async (conn) => (await conn.extractStatements(sql)).count).catch(() => undefined);
  }

  async #denied(): Promise<ReadonlySet<string>> {
    return (await this.#open()).denied;
  }

  /** Why the parser gave no tree: a syntax error, or a statement that is not a query. */
  async #unparsed(sql: string, error: ParseError, place: Place): Promise<Error> {
    if (error.error_type === 'parser') {
      const line = error.position !== undefined ? lineAtByte(sql, Number(error.position)) : undefined;
      return tenantSqlInvalid({ ...place, line }, `DuckDB cannot parse it: ${error.error_message ?? 'syntax error'}`);
    }
    const count = await this.#statementCount(sql);
    if (count !== undefined && count > 1) return tenantSqlRefused(place, `holds ${count} statements; tenant SQL is exactly one query`);
    const first = leadingWord(sql);
    const line = first ? lineAtChar(sql, first.offset) : undefined;
    return tenantSqlRefused(
      { ...place, line },
      `found ${first ? `${article(first.word)} ${first.word} statement` : 'a statement'}, not a query`,
    );
  }

  /**
   * Checks one query (DuckDB dialect, `$name` parameters) and returns the text to run: DuckDB's
   * restatement of the checked tree, itself checked again.
   */
  async check(sql: string, scope: QueryScope): Promise<CheckedQuery> {
    const dataset = asciiLower(assertIdentifier('dataset', scope.dataset));
    const ctx: PolicyContext = {
      dataset,
      params: new Set([...scope.params].map(asciiLower)),
      deniedFunctions: await this.#denied(),
    };
    const place: Place = { origin: scope.origin };
    const first = await this.#judge(sql, ctx, place);
    const restated = await this.#render(first.text);
    // The restatement is what runs, so it is what must pass; it always should.
    const second = await this.#judge(restated, ctx, place);
    return { sql: restated, tables: second.tables, params: second.params };
  }

  async #judge(sql: string, ctx: PolicyContext, place: Place) {
    const { text, parsed } = await this.#serialize(sql);
    if (parsed.error) throw await this.#unparsed(sql, parsed, place);
    const statements = parsed.statements;
    if (statements.length !== 1) {
      const at = statements.length > 1 ? firstLocation(statements[1]!) : undefined;
      throw tenantSqlRefused(
        { ...place, line: at !== undefined ? lineAtByte(sql, at) : undefined },
        statements.length === 0 ? 'holds no statement' : `holds ${statements.length} statements; tenant SQL is exactly one query`,
      );
    }
    const report = inspect(statements[0]!['node'] ?? null, ctx);
    const violation = report.violations[0];
    if (violation) {
      // Some nodes (parameters, DESCRIBE) carry no position: name the line the statement starts on.
      const at = violation.location ?? firstLocation(statements[0]!) ?? 0;
      throw tenantSqlRefused({ ...place, line: lineAtByte(sql, at) }, violation.reason);
    }
    return { text, tables: report.tables, params: report.params };
  }

  /**
   * Checks a DQ expression as the statement `SELECT (<expr>) FROM <dataset>.<table>` and returns
   * DuckDB's restatement of the expression alone, proven to parse back to the same tree.
   */
  async checkExpression(expr: string, scope: TenantExpressionScope): Promise<string> {
    const dataset = assertIdentifier('dataset', scope.dataset);
    const table = assertIdentifier('table', scope.table);
    const place: Place = { origin: scope.origin };
    const refuse = (reason: string) => tenantSqlRefused(place, reason, { expression: true });
    const text = expr.trim();
    if (text === '') throw refuse('is empty');
    if (text.length > MAX_EXPRESSION_LENGTH) throw refuse(`is longer than ${MAX_EXPRESSION_LENGTH} characters`);
    const ctx: PolicyContext = { dataset: asciiLower(dataset), params: new Set(), deniedFunctions: await this.#denied(), expression: true };

    const probe = async (candidate: string) => {
      // Newlines keep a trailing line comment of the tenant's away from our closing parenthesis.
      const { text: tree, parsed } = await this.#serialize(`SELECT (\n${candidate}\n) FROM "${dataset}"."${table}"`);
      if (parsed.error) {
        if (parsed.error_type === 'parser') {
          throw tenantSqlInvalid(place, `DuckDB cannot parse it: ${parsed.error_message ?? 'syntax error'}`, { expression: true });
        }
        throw refuse('is not one expression (it holds a statement of its own)');
      }
      const node = parsed.statements.length === 1 ? expressionOf(parsed.statements[0]!, dataset, table) : undefined;
      if (!node) throw refuse('is not one expression (it closes its parentheses and goes on)');
      const violation = inspect(node, ctx).violations[0];
      if (violation) throw refuse(violation.reason);
      return { tree, node };
    };

    const checked = await probe(text);
    // Render the expression alone: the checked statement with its FROM emptied is "SELECT <expr>".
    const statement = (lossless(checked.tree) as { statements: Array<{ node: Record<string, unknown> }> }).statements[0]!;
    statement.node['from_table'] = { type: 'EMPTY', alias: '', sample: null, query_location: 0 };
    const rendered = await this.#render(JSON.stringify({ error: false, statements: [statement] }));
    const restated = rendered.startsWith('SELECT ') ? rendered.slice('SELECT '.length) : undefined;
    const again = restated === undefined ? undefined : await probe(restated).catch(() => undefined);
    const same = again && JSON.stringify(withoutLocations(again.node)) === JSON.stringify(withoutLocations(checked.node));
    // Our placeholder translation must leave the restated text alone, or it would bind our values.
    if (!same || translatePlaceholders(restated!).names.length > 0) {
      throw refuse('cannot be restated exactly by DuckDB; write it more simply');
    }
    return restated!;
  }

  /** Closes the parser once the checks in flight are done; a later check opens it again. */
  async close(): Promise<void> {
    const parser = this.#parser;
    this.#parser = undefined;
    await this.#queue;
    const open = await parser?.catch(() => undefined);
    open?.conn.closeSync();
    open?.instance.closeSync();
  }
}
