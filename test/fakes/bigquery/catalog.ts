/**
 * What the ZetaSQL analyzer needs to know about the fake's warehouse, as ZetaSQL protos: column
 * types (TypeProto) from BigQuery schemas and type names, and a catalog (SimpleCatalogProto) that
 * resolves `dataset.table`, `project.dataset.table` and a script's temporary tables by bare name.
 */
import type { Field } from './values.ts';

type TypeProto =
  | { type_kind: string }
  | { type_kind: 'TYPE_ARRAY'; array_type: { element_type: TypeProto } }
  | { type_kind: 'TYPE_STRUCT'; struct_type: { field: Array<{ field_name: string; field_type: TypeProto }> } };

/** BigQuery's scalar type names (standard and legacy spellings) and their ZetaSQL kinds. */
const SCALAR_KINDS: Record<string, string> = {
  STRING: 'TYPE_STRING',
  BYTES: 'TYPE_BYTES',
  INT64: 'TYPE_INT64',
  INTEGER: 'TYPE_INT64',
  INT: 'TYPE_INT64',
  SMALLINT: 'TYPE_INT64',
  BIGINT: 'TYPE_INT64',
  TINYINT: 'TYPE_INT64',
  BYTEINT: 'TYPE_INT64',
  FLOAT64: 'TYPE_DOUBLE',
  FLOAT: 'TYPE_DOUBLE',
  NUMERIC: 'TYPE_NUMERIC',
  DECIMAL: 'TYPE_NUMERIC',
  BIGNUMERIC: 'TYPE_BIGNUMERIC',
  BIGDECIMAL: 'TYPE_BIGNUMERIC',
  BOOL: 'TYPE_BOOL',
  BOOLEAN: 'TYPE_BOOL',
  TIMESTAMP: 'TYPE_TIMESTAMP',
  DATE: 'TYPE_DATE',
  TIME: 'TYPE_TIME',
  DATETIME: 'TYPE_DATETIME',
  GEOGRAPHY: 'TYPE_GEOGRAPHY',
  JSON: 'TYPE_JSON',
  INTERVAL: 'TYPE_INTERVAL',
};

/** A BigQuery type name (`INT64`, `NUMERIC(10, 2)`, `STRING(20)`) as a TypeProto. */
export function scalarType(name: string): TypeProto {
  const base = name
    .replace(/\(.*\)$/s, '')
    .trim()
    .toUpperCase();
  const kind = SCALAR_KINDS[base];
  if (!kind) throw new Error(`The ZetaSQL referee does not know the BigQuery type ${name}`);
  return { type_kind: kind };
}

/** A table column as BigQuery describes it: RECORD fields become a STRUCT, REPEATED an ARRAY. */
function fieldType(field: Pick<Field, 'type' | 'mode' | 'fields'>): TypeProto {
  const upper = field.type.toUpperCase();
  const element: TypeProto =
    upper === 'RECORD' || upper === 'STRUCT'
      ? {
          type_kind: 'TYPE_STRUCT',
          struct_type: { field: (field.fields ?? []).map((f) => ({ field_name: f.name, field_type: fieldType(f) })) },
        }
      : scalarType(upper);
  return field.mode === 'REPEATED' ? { type_kind: 'TYPE_ARRAY', array_type: { element_type: element } } : element;
}

/** A query parameter's type as the REST API gives it (queryParameters[].parameterType). */
export interface ParameterType {
  type?: string;
  arrayType?: ParameterType;
  structTypes?: Array<{ name?: string; type?: ParameterType }>;
}

export function parameterType(type: ParameterType | undefined): TypeProto {
  const name = String(type?.type ?? 'STRING').toUpperCase();
  if (name === 'ARRAY') return { type_kind: 'TYPE_ARRAY', array_type: { element_type: parameterType(type?.arrayType) } };
  if (name === 'STRUCT' || name === 'RECORD') {
    return {
      type_kind: 'TYPE_STRUCT',
      struct_type: { field: (type?.structTypes ?? []).map((f) => ({ field_name: f.name ?? '', field_type: parameterType(f.type) })) },
    };
  }
  return scalarType(name);
}

export interface CatalogTable {
  /** Undefined for a script's temporary table, which is named bare. */
  dataset?: string;
  table: string;
  fields: Array<Pick<Field, 'name' | 'type' | 'mode' | 'fields'>>;
  /** Columns a query can name but `SELECT *` does not return, e.g. an external table's `_FILE_NAME`. */
  pseudoColumns?: Array<Pick<Field, 'name' | 'type'>>;
}

export interface CatalogConstant {
  name: string;
  type: TypeProto;
}

/**
 * The catalog of one project: a sub-catalog per dataset (so `ds.t` resolves), the same datasets
 * under a catalog named after the project (so `project.ds.t` does), temporary tables at the top
 * level, and a script's variables as named constants (a column of the same name wins, as in BigQuery).
 */
export function buildCatalog(
  project: string,
  tables: CatalogTable[],
  constants: CatalogConstant[],
  builtinFunctionOptions: unknown,
): Record<string, unknown> {
  const simpleTable = (t: CatalogTable) => ({
    name: t.table,
    full_name: t.dataset ? `${project}.${t.dataset}.${t.table}` : t.table,
    column: [
      ...t.fields.map((f) => ({ name: f.name, type: fieldType(f) })),
      ...(t.pseudoColumns ?? []).map((f) => ({ name: f.name, type: fieldType(f), is_pseudo_column: true })),
    ],
  });
  const datasets = new Map<string, CatalogTable[]>();
  for (const t of tables) if (t.dataset !== undefined) datasets.set(t.dataset, [...(datasets.get(t.dataset) ?? []), t]);
  const datasetCatalogs = [...datasets].map(([name, members]) => ({ name, table: members.map(simpleTable) }));
  // BigQuery splits a quoted path at its dots (`ds.t`, `project.ds.t`); ZetaSQL looks such a path up as one name.
  const quotedPaths = tables
    .filter((t) => t.dataset !== undefined)
    .flatMap((t) => [`${t.dataset}.${t.table}`, `${project}.${t.dataset}.${t.table}`].map((name) => ({ ...simpleTable(t), name })));
  return {
    name: project,
    table: [...tables.filter((t) => t.dataset === undefined).map(simpleTable), ...quotedPaths],
    catalog: [...datasetCatalogs, { name: project, catalog: datasetCatalogs }],
    constant: constants.map((c) => ({ name_path: [c.name], type: c.type, value: {} })),
    builtin_function_options: builtinFunctionOptions,
  };
}
