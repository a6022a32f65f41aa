import { chmod, cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dayAfter, toCsv, usageRecords } from './example-data.ts';

/** The demo tenant of `init --example`: an AI usage analytics pipeline in the spirit of the seeds. */
export const EXAMPLE_TENANT = 'acme_corp';
const EXAMPLE_DAYS = 7;
const EXAMPLE_ROWS_PER_DAY = 300;
/** The bearer token the demo usage API (scripts/demo-usage-api.mjs) accepts; not a real secret. */
export const EXAMPLE_API_TOKEN = 'demo-usage-token';
/** Where the demo usage API listens (scripts/demo-usage-api.mjs): the local environment of `init --example` lets REST sources reach it. */
export const EXAMPLE_API_HOST = '127.0.0.1:8787';

const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/ai-usage/', import.meta.url));

/**
 * Copies the example configs into configs/acme_corp/ and writes a week of usage exports to
 * data/acme_corp/, with two rows that cannot be typed (they land in raw_usage__quarantine) and
 * one implausible cost (a data-quality warning). Never overwrites a file that exists.
 */
export async function installExample(root: string): Promise<{ created: string[]; kept: string[] }> {
  const created: string[] = [];
  const kept: string[] = [];
  const writeNew = async (relative: string, content: string, mode = 0o644) => {
    const full = path.join(root, relative);
    await mkdir(path.dirname(full), { recursive: true, mode: mode === 0o600 ? 0o700 : 0o755 });
    try {
      await writeFile(full, content, { flag: 'wx', mode });
      await chmod(full, mode);
      created.push(relative);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      kept.push(relative);
    }
  };

  const tenantDir = path.join('configs', EXAMPLE_TENANT);
  for (const folder of await readdir(EXAMPLE_DIR)) {
    for (const file of await readdir(path.join(EXAMPLE_DIR, folder))) {
      const relative = path.join(tenantDir, folder, file);
      const full = path.join(root, relative);
      await mkdir(path.dirname(full), { recursive: true });
      try {
        await cp(path.join(EXAMPLE_DIR, folder, file), full, { errorOnExist: true, force: false });
        created.push(relative);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ERR_FS_CP_EEXIST') throw err;
        kept.push(relative);
      }
    }
  }
  await writeNew(path.join(tenantDir, 'secrets', 'usage_api_token.txt'), EXAMPLE_API_TOKEN, 0o600);

  for (const [name, csv] of Object.entries(exampleUsageExports())) await writeNew(path.join('data', EXAMPLE_TENANT, name), csv);
  return { created, kept };
}

/** The week of usage exports, by file name: the same bytes locally and in the gs:// variant. */
function exampleUsageExports(): Record<string, string> {
  const exports: Record<string, string> = {};
  for (let d = 0; d < EXAMPLE_DAYS; d++) {
    const day = dayAfter('2025-01-01', d);
    let csv = toCsv(usageRecords(day, EXAMPLE_ROWS_PER_DAY));
    if (d === 2) csv += `bad_${day}_1,${day},openai,gpt-4.1,user03@acme.example,n/a,120,0.01\n`;
    if (d === 4) csv += `bad_${day}_2,2025-13-01,anthropic,claude-haiku-4,user07@acme.example,900,80,0.002\n`;
    if (d === 5) csv += `odd_${day}_3,${day},cursor,cursor-small,user01@acme.example,1000,100,250\n`;
    exports[`usage_${day}.csv`] = csv;
  }
  return exports;
}

/**
 * The example's file pipeline reading its exports from Cloud Storage instead of data/acme_corp/,
 * as a Google Cloud environment needs (its jobs see no workspace files): the source
 * `sources/usage_files_gcs.yml` (gs://<bucket>/acme_corp/usage/usage_*.csv) and the pipeline
 * `p_usage_daily_gcs`, the same steps as p_usage_daily. `objects` are what to upload, by object
 * name (`gcloud storage cp data/acme_corp/usage_*.csv gs://<bucket>/acme_corp/usage/`);
 * `fileRoot` is the file_roots entry that lets each tenant read its own prefix of the bucket.
 */
export async function exampleGcsVariant(
  root: string,
  bucket: string,
): Promise<{ pipelineId: string; objects: Record<string, string>; fileRoot: string }> {
  const tenantDir = path.join(root, 'configs', EXAMPLE_TENANT);
  const source = await readFile(path.join(EXAMPLE_DIR, 'sources', 'usage_files.yml'), 'utf8');
  const pipeline = await readFile(path.join(EXAMPLE_DIR, 'pipelines', 'p_usage_daily.yml'), 'utf8');
  await mkdir(path.join(tenantDir, 'sources'), { recursive: true });
  await mkdir(path.join(tenantDir, 'pipelines'), { recursive: true });
  await writeFile(
    path.join(tenantDir, 'sources', 'usage_files_gcs.yml'),
    source
      .replace(/^source_id: .*$/m, 'source_id: usage_files_gcs')
      .replace(/^path: .*$/m, `path: gs://${bucket}/${EXAMPLE_TENANT}/usage/usage_*.csv # the exports, uploaded to Cloud Storage`),
  );
  await writeFile(
    path.join(tenantDir, 'pipelines', 'p_usage_daily_gcs.yml'),
    pipeline
      .replace(/^pipeline_id: .*$/m, 'pipeline_id: p_usage_daily_gcs')
      .replace('source_config: sources/usage_files.yml', 'source_config: sources/usage_files_gcs.yml'),
  );
  const objects = Object.fromEntries(Object.entries(exampleUsageExports()).map(([name, csv]) => [`${EXAMPLE_TENANT}/usage/${name}`, csv]));
  return { pipelineId: 'p_usage_daily_gcs', objects, fileRoot: `gs://${bucket}/{tenant}/` };
}
