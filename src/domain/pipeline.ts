import { z } from 'zod';
import { DURATION_PATTERN } from '../lib/duration.ts';
import { IDENTIFIER_PATTERN, NAME_PATTERN } from './ids.ts';
import { notificationsSchema } from './notifications.ts';
import { systemTableUse } from './table-names.ts';

/**
 * Schemas of the tenant YAML files (DESIGN "Pipelines"). Unknown keys are errors, so a typo such
 * as `merge_key:` is reported at its line instead of silently ignored.
 */
const name = z.string().regex(NAME_PATTERN, 'expected a name of letters, digits, "_" or "-" starting with a letter');
const identifier = z.string().regex(IDENTIFIER_PATTERN, 'expected letters, digits and "_" (not starting with a digit)');
const duration = z.string().regex(DURATION_PATTERN, 'expected a duration like 30s, 10m, 1h or 2d');
/** Paths inside the tenant folder: relative, no `..`, so a config cannot read outside it. */
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), 'expected a path relative to the tenant folder, without ".."');
const severity = z.enum(['error', 'warn']).default('error');
const onFailure = z.enum(['stop', 'continue']).default('stop');

const TABLE_WRITE_MODES = ['append', 'replace', 'merge'] as const;
/** An ingest lands rows, so it writes a table; `view` is named in the error because it is the likely slip. */
const tableWriteMode = z.enum(TABLE_WRITE_MODES, {
  error: (issue) =>
    issue.input === 'view' ? 'write_mode view is for transforms: an ingest lands rows in a table (append, replace or merge)' : undefined,
});
/** `view`: CREATE OR REPLACE VIEW of the transform's SQL instead of a table write. */
const transformWriteMode = z.enum([...TABLE_WRITE_MODES, 'view']);

const destinationFields = {
  table: identifier,
  merge_keys: z.array(identifier).nonempty().optional(),
  partition_by: identifier.optional(),
  cluster_by: z.array(identifier).max(4, 'BigQuery clusters on at most 4 columns').optional(),
  schema: relativePath.optional(),
};

interface DestinationInput {
  table: string;
  write_mode: string;
  merge_keys?: string[];
  partition_by?: string;
  cluster_by?: string[];
  schema?: string;
}

function destinationIssues(d: DestinationInput, ctx: z.RefinementCtx) {
  if (d.write_mode === 'merge' && !d.merge_keys) {
    ctx.addIssue({
      code: 'custom',
      path: ['merge_keys'],
      message: 'write_mode merge needs merge_keys (the columns that identify a row)',
    });
  }
  if (d.write_mode !== 'merge' && d.merge_keys) {
    ctx.addIssue({
      code: 'custom',
      path: ['merge_keys'],
      message: `merge_keys only applies to write_mode merge (this is ${d.write_mode})`,
    });
  }
  if (d.write_mode === 'view') viewDestinationIssues(d, ctx);
}

const tableDestinationSchema = z
  .object({ ...destinationFields, write_mode: tableWriteMode.default('append') })
  .strict()
  .superRefine(destinationIssues);
const transformDestinationSchema = z
  .object({ ...destinationFields, write_mode: transformWriteMode.default('append') })
  .strict()
  .superRefine(destinationIssues);

/** A view stores a query, not rows: table options have nothing to act on, and system names are not its to take. */
function viewDestinationIssues(d: DestinationInput, ctx: z.RefinementCtx) {
  for (const key of ['partition_by', 'cluster_by', 'schema'] as const) {
    if (d[key] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to tables; a view (write_mode view) stores a query, not rows` });
    }
  }
  const reserved = systemTableUse(d.table);
  if (reserved) ctx.addIssue({ code: 'custom', path: ['table'], message: `a view cannot be named ${d.table}: ${reserved}` });
}

const ruleBase = { name: name.optional(), severity };
const validRegex = z.string().refine((p) => {
  try {
    new RegExp(p);
    return true;
  } catch {
    return false;
  }
}, 'expected a valid regular expression');

export const ruleSchema = z.discriminatedUnion('check', [
  z.object({ ...ruleBase, check: z.literal('not_null'), columns: z.array(identifier).nonempty() }).strict(),
  z.object({ ...ruleBase, check: z.literal('unique'), columns: z.array(identifier).nonempty() }).strict(),
  z
    .object({ ...ruleBase, check: z.literal('range'), column: identifier, min: z.number().optional(), max: z.number().optional() })
    .strict()
    .refine((r) => r.min !== undefined || r.max !== undefined, 'range needs min, max or both'),
  z
    .object({
      ...ruleBase,
      check: z.literal('accepted_values'),
      column: identifier,
      values: z.array(z.union([z.string(), z.number(), z.boolean()])).nonempty(),
    })
    .strict(),
  z.object({ ...ruleBase, check: z.literal('regex'), column: identifier, pattern: validRegex }).strict(),
  z
    .object({
      ...ruleBase,
      check: z.literal('row_count'),
      min: z.number().int().min(0).optional(),
      max: z.number().int().min(0).optional(),
    })
    .strict()
    .refine((r) => r.min !== undefined || r.max !== undefined, 'row_count needs min, max or both'),
  z.object({ ...ruleBase, check: z.literal('freshness'), column: identifier, max_age: duration }).strict(),
  z.object({ ...ruleBase, check: z.literal('expression'), expr: z.string().min(1) }).strict(),
]);

const stepBase = { name, on_failure: onFailure };
const stepSchema = z.discriminatedUnion('type', [
  z.object({ ...stepBase, type: z.literal('ingest'), source_config: relativePath, destination: tableDestinationSchema }).strict(),
  z.object({ ...stepBase, type: z.literal('dq'), table: identifier, rules: z.array(ruleSchema).nonempty() }).strict(),
  z.object({ ...stepBase, type: z.literal('transform'), sql: relativePath, destination: transformDestinationSchema }).strict(),
]);

export const pipelineSchema = z
  .object({
    pipeline_id: name,
    description: z.string().optional(),
    schedule: z
      .object({ cron: z.string().min(9), timezone: z.string().default('UTC') })
      .strict()
      .optional(),
    timeout: duration.default('1h'),
    params: z.record(identifier, z.string()).optional(),
    /** Replaces the environment's notification targets for this pipeline's runs. */
    notifications: notificationsSchema.optional(),
    steps: z.array(stepSchema).nonempty(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Map<string, number>();
    p.steps.forEach((step, index) => {
      const first = seen.get(step.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', index, 'name'],
          message: `duplicate step name "${step.name}" (also step ${first + 1})`,
        });
      }
      seen.set(step.name, index);
    });
  });

const secretRef = z.string().regex(NAME_PATTERN, 'expected a secret name');
/**
 * A URL that receives credentials: https, or http for a local endpoint the operator lists in
 * rest_sources.private_hosts (validate and the run refuse any other http one; the schema cannot
 * see the environment).
 */
const credentialUrl = z
  .string()
  .url('expected an https URL')
  .refine((u) => /^https?:\/\//i.test(u), 'expected an https URL: credentials are never sent in clear text');
const authSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bearer'), secret: secretRef }).strict(),
  z.object({ type: z.literal('header'), name: z.string().min(1), secret: secretRef }).strict(),
  /**
   * `username` + `secret` (the password), or `username_secret` (the secret is the user name,
   * as Cursor's Admin API takes its key) with an optional `secret` password (empty when absent).
   */
  z
    .object({
      type: z.literal('basic'),
      username: z.string().min(1).optional(),
      username_secret: secretRef.optional(),
      secret: secretRef.optional(),
    })
    .strict(),
  /** OAuth 2.0 client credentials grant (RFC 6749 4.4): the token is cached and fetched again before it expires. */
  z
    .object({
      type: z.literal('oauth2_client_credentials'),
      token_url: credentialUrl,
      client_id: z.string().min(1),
      client_secret: secretRef,
      scope: z.string().min(1).optional(),
      audience: z.string().min(1).optional(),
      /**
       * How the client authenticates to the token endpoint: `basic` (the default, RFC 6749 2.3.1)
       * or `post` (client_id and client_secret in the form body), for providers whose client
       * setting asks for it (Auth0 and PingOne enforce the method configured per application).
       */
      client_auth: z.enum(['basic', 'post']).optional(),
    })
    .strict(),
  /**
   * A Google identity through google-auth-library: the service-account key JSON kept as the
   * tenant's secret `key_secret`, else the environment's application default credentials (only
   * where the operator allows it). Tokens go only to https Google API hosts.
   */
  z
    .object({
      type: z.literal('google'),
      key_secret: secretRef.optional(),
      scopes: z.array(z.string().url('expected an OAuth scope URL')).nonempty(),
    })
    .strict(),
]);

/** A query parameter: a scalar (numbers and booleans as YAML writes them), or a list sent as the key repeated. */
const paramScalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const paramValue = z.union([paramScalar, z.array(paramScalar).nonempty()]);

/** A JSON request body as YAML writes it; its strings are templated like params. */
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

/**
 * Consecutive half-open date windows [window_start, window_end) of `size`, from `from` (a
 * template, by default the committed cursor or `incremental.initial`) to `to` (`run_date`, `now`
 * or a template). Each window is fetched and loaded with its own cursor commit.
 */
const windowsSchema = z
  .object({
    size: duration,
    from: z.string().min(1).default('{{ cursor }}'),
    to: z.string().min(1).default('run_date'),
  })
  .strict();

/** `data`, `data.items`, `data[*].results[*]`: dotted keys, `[*]` flattening an array level. */
const RECORDS_PATH = /^[^.[\]]+(\[\*\])?(\.[^.[\]]+(\[\*\])?)*$/;

const paginationSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cursor'), cursor_path: z.string().min(1), param: z.string().min(1) }).strict(),
  z
    .object({
      type: z.literal('page_number'),
      param: z.string().min(1),
      start: z.number().int().default(1),
      page_size_param: z.string().optional(),
      page_size: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({ type: z.literal('offset'), param: z.string().min(1), limit_param: z.string().min(1), limit: z.number().int().positive() })
    .strict(),
  z.object({ type: z.literal('link_header') }).strict(),
  z.object({ type: z.literal('next_url'), next_url_path: z.string().min(1) }).strict(),
  z.object({ type: z.literal('none') }).strict(),
]);

const incrementalSchema = z.object({ cursor_field: identifier, initial: z.string().optional() }).strict();

interface RestSourceInput {
  method: string;
  body?: unknown;
  auth?: { type: string; username?: string; username_secret?: string; secret?: string };
  records_path?: string;
  include_parent?: Record<string, string>;
  windows?: unknown;
  incremental?: unknown;
}

/** Rules between keys of a rest_api source, each reported at the key to change. */
function restSourceIssues(s: RestSourceInput, ctx: z.RefinementCtx) {
  const issue = (path: Array<string | number>, message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (s.body !== undefined && s.method !== 'POST') issue(['body'], 'body is sent with method: POST only');
  if (s.auth?.type === 'basic') {
    if (s.auth.username === undefined && s.auth.username_secret === undefined)
      issue(['auth'], 'basic auth needs username (with secret, the password) or username_secret');
    if (s.auth.username !== undefined && s.auth.username_secret !== undefined)
      issue(['auth', 'username_secret'], 'basic auth takes username or username_secret, not both');
    if (s.auth.username !== undefined && s.auth.secret === undefined)
      issue(['auth', 'secret'], 'basic auth with username needs secret (the name of the password secret)');
  }
  if (s.include_parent && !(s.records_path?.includes('[*].') ?? false))
    issue(['include_parent'], 'include_parent needs a records_path that reaches into nested arrays, such as data[*].results[*]');
  if (s.windows !== undefined && s.incremental === undefined)
    issue(['windows'], 'windows need incremental: { cursor_field, initial } (the committed cursor is where the next window starts)');
}

export const sourceSchema = z.discriminatedUnion('type', [
  z
    .object({
      source_id: name,
      type: z.literal('rest_api'),
      url: z.string().url('expected an http(s) URL'),
      method: z.enum(['GET', 'POST']).default('GET'),
      params: z.record(z.string(), paramValue).optional(),
      headers: z.record(z.string(), z.string()).optional(),
      /** JSON body of a POST. */
      body: z.union([z.record(z.string(), jsonValue), z.array(jsonValue)]).optional(),
      auth: authSchema.optional(),
      pagination: paginationSchema.default({ type: 'none' }),
      records_path: z.string().regex(RECORDS_PATH, 'expected a dotted path such as data or data[*].results[*]').optional(),
      /** Columns copied into each record from the array element holding it: { column: path in that element }. */
      include_parent: z.record(identifier, z.string().min(1)).optional(),
      /** `rows_with_header`: records are arrays, the first one of the response names the columns. */
      records_format: z.enum(['objects', 'rows_with_header']).default('objects'),
      windows: windowsSchema.optional(),
      rate_limit: z.object({ requests_per_second: z.number().positive() }).strict().optional(),
      retry: z
        .object({ max_attempts: z.number().int().min(1).max(20).default(5) })
        .strict()
        .optional(),
      timeout: duration.optional(),
      incremental: incrementalSchema.optional(),
      schema: relativePath.optional(),
    })
    .strict()
    .superRefine(restSourceIssues),
  z
    .object({
      source_id: name,
      type: z.literal('file'),
      path: z.string().min(1),
      format: z.enum(['csv', 'ndjson', 'parquet']),
      csv: z
        .object({ delimiter: z.string().length(1).default(','), has_header: z.boolean().default(true) })
        .strict()
        .optional(),
      incremental: incrementalSchema.optional(),
      schema: relativePath.optional(),
    })
    .strict(),
]);

/** A BigQuery JSON schema file: an array of fields. */
export const tableSchemaFileSchema = z
  .array(
    z
      .object({
        name: identifier,
        type: z.enum([
          'STRING',
          'INT64',
          'INTEGER',
          'FLOAT64',
          'FLOAT',
          'NUMERIC',
          'BOOL',
          'BOOLEAN',
          'TIMESTAMP',
          'DATE',
          'JSON',
          'BYTES',
        ]),
        mode: z.enum(['NULLABLE', 'REQUIRED']).default('NULLABLE'),
        description: z.string().optional(),
      })
      .strict(),
  )
  .nonempty();

export type PipelineConfig = z.infer<typeof pipelineSchema>;
export type PipelineStep = z.infer<typeof stepSchema>;
export type DqRule = z.infer<typeof ruleSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type TableSchemaFile = z.infer<typeof tableSchemaFileSchema>;
