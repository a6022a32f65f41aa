import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../../lib/errors.ts';
import { isInside } from '../../lib/paths.ts';
import type { ServiceContext } from '../context.ts';
import { collectSiteModel } from './collect.ts';
import type { SiteFiles, SiteModel } from './model.ts';
import { layoutLineage, type LaidOutGraph } from './render/graph.ts';
import { layoutLineageOffThread } from './render/layout-thread.ts';
import { renderSite } from './render/index.ts';

/** Written into every generated site: a folder holding it may be replaced by the next generation. */
export const SITE_MARKER = '.convergence-site';

export interface GeneratedSite {
  model: SiteModel;
  files: SiteFiles;
}

/**
 * The site of one tenant, in memory: read from configs and metadata (nothing is written anywhere);
 * exit 8 for an unknown tenant. The lineage is laid out as soon as it is known, beside the
 * metadata reads: on this thread for a one-off generation, or (`offThread`, for servers) on a
 * kept worker thread, so requests meanwhile are not stalled and later layouts start warm.
 */
export async function generateSite(ctx: ServiceContext, tenantId: string, options: { offThread?: boolean } = {}): Promise<GeneratedSite> {
  let layout: Promise<LaidOutGraph> | undefined;
  const model = await collectSiteModel(ctx, tenantId, {
    onLineage: (graph) => {
      layout = options.offThread ? layoutLineageOffThread(graph) : layoutLineage(graph);
      layout.catch(() => undefined);
    },
  });
  const files = await renderSite(model, layout);
  files.set(SITE_MARKER, `${JSON.stringify({ tenant_id: tenantId, env: model.env, generated_at: model.generatedAt })}\n`);
  return { model, files };
}

export interface PublishedSite {
  tenantId: string;
  env: string;
  /** The site folder, absolute. */
  dir: string;
  /** Its index.html, absolute. */
  index: string;
  files: number;
  pipelines: number;
  tables: number;
  lineageNodes: number;
  lineageEdges: number;
  /** Runs charted over all pipeline pages. */
  runsCharted: number;
  problems: string[];
  ms: number;
}

/** `docs generate`: the tenant's site written to `outDir` (default docs/<tenant> of the workspace). */
export async function publishSite(
  ctx: ServiceContext,
  tenantId: string,
  options: { outDir?: string; onProgress?(message: string): void } = {},
): Promise<PublishedSite> {
  const started = Date.now();
  options.onProgress?.(`reading configs and ${ctx.env.name} metadata`);
  const { model, files } = await generateSite(ctx, tenantId);
  const target = options.outDir ?? defaultSiteDir(ctx.workspace.root, tenantId);
  options.onProgress?.(`writing ${files.size} files`);
  const dir = await writeSite(ctx.workspace.root, target, files);
  return {
    tenantId,
    env: model.env,
    dir,
    index: path.join(dir, 'index.html'),
    files: files.size,
    pipelines: model.pipelines.length,
    tables: model.tables.length,
    lineageNodes: model.lineage.nodes.length,
    lineageEdges: model.lineage.edges.length,
    runsCharted: model.pipelines.reduce((sum, p) => sum + p.runs.length, 0),
    problems: model.problems,
    ms: Date.now() - started,
  };
}

/** `docs/<tenant>` under the workspace: where the site goes when --out is not given. */
const defaultSiteDir = (root: string, tenantId: string) => path.join(root, 'docs', tenantId);

/**
 * Writes the site to `outDir` whole or not at all: the files go to a fresh sibling folder that
 * then takes the place of the old site. A folder that is not an earlier site (no marker) is
 * never replaced, and the workspace's own folders are refused.
 */
export async function writeSite(root: string, outDir: string, files: SiteFiles): Promise<string> {
  const out = path.resolve(outDir);
  await refuseUnsafeTarget(root, out);
  const parent = path.dirname(out);
  await mkdir(parent, { recursive: true });
  const suffix = randomBytes(4).toString('hex');
  const fresh = path.join(parent, `.${path.basename(out)}.new-${suffix}`);
  const old = path.join(parent, `.${path.basename(out)}.old-${suffix}`);
  try {
    for (const [relative, content] of files) {
      const file = path.join(fresh, relative);
      if (!isInside(file, fresh)) throw new Error(`site file ${relative} lies outside the site`);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
    }
    const existed = await exists(out);
    if (existed) await rename(out, old);
    await rename(fresh, out);
    if (existed) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw err;
  }
  return out;
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** The target, its links resolved, must not be (or hold) the workspace, its configs or its state. */
async function refuseUnsafeTarget(root: string, out: string): Promise<void> {
  const workspace = await realpath(root);
  const target = await resolveExisting(out);
  const guarded = ['configs', 'data', '.convergence'].map((folder) => path.join(workspace, folder));
  if (isInside(workspace, target) || guarded.some((folder) => isInside(target, folder))) {
    throw usageError(`--out ${out} would overwrite the workspace or its configs, data or state`, {
      suggestion: 'pass a folder of its own, e.g. --out docs/<tenant> (the default)',
    });
  }
  if (!(await exists(out))) return;
  const stat = await lstat(out);
  const marked = stat.isDirectory() && (await readFile(path.join(out, SITE_MARKER), 'utf8').catch(() => null)) !== null;
  if (!marked) {
    throw usageError(`--out ${out} exists and is not a site made by \`convergence docs generate\`; it is left as it is`, {
      suggestion: 'pass a new folder with --out, or remove that one',
    });
  }
}

/** The real path of `file`, or of its nearest existing ancestor with the rest appended. */
async function resolveExisting(file: string): Promise<string> {
  const missing: string[] = [];
  let current = file;
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return file;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}
