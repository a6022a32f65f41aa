/**
 * A workspace on the cloud fakes with the demo's gs:// file pipeline pushed, as an operator sets
 * one up for remote runs: the `cloud` environment (its file_roots admit the tenant's prefix of the
 * exports bucket) with a pipeline job, the demo installed, its exports uploaded to the GCS fake,
 * metadata bootstrapped in BigQuery, the tenant created, p_usage_daily_gcs pushed and the Run job
 * created. The local-path p_usage_daily cannot be pushed there: its runs would find no files.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { EXAMPLE_TENANT, exampleGcsVariant, installExample } from '../../src/services/example.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { CLOUD_DATA_BUCKET, createRunJob, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from './context.ts';

/** The Cloud Run job that runs the cloud environment's pipelines. */
export const CLOUD_JOB = 'convergence-pipeline-cloud';

export interface CloudDemo {
  fakes: CloudFakes;
  root: string;
  tenantId: string;
  /** The pushed gs:// variant of the demo's file pipeline. */
  pipelineId: string;
  /** Its pipeline file in the workspace, for tests that change it and push again. */
  pipelineFile: string;
  /** Pushes the pipeline as the workspace holds it now, to the cloud environment. */
  push(): Promise<void>;
}

export interface CloudDemoOptions {
  /** More convergence.yaml text after the cloud environment (e.g. another environment). */
  moreYaml?: string;
  /** Rewrites the pipeline file before the first push (e.g. to declare a parameter). */
  editPipeline?: (text: string) => string;
}

/** Starts the cloud fakes (pointing this process at them) and sets up the workspace; `fakes.stop()` ends both. */
export async function cloudDemoWorkspace(label: string, options: CloudDemoOptions = {}): Promise<CloudDemo> {
  const fakes = await startCloudFakes({ pointProcess: true });
  try {
    return await setUp(fakes, label, options);
  } catch (err) {
    // The caller never gets the fakes to stop when setting up fails.
    await fakes.stop();
    throw err;
  }
}

async function setUp(fakes: CloudFakes, label: string, options: CloudDemoOptions): Promise<CloudDemo> {
  const root = await newWorkspace(label);
  await appendFile(path.join(root, 'convergence.yaml'), `${fakes.yaml('cloud')}    job: ${CLOUD_JOB}\n${options.moreYaml ?? ''}`);
  await installExample(root);
  const { pipelineId, objects, fileRoot } = await exampleGcsVariant(root, CLOUD_DATA_BUCKET);
  assert.ok(fakes.yaml().includes(fileRoot), `the cloud environment lists ${fileRoot} under file_roots`);
  for (const [name, csv] of Object.entries(objects)) fakes.gcs.putObject(CLOUD_DATA_BUCKET, name, csv, 'text/csv');

  const pipelineFile = path.join(root, 'configs', EXAMPLE_TENANT, 'pipelines', `${pipelineId}.yml`);
  if (options.editPipeline) await writeFile(pipelineFile, options.editPipeline(await readFile(pipelineFile, 'utf8')));
  const push = () =>
    withContext(root, async (ctx) => void (await pushPipelines(ctx, { tenantId: EXAMPLE_TENANT, pipelineId })), { env: 'cloud' });

  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'ACME', plan: 'scale' });
    },
    { env: 'cloud' },
  );
  await push();
  await createRunJob(fakes, CLOUD_JOB);
  return { fakes, root, tenantId: EXAMPLE_TENANT, pipelineId, pipelineFile, push };
}
