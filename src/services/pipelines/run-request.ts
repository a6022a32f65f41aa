import { resolveRunDate } from '../../domain/dates.ts';
import { templateNames } from '../../engine/template.ts';
import { usageError } from '../../lib/errors.ts';
import type { PipelineBundle } from './bundle.ts';

/**
 * The container overrides that carry what a remote run was asked for. They are env values (the
 * parameters as one JSON object), never argv: parameter values are tenant input and must not be
 * able to turn into flags of `convergence job run-pipeline`.
 */
const RUN_REQUEST_ENV = {
  runDate: 'CONVERGENCE_RUN_DATE',
  params: 'CONVERGENCE_PARAMS',
  fullRefresh: 'CONVERGENCE_FULL_REFRESH',
} as const;

/** Variables every run sets itself (step-env.ts, the REST cursor and windows): a --param cannot replace them. */
const RUN_VARIABLES = new Set(['run_date', 'run_id', 'tenant_id', 'pipeline_id', 'env', 'cursor', 'window_start', 'window_end']);
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** As the API accepts them (POST /api/v1/pipelines/run parameters). */
const MAX_PARAM_VALUE = 1000;
const MAX_PARAMS = 50;

export interface RunRequest {
  params: Record<string, string>;
  runDate: string;
  fullRefresh: boolean;
}

/**
 * Refuses (exit 2) parameters the pipeline does not take: a name that is neither declared in its
 * `params` nor used as {{ name }} in one of its files would be silently ignored by the run.
 */
export function assertRunParams(bundle: PipelineBundle, params: Record<string, string>): void {
  const accepted = new Set(Object.keys(bundle.pipeline.params ?? {}));
  for (const text of Object.values(bundle.files)) for (const name of templateNames(text).variables) accepted.add(name);
  for (const name of RUN_VARIABLES) accepted.delete(name);
  const names = Object.keys(params);
  if (names.length > MAX_PARAMS) throw usageError(`at most ${MAX_PARAMS} parameters can be passed, not ${names.length}`);
  for (const name of names) {
    if (RUN_VARIABLES.has(name)) {
      throw usageError(`parameter "${name}" is set by the run itself and cannot be passed`, {
        suggestion: name === 'run_date' ? 'pass it as --run-date YYYY-MM-DD' : `drop ${name}`,
      });
    }
    if (!PARAM_NAME.test(name) || !accepted.has(name)) {
      throw usageError(`pipeline ${bundle.pipeline.pipeline_id} takes no parameter ${JSON.stringify(name)}`, {
        suggestion: accepted.size
          ? `it takes: ${[...accepted].sort().join(', ')}`
          : 'it takes none: declare it under `params:` in the pipeline (or use {{ name }}) and push it again',
      });
    }
    const value = params[name];
    if (typeof value !== 'string' || value.length > MAX_PARAM_VALUE) {
      throw usageError(`parameter ${name} must be text of at most ${MAX_PARAM_VALUE} characters`);
    }
  }
}

/** The env overrides of a run request (see RUN_REQUEST_ENV). */
export function runRequestEnv(request: RunRequest): Record<string, string> {
  return {
    [RUN_REQUEST_ENV.runDate]: request.runDate,
    [RUN_REQUEST_ENV.params]: JSON.stringify(request.params),
    [RUN_REQUEST_ENV.fullRefresh]: String(request.fullRefresh),
  };
}

/** What a container was asked to run with, read back from its env (exit 2 when it is malformed). */
export function readRunRequestEnv(env: NodeJS.ProcessEnv): Partial<RunRequest> {
  const out: Partial<RunRequest> = {};
  const runDate = env[RUN_REQUEST_ENV.runDate];
  if (runDate) out.runDate = resolveRunDate(runDate, new Date());
  const params = env[RUN_REQUEST_ENV.params];
  if (params) out.params = parseParamsJson(params);
  const fullRefresh = env[RUN_REQUEST_ENV.fullRefresh];
  if (fullRefresh) {
    if (fullRefresh !== 'true' && fullRefresh !== 'false') {
      throw usageError(`${RUN_REQUEST_ENV.fullRefresh} must be true or false, not ${JSON.stringify(fullRefresh)}`);
    }
    out.fullRefresh = fullRefresh === 'true';
  }
  return out;
}

function parseParamsJson(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const valid =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.entries(parsed).every(([name, value]) => PARAM_NAME.test(name) && typeof value === 'string');
  if (!valid) {
    throw usageError(`${RUN_REQUEST_ENV.params} must be a JSON object of name → text`, { suggestion: `e.g. {"region":"eu"}` });
  }
  return parsed as Record<string, string>;
}
