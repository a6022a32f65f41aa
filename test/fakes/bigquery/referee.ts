/**
 * The referee: every statement that reaches the fake over REST is first analyzed by ZetaSQL (the
 * GoogleSQL front end BigQuery uses) against a catalog of the fake's own tables, so SQL that DuckDB
 * would run but BigQuery would refuse fails here as it would there: 400 invalidQuery with the
 * analyzer's message. The fake's internal SQL is never analyzed.
 */
import { invalidQuery } from './errors.ts';
import { buildCatalog, parameterType, scalarType, type CatalogConstant, type CatalogTable, type ParameterType } from './catalog.ts';
import { stripComments } from './translate.ts';
import { sharedAnalyzer, type ZetaSqlAnalyzer } from './zetasql.ts';

/**
 * BigQuery's GoogleSQL, on top of the features of the analyzer's current language version: its
 * types (NUMERIC, BIGNUMERIC, JSON, GEOGRAPHY, INTERVAL, RANGE, parameterized STRING(n)/NUMERIC(p, s)),
 * JSON functions, named arguments (PARSE_JSON(wide_number_mode => ...)), analytic functions,
 * UPDATE ... FROM, ROLLUP and GROUPING SETS, collation, and its DDL (PARTITION BY, CLUSTER BY, NOT NULL,
 * OPTIONS on columns, CREATE TABLE LIKE/COPY/CLONE, snapshots, ALTER COLUMN SET DATA TYPE, RENAME COLUMN).
 */
const BIGQUERY_FEATURES = [
  'FEATURE_ANALYTIC_FUNCTIONS',
  'FEATURE_TABLESAMPLE',
  'FEATURE_DML_UPDATE_WITH_JOIN',
  'FEATURE_TABLE_VALUED_FUNCTIONS',
  'FEATURE_CREATE_AGGREGATE_FUNCTION',
  'FEATURE_CREATE_TABLE_FUNCTION',
  'FEATURE_TEMPLATE_FUNCTIONS',
  'FEATURE_GROUP_BY_ROLLUP',
  'FEATURE_V_1_4_GROUPING_SETS',
  'FEATURE_V_1_4_GROUPING_BUILTIN',
  'FEATURE_CREATE_TABLE_PARTITION_BY',
  'FEATURE_CREATE_TABLE_CLUSTER_BY',
  'FEATURE_CREATE_MATERIALIZED_VIEW_PARTITION_BY',
  'FEATURE_CREATE_MATERIALIZED_VIEW_CLUSTER_BY',
  'FEATURE_CREATE_TABLE_NOT_NULL',
  'FEATURE_CREATE_TABLE_FIELD_ANNOTATIONS',
  'FEATURE_CREATE_TABLE_AS_SELECT_COLUMN_LIST',
  'FEATURE_CREATE_TABLE_LIKE',
  'FEATURE_CREATE_TABLE_COPY',
  'FEATURE_CREATE_TABLE_CLONE',
  'FEATURE_CREATE_SNAPSHOT_TABLE',
  'FEATURE_CREATE_EXTERNAL_TABLE_WITH_PARTITION_COLUMNS',
  'FEATURE_CREATE_EXTERNAL_TABLE_WITH_CONNECTION',
  'FEATURE_CREATE_VIEW_WITH_COLUMN_LIST',
  'FEATURE_ALTER_COLUMN_SET_DATA_TYPE',
  'FEATURE_ALTER_TABLE_RENAME_COLUMN',
  'FEATURE_UNENFORCED_PRIMARY_KEYS',
  'FEATURE_FOREIGN_KEYS',
  'FEATURE_NUMERIC_TYPE',
  'FEATURE_BIGNUMERIC_TYPE',
  'FEATURE_PARAMETERIZED_TYPES',
  'FEATURE_GEOGRAPHY',
  'FEATURE_INTERVAL_TYPE',
  'FEATURE_RANGE_TYPE',
  'FEATURE_JSON_TYPE',
  'FEATURE_JSON_ARRAY_FUNCTIONS',
  'FEATURE_JSON_VALUE_EXTRACTION_FUNCTIONS',
  'FEATURE_JSON_LAX_VALUE_EXTRACTION_FUNCTIONS',
  'FEATURE_JSON_CONSTRUCTOR_FUNCTIONS',
  'FEATURE_JSON_MUTATOR_FUNCTIONS',
  'FEATURE_NAMED_ARGUMENTS',
  'FEATURE_FUNCTION_ARGUMENTS_WITH_DEFAULTS',
  'FEATURE_ROUND_WITH_ROUNDING_MODE',
  'FEATURE_INVERSE_TRIG_FUNCTIONS',
  'FEATURE_CBRT_FUNCTIONS',
  'FEATURE_V_1_3_COLLATION_SUPPORT',
];

/** In the analyzer's current version but not in BigQuery: DML THEN RETURN, generated columns, WITH(...) expressions, slash paths. */
const NOT_BIGQUERY = new Set([
  'FEATURE_V_1_3_DML_RETURNING',
  'FEATURE_V_1_2_GENERATED_COLUMNS',
  'FEATURE_V_1_4_WITH_EXPRESSION',
  'FEATURE_V_1_3_ALLOW_SLASH_PATHS',
  'FEATURE_V_1_3_KLL_WEIGHTS',
]);

/** A DECLARE the engine accepts: names, a type, an optional default. */
const DECLARE = /^DECLARE\s+([A-Za-z_][\w\s,]*?)\s+([A-Za-z0-9_]+(?:\s*\([\d,\s]+\))?)(?:\s+DEFAULT\s+([\s\S]+))?$/i;
const SET = /^SET\s+[A-Za-z_]\w*\s*=\s*([\s\S]+)$/i;
const ASSERT = /^ASSERT\s+([\s\S]+?)(?:\s+AS\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))?$/i;
const TRANSACTION_CONTROL = /^(BEGIN|COMMIT|ROLLBACK)(\s+TRANSACTION)?$/i;

/** Statements analyzed and refused in this process, printed when it exits. */
const tally = { analyzed: 0, refused: 0 };

export function refereeTally(): Readonly<typeof tally> {
  return tally;
}

process.once('exit', () => {
  if (tally.analyzed > 0) process.stderr.write(`# zetasql referee: analyzed ${tally.analyzed} statements (${tally.refused} refused)\n`);
});

interface QueryParameterSpec {
  name?: string;
  parameterType?: ParameterType;
}

type Proto = Record<string, unknown>;

/**
 * The analyzer, its BigQuery language options, and the catalogs registered: jobs run at once, so
 * a catalog stays registered while any analysis uses it, and the latest one stays for the next.
 */
class Session {
  readonly analyzer: ZetaSqlAnalyzer;
  readonly languageOptions: Proto;
  readonly #catalogs = new Map<string, { id: Promise<string>; users: number }>();
  #latestKey = '';

  constructor(analyzer: ZetaSqlAnalyzer, languageOptions: Proto) {
    this.analyzer = analyzer;
    this.languageOptions = languageOptions;
  }

  static async open(analyzer: ZetaSqlAnalyzer): Promise<Session> {
    const current = await analyzer.call<{ enabled_language_features: string[] }>('getLanguageOptions', {
      maximum_features: true,
      language_version: 'VERSION_CURRENT',
    });
    const features = [...current.enabled_language_features, ...BIGQUERY_FEATURES].filter((f) => !NOT_BIGQUERY.has(f));
    return new Session(analyzer, {
      ...current,
      enabled_language_features: [...new Set(features)],
      product_mode: 'PRODUCT_EXTERNAL',
      // Empty: every statement kind the analyzer knows; BigQuery's are a subset it resolves.
      supported_statement_kinds: [],
    });
  }

  /** Runs `work` with the registered id of this catalog, registering it when it is new. */
  async withCatalog<T>(catalog: Proto, work: (registeredId: string) => Promise<T>): Promise<T> {
    const key = JSON.stringify(catalog);
    let entry = this.#catalogs.get(key);
    if (!entry) {
      const id = this.analyzer
        .call<{ registered_id: string }>('registerCatalog', { simple_catalog: catalog })
        .then((registered) => registered.registered_id);
      entry = { id, users: 0 };
      this.#catalogs.set(key, entry);
      id.catch(() => this.#catalogs.delete(key));
    }
    this.#latestKey = key;
    entry.users++;
    try {
      return await work(await entry.id);
    } finally {
      entry.users--;
      this.#dropUnused();
    }
  }

  /** Unregisters the catalogs no analysis uses, but the latest. */
  #dropUnused(): void {
    for (const [key, entry] of this.#catalogs) {
      if (entry.users > 0 || key === this.#latestKey) continue;
      this.#catalogs.delete(key);
      void entry.id.then((id) => this.analyzer.call('unregisterCatalog', { registered_id: id })).catch(() => undefined);
    }
  }
}

let session: Promise<Session | undefined> | undefined;

function sharedSession(): Promise<Session | undefined> {
  session ??= sharedAnalyzer().then((analyzer) => (analyzer ? Session.open(analyzer) : undefined));
  return session;
}

export class Referee {
  readonly #project: string;
  readonly #tables: () => Promise<CatalogTable[]>;

  /** `tables`: the fake's tables as they are now, temporary ones included. */
  constructor(project: string, tables: () => Promise<CatalogTable[]>) {
    this.#project = project;
    this.#tables = tables;
  }

  /**
   * A referee for one query job: its parameters typed, its script variables tracked as they are
   * declared, and its external tables (`tableDefinitions`, temporary tables of the job) given BigQuery's
   * `_FILE_NAME` pseudo-column.
   */
  script(parameters: QueryParameterSpec[] | undefined, parameterMode: string | undefined, externalTables: string[] = []): ScriptReferee {
    const positional = String(parameterMode ?? '').toUpperCase() === 'POSITIONAL';
    const typed = (parameters ?? []).map((p) => ({ name: String(p.name ?? '').toLowerCase(), type: parameterType(p.parameterType) }));
    const parameterOptions = positional
      ? { parameter_mode: 'PARAMETER_POSITIONAL', positional_query_parameters: typed.map((p) => p.type) }
      : { parameter_mode: 'PARAMETER_NAMED', query_parameters: typed };
    const external = new Set(externalTables.map((name) => name.toLowerCase()));
    const tables = async () =>
      (await this.#tables()).map((t) =>
        t.dataset === undefined && external.has(t.table.toLowerCase())
          ? { ...t, pseudoColumns: [{ name: '_FILE_NAME', type: 'STRING' }] }
          : t,
      );
    return new ScriptReferee(this.#project, tables, parameterOptions);
  }
}

class ScriptReferee {
  readonly #project: string;
  readonly #tables: () => Promise<CatalogTable[]>;
  readonly #parameterOptions: Proto;
  readonly #variables: CatalogConstant[] = [];

  constructor(project: string, tables: () => Promise<CatalogTable[]>, parameterOptions: Proto) {
    this.#project = project;
    this.#tables = tables;
    this.#parameterOptions = parameterOptions;
  }

  /**
   * Analyzes one statement of a script as BigQuery would before running it. Script control
   * statements are not statements the analyzer resolves: their expressions are analyzed as
   * `SELECT <expr>` in the same scope, and a DECLARE adds its variables for what follows.
   */
  async statement(statement: string): Promise<void> {
    // Script control is recognised without comments; a statement is analyzed as sent (a `--` may sit in a string).
    const sql = stripComments(statement).trim();
    if (TRANSACTION_CONTROL.test(sql)) return;
    const declare = DECLARE.exec(sql);
    if (declare) {
      const type = scalarType(declare[2]!);
      // The default's coercion to the declared type is left to the engine, which evaluates it.
      if (declare[3]) await this.#analyze(`SELECT (${declare[3]})`);
      for (const name of declare[1]!.split(',')) this.#variables.push({ name: name.trim(), type });
      return;
    }
    const expression = SET.exec(sql)?.[1] ?? ASSERT.exec(sql)?.[1];
    if (expression !== undefined) {
      await this.#analyze(`SELECT (${expression})`);
      return;
    }
    await this.#analyze(statement);
  }

  async #analyze(sql: string): Promise<void> {
    const current = await sharedSession();
    if (!current) return;
    const catalog = buildCatalog(this.#project, await this.#tables(), this.#variables, { language_options: current.languageOptions });
    tally.analyzed++;
    try {
      await current.withCatalog(catalog, (registeredId) =>
        current.analyzer.call('analyze', {
          options: {
            language_options: current.languageOptions,
            ...this.#parameterOptions,
            system_variables: [{ name_path: ['row_count'], type: { type_kind: 'TYPE_INT64' } }],
            error_message_mode: 'ERROR_MESSAGE_ONE_LINE',
          },
          registered_catalog_id: registeredId,
          sql_statement: sql,
        }),
      );
    } catch (err) {
      const message = (err as { details?: string }).details;
      if (message === undefined) throw err;
      // A missing table is BigQuery's 404 with the dataset's location; the engine answers that one.
      if (/^Table not found: /.test(message)) return;
      tally.refused++;
      throw invalidQuery(message);
    }
  }
}
