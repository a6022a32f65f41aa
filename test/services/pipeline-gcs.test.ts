/**
 * `pipeline validate` and the check before a run on gs:// file sources: gs:// paths are checked
 * for shape (bucket naming rules, one `*`) before anything is listed, and an environment on Google
 * Cloud refuses local paths, whose files its Cloud Run Jobs never see.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { CLOUD_PROJECT } from '../fakes/cloud.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { listFileRoots } from '../helpers/file-roots.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
let root: string;

before(async () => {
  root = await newBootstrappedWorkspace('pipeline-gcs');
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `  cloud:\n    project: ${CLOUD_PROJECT}\n    region: us-central1\n    location: US\n`,
  );
  for (const env of ['local', 'cloud']) await listFileRoots(root, ['gs://acme-usage-exports/{tenant}/'], env);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  await mkdir(path.join(root, 'data', TENANT), { recursive: true });
});
after(cleanupAll);

async function sourceFile(name: string, sourcePath: string): Promise<string> {
  const file = path.join(root, 'configs', TENANT, 'sources', `${name}.yml`);
  await writeFile(file, `source_id: ${name}\ntype: file\npath: ${JSON.stringify(sourcePath)}\nformat: csv\n`);
  return file;
}

const errorsOf = async (file: string, env?: string) =>
  (await withContext(root, (ctx) => validateConfigs(ctx, { file }), env ? { env } : {})).files[0]!.errors;

describe('validate: gs:// paths', () => {
  it('accepts a well-formed bucket and one wildcard, locally and in a cloud environment', async () => {
    const file = await sourceFile('good', `gs://acme-usage-exports/${TENANT}/usage/usage_*.csv`);
    assert.deepEqual(await errorsOf(file), []);
    assert.deepEqual(await errorsOf(file, 'cloud'), []);
  });

  for (const [name, bad, reason] of [
    ['upper', 'gs://Acme_Exports/x.csv', /bucket name "Acme_Exports" may only hold lowercase letters/],
    ['short', 'gs://ab/x.csv', /bucket name "ab" must be 3-63 characters/],
    ['google', 'gs://my-google-data/x.csv', /may not start with "goog" or contain "google"/],
    ['nobject', 'gs://acme-usage-exports', /names no object/],
    ['twostars', 'gs://acme-usage-exports/*/usage_*.csv', /more than one "\*"/],
    ['brackets', 'gs://acme-usage-exports/usage_[0-9].csv', /the only wildcard in a gs:\/\/ pattern is one "\*"/],
  ] as const) {
    it(`refuses ${bad} at the line of path:`, async () => {
      const file = await sourceFile(name, bad);
      const errors = await errorsOf(file);
      assert.equal(errors.length, 1, String(errors));
      assert.match(errors[0]!, new RegExp(`^configs/${TENANT}/sources/${name}\\.yml:3:7: path: `));
      assert.match(errors[0]!, reason);
    });
  }
});

describe('validate: a cloud environment refuses local paths', () => {
  it('names the file and key and says to upload the data to gs://', async () => {
    const file = await sourceFile('local', 'usage_*.csv');
    assert.deepEqual(await errorsOf(file), [], 'the local environment reads data/<tenant>/');
    const [error, ...rest] = await errorsOf(file, 'cloud');
    assert.deepEqual(rest, []);
    assert.match(error!, /^configs\/acme_corp\/sources\/local\.yml:3:7: path: "usage_\*\.csv" is a local path/);
    assert.match(error!, /upload the data to gs:\/\/<bucket>\/\.\.\. .* and point `path:` at it/);
  });
});

describe('run: a malformed gs:// path', () => {
  it('is refused before the run starts (exit 2), with nothing listed', async () => {
    await sourceFile('badrun', 'gs://Bad_Bucket/x_*.csv');
    await writeFile(
      path.join(root, 'configs', TENANT, 'pipelines', 'p_badrun.yml'),
      'pipeline_id: p_badrun\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/badrun.yml, destination: { table: t } }\n',
    );
    await assert.rejects(
      withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_badrun', runDate: '2025-01-31' })),
      (err: { exitCode?: number; message?: string }) => {
        assert.equal(err.exitCode, 2);
        assert.match(err.message ?? '', /badrun\.yml:3:7: path: file source path "gs:\/\/Bad_Bucket\/x_\*\.csv": bucket name/);
        return true;
      },
    );
  });
});
