import { mapWithLimit } from '../../lib/concurrency.ts';
import { redactCredentials } from '../../lib/redaction.ts';
import type { ServiceContext } from '../context.ts';
import { loadBundle, loadPushedBundle, type PipelineBundle } from '../pipelines/bundle.ts';
import { describeFailure, listConfigFiles, readTenantText } from '../pipelines/files.ts';
import { activePushedConfigs, type PushedConfig } from '../pipelines/push.ts';

/** One pipeline as the site shows it: parsed when it could be, else the reason it could not. */
export interface ReadPipeline {
  pipelineId: string;
  /** `configs/<tenant>/pipelines/<id>.yml`, or null when the pipeline exists only pushed. */
  file: string | null;
  /** `workspace`, or the pushed version the bundle came from. */
  configFrom: string;
  /** The pipeline file's text, credential-looking values masked; null when unreadable. */
  yaml: string | null;
  bundle: PipelineBundle | null;
  /** The first lines of why the bundle could not be read, masked as the text is. */
  error: string | null;
}

/** Pipelines read at once. */
const CONCURRENT_READS = 8;

/** Lines of a failure kept on a page: enough for a validation report, not a whole stack of them. */
const ERROR_LINES = 10;

const pipelineIdOf = (file: string) => file.replace(/^pipelines\//, '').replace(/\.ya?ml$/, '');

function failureText(err: unknown): string {
  return redactCredentials(describeFailure(err)).split('\n').slice(0, ERROR_LINES).join('\n');
}

/**
 * The pipelines of a tenant as `pipeline list` combines them: the workspace file when there is
 * one, else the active pushed config of this environment. Sorted by pipeline id.
 */
export async function readPipelines(ctx: ServiceContext, tenantId: string): Promise<ReadPipeline[]> {
  const pushed = await activePushedConfigs(ctx, tenantId);
  const files = await listConfigFiles(ctx.workspace.root, tenantId, 'pipeline');
  for (const relative of files) pushed.delete(pipelineIdOf(relative));
  // Reading is mostly waiting on small files: a few at a time overlap the waits.
  const read = [
    ...(await mapWithLimit(files, CONCURRENT_READS, (relative) =>
      readWorkspacePipeline(ctx.workspace.root, tenantId, relative, pipelineIdOf(relative)),
    )),
    ...(await mapWithLimit([...pushed.values()], CONCURRENT_READS, (config) => readPushedPipeline(tenantId, config))),
  ];
  return read.sort((a, b) => (a.pipelineId < b.pipelineId ? -1 : a.pipelineId > b.pipelineId ? 1 : 0));
}

async function readWorkspacePipeline(root: string, tenantId: string, relative: string, pipelineId: string): Promise<ReadPipeline> {
  const text = await readTenantText(root, tenantId, relative).catch(() => null);
  const page = {
    pipelineId,
    file: `configs/${tenantId}/${relative}`,
    configFrom: 'workspace',
    yaml: text === null ? null : redactCredentials(text),
  };
  try {
    return { ...page, bundle: await loadBundle(root, tenantId, pipelineId), error: null };
  } catch (err) {
    return { ...page, bundle: null, error: failureText(err) };
  }
}

async function readPushedPipeline(tenantId: string, config: PushedConfig): Promise<ReadPipeline> {
  const pipelineFile = Object.keys(config.files).find((f) => f.startsWith('pipelines/') && pipelineIdOf(f) === config.pipelineId);
  const text = pipelineFile === undefined ? undefined : config.files[pipelineFile];
  const page = {
    pipelineId: config.pipelineId,
    file: null,
    configFrom: config.version,
    yaml: text === undefined ? null : redactCredentials(text),
  };
  if (pipelineFile === undefined) {
    return { ...page, bundle: null, error: `pushed config ${config.version} of ${config.pipelineId} has no pipeline file` };
  }
  try {
    return { ...page, bundle: await loadPushedBundle(tenantId, pipelineFile, config.files, config.version), error: null };
  } catch (err) {
    return { ...page, bundle: null, error: failureText(err) };
  }
}
