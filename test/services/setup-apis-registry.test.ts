/** setup's `apis` and `registry` steps against the Service Usage and Artifact Registry fakes, through the official clients. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cloudEnv } from '../../src/backends/factory.ts';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { setupNames } from '../../src/services/setup/names.ts';
import type { SetupContext } from '../../src/services/setup/step.ts';
import { apisStep, REQUIRED_APIS } from '../../src/services/setup/steps/apis.ts';
import { registryStep } from '../../src/services/setup/steps/registry.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { ARTIFACT_REGISTRY_PERMISSIONS } from '../fakes/grpc/artifact-registry.ts';
import { SERVICE_USAGE_PERMISSIONS } from '../fakes/grpc/service-usage.ts';
import { newWorkspace, withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const REGION = 'us-central1';
const DEFAULT_REGISTRY = `projects/${CLOUD_PROJECT}/locations/${REGION}/repositories/convergence`;

let fakes: CloudFakes;
let root: string;

/** An environment of the fakes' project, with an `image` setting when given (it names the registry). */
async function addEnv(name: string, image?: string): Promise<void> {
  const lines = fakes.yaml(name).trimEnd().split('\n');
  if (image) lines.push(`    image: ${image}`);
  await appendFile(path.join(root, 'convergence.yaml'), `${lines.join('\n')}\n`);
}

function setupContext(ctx: TestContext): SetupContext {
  const env = cloudEnv(ctx.env)!;
  return { ctx, env, project: CLOUD_PROJECT, names: setupNames(env, CLOUD_PROJECT) };
}

const inSetup = <T>(env: string, work: (setup: SetupContext) => Promise<T>) => withContext(root, (ctx) => work(setupContext(ctx)), { env });

async function expectExit(
  promise: Promise<unknown>,
  exitCode: number,
): Promise<Error & { suggestion?: string; data?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode, err.message);
    return err as never;
  }
  assert.fail(`expected exit ${exitCode}, it succeeded`);
}

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('setup-apis-registry');
  await addEnv('staging');
  await addEnv('maven', `${REGION}-docker.pkg.dev/${CLOUD_PROJECT}/java-packages/convergence:1`);
  await addEnv('denied', `${REGION}-docker.pkg.dev/${CLOUD_PROJECT}/not-allowed/convergence:1`);
  await addEnv('raced', `${REGION}-docker.pkg.dev/${CLOUD_PROJECT}/raced/convergence:1`);
});

after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

describe('setup step apis', () => {
  it('plans every required API on an empty project, and writes nothing while planning', async () => {
    const changes = await inSetup('staging', (setup) => apisStep.plan(setup));
    assert.deepEqual(
      changes.map((change) => change.resource),
      REQUIRED_APIS.map((api) => `projects/${CLOUD_PROJECT}/services/${api}`),
    );
    assert.ok(changes.every((change) => change.action === 'enable' && change.detail.startsWith('enable ')));
    assert.equal(fakes.grpc.calls('BatchEnableServices').length, 0);
    assert.equal(REQUIRED_APIS.length, 15);
  });

  it('a half-enabled project plans only the rest; a refused enable is exit 7 naming the permission and role; the rerun finishes', async () => {
    fakes.serviceUsage.enableNow(CLOUD_PROJECT, REQUIRED_APIS.slice(0, 5));
    const changes = await inSetup('staging', (setup) => apisStep.plan(setup));
    assert.deepEqual(
      changes.map((change) => change.detail),
      REQUIRED_APIS.slice(5).map((api) => `enable ${api}`),
    );

    fakes.serviceUsage.grant(undefined, [SERVICE_USAGE_PERMISSIONS.get, SERVICE_USAGE_PERMISSIONS.list]);
    const err = await expectExit(
      inSetup('staging', (setup) => apisStep.apply(setup, changes)),
      7,
    );
    assert.match(err.message, /Permission denied to enable service/);
    assert.match(err.suggestion ?? '', /roles\/serviceusage\.serviceUsageAdmin/);
    assert.match(err.suggestion ?? '', /serviceusage\.services\.enable/);

    fakes.serviceUsage.grant(undefined, Object.values(SERVICE_USAGE_PERMISSIONS));
    const again = await inSetup('staging', (setup) => apisStep.plan(setup));
    assert.deepEqual(again, changes);
    await inSetup('staging', (setup) => apisStep.apply(setup, again));
    assert.deepEqual(await inSetup('staging', (setup) => apisStep.plan(setup)), []);
    assert.ok(REQUIRED_APIS.every((api) => fakes.serviceUsage.isEnabled(CLOUD_PROJECT, api)));
  });

  it('applying the same changes twice is harmless, and an empty plan applies without a call', async () => {
    const changes = REQUIRED_APIS.slice(0, 3).map((api) => ({
      action: 'enable' as const,
      resource: `projects/${CLOUD_PROJECT}/services/${api}`,
      detail: `enable ${api}`,
    }));
    await inSetup('staging', (setup) => apisStep.apply(setup, changes));
    const calls = fakes.grpc.calls('BatchEnableServices').length;
    await inSetup('staging', (setup) => apisStep.apply(setup, []));
    assert.equal(fakes.grpc.calls('BatchEnableServices').length, calls);
  });
});

describe('setup step registry', () => {
  it('plans the Docker repository where none is, creates it with a description, then plans nothing', async () => {
    const changes = await inSetup('staging', (setup) => registryStep.plan(setup));
    assert.deepEqual(changes, [{ action: 'create', resource: DEFAULT_REGISTRY, detail: 'Docker repository for the product images' }]);
    assert.equal(fakes.grpc.calls('CreateRepository').length, 0);

    await inSetup('staging', (setup) => registryStep.apply(setup, changes));
    const repository = fakes.artifactRegistry.repository(DEFAULT_REGISTRY);
    assert.equal(repository?.format, 'DOCKER');
    assert.match(repository?.description ?? '', /convergence setup/);
    assert.deepEqual(await inSetup('staging', (setup) => registryStep.plan(setup)), []);

    // A rerun with the stale plan (the repository now exists) is harmless.
    await inSetup('staging', (setup) => registryStep.apply(setup, changes));
    assert.equal(fakes.artifactRegistry.repository(DEFAULT_REGISTRY)?.format, 'DOCKER');
  });

  it('the repository `image` names is the one planned', async () => {
    const changes = await inSetup('raced', (setup) => registryStep.plan(setup));
    assert.deepEqual(
      changes.map((change) => change.resource),
      [`projects/${CLOUD_PROJECT}/locations/${REGION}/repositories/raced`],
    );
    // Created by someone else between plan and apply: apply takes it as it is.
    fakes.artifactRegistry.addRepository(changes[0]!.resource, 'DOCKER', 'made by hand');
    await inSetup('raced', (setup) => registryStep.apply(setup, changes));
    assert.equal(fakes.artifactRegistry.repository(changes[0]!.resource)?.description, 'made by hand');
  });

  it('a repository of another format under the wanted name is exit 2 naming it, at plan and at apply', async () => {
    const name = `projects/${CLOUD_PROJECT}/locations/${REGION}/repositories/java-packages`;
    fakes.artifactRegistry.addRepository(name, 'MAVEN');
    const err = await expectExit(
      inSetup('maven', (setup) => registryStep.plan(setup)),
      2,
    );
    assert.match(err.message, new RegExp(`${name} exists but holds MAVEN packages`));
    assert.match(err.suggestion ?? '', /environments\.maven\.image/);

    const stale = [{ action: 'create' as const, resource: name, detail: 'Docker repository for the product images' }];
    await expectExit(
      inSetup('maven', (setup) => registryStep.apply(setup, stale)),
      2,
    );
    assert.equal(fakes.artifactRegistry.repository(name)?.format, 'MAVEN');
  });

  it('a caller who may not create repositories gets exit 7 naming artifactregistry.repositories.create and roles/artifactregistry.admin', async () => {
    const changes = await inSetup('denied', (setup) => registryStep.plan(setup));
    fakes.artifactRegistry.grant(undefined, [ARTIFACT_REGISTRY_PERMISSIONS.get]);
    try {
      const err = await expectExit(
        inSetup('denied', (setup) => registryStep.apply(setup, changes)),
        7,
      );
      assert.match(err.message, /artifactregistry\.repositories\.create/);
      assert.match(err.suggestion ?? '', /grant roles\/artifactregistry\.admin/);
    } finally {
      fakes.artifactRegistry.grant(undefined, Object.values(ARTIFACT_REGISTRY_PERMISSIONS));
    }
    await inSetup('denied', (setup) => registryStep.apply(setup, changes));
    assert.deepEqual(await inSetup('denied', (setup) => registryStep.plan(setup)), []);
  });
});
