import type { SourceConfig } from '../../domain/pipeline.ts';
import { parseDuration } from '../../lib/duration.ts';
import { validationError } from '../../lib/errors.ts';
import { rememberSecret, userinfoSecrets } from '../../lib/redaction.ts';
import { NO_SPECIAL_ACCESS, resolveRestAuth } from '../sources/rest/auth/index.ts';
import { restSecretNames } from '../sources/rest/secret-names.ts';
import type { RestSourceConfig } from '../sources/rest/types.ts';
import type { StagedData } from '../staging/staged-data.ts';
import { renderJson, renderText } from '../template.ts';
import { sourceFile, type IngestStep } from './ingest-load.ts';
import type { StepEnv } from './types.ts';

type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;

/** The request config of a REST source for one set of template variables (a window's, or the run's). */
export type RestConfigFor = (variables: Record<string, string>) => RestSourceConfig;

/**
 * The request config of a REST source: url, params, headers and body rendered (variables, filters
 * and `{{ secret() }}`), auth resolved once for every window. Every secret value that goes into a
 * request is listed in `secrets`, so the client redacts it from everything it reports, and
 * remembered process-wide, so the places that record run errors and logs redact it too.
 */
export async function restConfig(
  env: StepEnv,
  step: IngestStep,
  source: RestSource,
  first: Record<string, string>,
): Promise<RestConfigFor> {
  const file = sourceFile(env, step);
  const secrets = new Map<string, string>();
  const resolve = async (name: string) => {
    const value = secrets.get(name) ?? (await env.secret(name));
    secrets.set(name, value);
    rememberSecret(value);
    return value;
  };
  // Every secret the source names (auth, url, params, headers, body), resolved before any rendering.
  for (const { name } of restSecretNames(source)) await resolve(name);
  const templateInput = (variables: Record<string, string>) => ({ file, variables, secret: (n: string) => secrets.get(n)! });
  const renderWith = (variables: Record<string, string>) => (text: string) => renderText(text, templateInput(variables));
  const auth = source.auth
    ? await resolveRestAuth(source.auth, {
        secret: resolve,
        url: renderWith(first)(source.url),
        access: env.restSources ?? NO_SPECIAL_ACCESS,
        signal: env.signal,
        onSecret: rememberSecret,
      })
    : undefined;
  for (const value of userinfoSecrets(source.url)) rememberSecret(value);
  return (variables) => {
    const renderOne = renderWith(variables);
    const render = (values: Record<string, string> | undefined) =>
      values ? Object.fromEntries(Object.entries(values).map(([k, v]) => [k, renderOne(v)])) : undefined;
    const renderParams = (values: Record<string, string | string[]> | undefined) =>
      values
        ? Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v.map(renderOne) : renderOne(v)]))
        : undefined;
    const params = renderParams(source.params);
    const headers = render(source.headers);
    const body = source.body === undefined ? undefined : renderJson(source.body, templateInput(variables));
    const url = renderOne(source.url);
    // Checked here so that the parser's own error, which carries the URL and so its secrets, never surfaces.
    if (!URL.canParse(url)) throw validationError(`${file}: url is not a valid absolute URL once its templates are rendered`);
    return {
      url,
      method: source.method,
      pagination: source.pagination,
      secrets: [...secrets.values()],
      ...(env.restSources?.privateHosts.length ? { private_hosts: env.restSources.privateHosts } : {}),
      ...(params ? { params } : {}),
      ...(headers ? { headers } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(auth ? { auth } : {}),
      ...(source.records_path ? { records_path: source.records_path } : {}),
      ...(source.include_parent ? { include_parent: source.include_parent } : {}),
      ...(source.records_format !== 'objects' ? { records_format: source.records_format } : {}),
      ...(source.rate_limit ? { rate_limit: source.rate_limit } : {}),
      ...(source.retry ? { retry: { max_attempts: source.retry.max_attempts } } : {}),
      ...(source.timeout ? { timeout_ms: parseDuration(source.timeout, 'timeout') } : {}),
    };
  };
}

/** Where a REST source's rows came from, for messages: origin and path, no query, no userinfo, no secret. */
function restSourceLabel(config: RestSourceConfig, redactor: { redact(text: string): string }): string {
  const url = new URL(config.url);
  return redactor.redact(url.origin + url.pathname);
}

/** How one fetch of a REST source is staged: where, under which progress label, with which cursor column. */
export interface RestStaging {
  stagingDir: string;
  /** Prefix of the page progress messages (a window's "window 3/12 2025-03-01..2025-03-31"). */
  label?: string;
  /** The column whose greatest value becomes the cursor (sources without windows). */
  cursorField?: string;
  /** The step's row count for a count of this fetch's staged rows (windows add up). */
  onRows?: (rows: number) => number;
}

/** Fetches every page of one request config and stages its records; errors and warnings leave redacted. */
export async function stageRest(env: StepEnv, step: IngestStep, config: RestSourceConfig, staging: RestStaging): Promise<StagedData> {
  const source = env.source(step.source_config);
  const tableSchema = env.schema(source.schema ?? step.destination.schema);
  const [{ fetchPages, sourceRedactor }, { stageRecords }] = await Promise.all([
    import('../sources/rest/client.ts'),
    import('../staging/records.ts'),
  ]);
  const redactor = sourceRedactor(config);
  let pages = 0;
  async function* batches() {
    for await (const page of fetchPages(config, { signal: env.signal })) {
      pages++;
      env.progress({ message: staging.label ? `${staging.label}, page ${pages}` : `page ${pages}` });
      yield page.records as Array<Record<string, unknown>>;
    }
  }
  const onProgress: StepEnv['progress'] = (update) =>
    env.progress(update.rows !== undefined && staging.onRows ? { ...update, rows: staging.onRows(update.rows) } : update);
  const staged = stageRecords(batches(), {
    stagingDir: staging.stagingDir,
    sourceLabel: restSourceLabel(config, redactor),
    ...(tableSchema ? { tableSchema } : {}),
    ...(staging.cursorField ? { incremental: { cursorField: staging.cursorField } } : {}),
    signal: env.signal,
    onProgress,
  });
  // What staging reports (warnings, errors) may quote the API's answer, which may echo the request.
  return staged.then(
    (result) => (result.warnings ? { ...result, warnings: result.warnings.map((w) => redactor.redact(w)) } : result),
    (error: unknown) => {
      throw redactor.redactError(error);
    },
  );
}
