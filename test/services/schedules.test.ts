/** scheduler setup|list|run|delete against the Cloud Scheduler fake, and the local environment's in-process runs. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CloudSchedulerClient } from '@google-cloud/scheduler';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { runDoctor } from '../../src/services/doctor/index.ts';
import {
  deleteScheduledJob,
  listSchedule,
  OAUTH_SCOPE,
  runScheduledJob,
  scheduledJobName,
  setupSchedule,
} from '../../src/services/schedules/cloud-jobs.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { showQuota } from '../../src/services/quotas.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { CLOUD_PROJECT, createRunJob, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { fakeClientOptions } from '../fakes/grpc/client-options.ts';

const SA = 'convergence-jobs@demo-project.iam.gserviceaccount.com';
const PARENT = `projects/${CLOUD_PROJECT}/locations/us-central1`;
const RUN_URI = `https://run.googleapis.com/v2/projects/${CLOUD_PROJECT}/locations/us-central1/jobs/convergence-job:run`;
const jobName = (env: string, id: string) => `${PARENT}/jobs/convergence-${env}-${id}`;

let fakes: CloudFakes;
let root: string;
let envCounter = 0;

/** A fresh cloud environment per test, so jobs of one test never meet another's. */
async function addEnv(options: { serviceAccount?: string | false } = {}): Promise<string> {
  const name = `cloud${++envCounter}`;
  const lines = [fakes.yaml(name).trimEnd(), '    job: convergence-job'];
  if (options.serviceAccount !== false) lines.push(`    service_account: ${options.serviceAccount ?? SA}`);
  await appendFile(path.join(root, 'convergence.yaml'), `${lines.join('\n')}\n`);
  return name;
}

interface FakeJob {
  schedule: string;
  timeZone: string;
  httpTarget: { uri: string; httpMethod: string; body: Uint8Array; oauthToken: unknown; oidcToken?: unknown } & Record<string, unknown>;
  retryConfig: { retryCount: number; minBackoffDuration: { seconds: string }; maxBackoffDuration: { seconds: string } };
  attemptDeadline: { seconds: string };
}

const bodyOf = (target: Record<string, unknown> | null) => JSON.parse(Buffer.from(target!.body as Uint8Array).toString('utf8'));

async function expectExit(promise: Promise<unknown>, exitCode: number): Promise<Error & { suggestion?: string; data?: unknown }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode, err.message);
    return err as Error & { suggestion?: string };
  }
  assert.fail(`expected exit ${exitCode}, it succeeded`);
}

/** What roles/run.developer gives the scheduler's account on the job: start it, with overrides too. */
const grantRunWithOverrides = (email: string) => fakes.run.grantedTo.set(email, new Set(['run.jobs.run', 'run.jobs.runWithOverrides']));

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('scheduler');
  await createRunJob(fakes, 'convergence-job');
  grantRunWithOverrides(SA);
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

describe('scheduler setup on a cloud environment', () => {
  let env: string;
  beforeEach(async () => {
    env = await addEnv();
  });

  it('creates the three jobs with the Run jobs :run target, OAuth token, body, retries and deadline', async () => {
    const result = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    assert.deepEqual(
      result.jobs.map((j) => [j.id, j.action]),
      [
        ['reset-daily-quotas', 'create'],
        ['cleanup-orphaned-pipelines', 'create'],
        ['dispatch-tenant-pipelines', 'create'],
      ],
    );
    const expected = {
      'reset-daily-quotas': {
        schedule: '0 0 * * *',
        task: 'reset-quotas',
        taskCount: 1,
        retry: 3,
        min: '30',
        max: '3600',
        deadline: '180',
      },
      'cleanup-orphaned-pipelines': {
        schedule: '*/30 * * * *',
        task: 'cleanup-orphans',
        taskCount: 1,
        retry: 2,
        min: '60',
        max: '1800',
        deadline: '300',
      },
      'dispatch-tenant-pipelines': {
        schedule: '*/5 * * * *',
        task: 'dispatch',
        taskCount: 3,
        retry: 1,
        min: '30',
        max: '120',
        deadline: '180',
      },
    };
    for (const [id, want] of Object.entries(expected)) {
      const job = fakes.scheduler.job(jobName(env, id)) as unknown as FakeJob;
      assert.ok(job, `${id} exists`);
      assert.equal(job.schedule, want.schedule);
      assert.equal(job.timeZone, 'UTC');
      assert.equal(job.httpTarget.uri, RUN_URI);
      assert.equal(job.httpTarget.httpMethod, 'POST');
      assert.deepEqual(job.httpTarget.oauthToken, { serviceAccountEmail: SA, scope: OAUTH_SCOPE });
      assert.ok(!job.httpTarget.oidcToken, 'no OIDC token');
      const body = bodyOf(job.httpTarget);
      assert.deepEqual(body.overrides.containerOverrides[0].args, ['job', want.task]);
      assert.equal(body.overrides.taskCount, want.taskCount);
      assert.equal(job.retryConfig.retryCount, want.retry);
      assert.equal(job.retryConfig.minBackoffDuration.seconds, want.min);
      assert.equal(job.retryConfig.maxBackoffDuration.seconds, want.max);
      assert.equal(job.attemptDeadline.seconds, want.deadline);
    }
    assert.ok(expected['dispatch-tenant-pipelines'].taskCount > 1);
  });

  it('changes nothing the second time', async () => {
    await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const updatesBefore = fakes.scheduler.requests('UpdateJob').length;
    const createsBefore = fakes.scheduler.requests('CreateJob').length;
    const second = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    assert.equal(fakes.scheduler.requests('UpdateJob').length, updatesBefore, 'no UpdateJob calls');
    assert.equal(fakes.scheduler.requests('CreateJob').length, createsBefore, 'no CreateJob calls');
    assert.deepEqual([second.created, second.updated, second.unchanged], [0, 0, 3]);
    assert.ok(second.jobs.every((j) => j.changes.length === 0));
  });

  it('updates a changed schedule with a mask of that field only, and prints old → new', async () => {
    await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const name = jobName(env, 'cleanup-orphaned-pipelines');
    const client = new CloudSchedulerClient(fakeClientOptions(fakes.grpc.port));
    try {
      await client.updateJob({ job: { name, schedule: '*/15 * * * *' }, updateMask: { paths: ['schedule'] } });
    } finally {
      await client.close();
    }
    const before = fakes.scheduler.requests('UpdateJob').length;
    const result = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const updates = fakes.scheduler.requests('UpdateJob').slice(before);
    assert.equal(updates.length, 1);
    const request = updates[0]!.request as { job: { name: string }; updateMask: { paths: string[] } };
    assert.equal(request.job.name, name);
    assert.deepEqual(request.updateMask.paths, ['schedule']);
    const changed = result.jobs.find((j) => j.id === 'cleanup-orphaned-pipelines')!;
    assert.equal(changed.action, 'update');
    assert.deepEqual(changed.changes, [{ field: 'schedule', from: '*/15 * * * *', to: '*/30 * * * *' }]);
    assert.equal((fakes.scheduler.job(name) as { schedule: string }).schedule, '*/30 * * * *');
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const writes = () => fakes.scheduler.requests('CreateJob').length + fakes.scheduler.requests('UpdateJob').length;
    const before = writes();
    const result = await withContext(root, (ctx) => setupSchedule(ctx, { dryRun: true }), { env });
    assert.equal(writes(), before);
    assert.equal(result.created, 3);
    assert.ok(result.jobs.every((j) => j.changes.some((c) => c.field === 'schedule' && c.from === null)));
    assert.equal(fakes.scheduler.job(jobName(env, 'reset-daily-quotas')), undefined);
  });
});

describe('scheduler setup refusals', () => {
  it('exits 2 naming the convergence.yaml key when service_account is missing', async () => {
    const env = await addEnv({ serviceAccount: false });
    const err = await expectExit(
      withContext(root, (ctx) => setupSchedule(ctx), { env }),
      2,
    );
    assert.match(err.message, /service_account/);
    assert.match(err.suggestion ?? '', new RegExp(`environments\\.${env}\\.service_account in convergence\\.yaml`));
  });

  it('exits 7 with roles/iam.serviceAccountUser when the caller cannot act as the service account', async () => {
    const denied = 'no-act-as@demo-project.iam.gserviceaccount.com';
    const env = await addEnv({ serviceAccount: denied });
    fakes.scheduler.denyActAs(denied);
    const err = await expectExit(
      withContext(root, (ctx) => setupSchedule(ctx), { env }),
      7,
    );
    assert.match(err.suggestion ?? '', /roles\/iam\.serviceAccountUser/);
    assert.match(err.suggestion ?? '', /no-act-as@demo-project\.iam\.gserviceaccount\.com/);
  });
});

describe("the scheduler's permission to start the job with overrides", () => {
  const RUN_JOB = `${PARENT}/jobs/convergence-job`;

  it('setup exits 7 and prints the exact grant when the scheduler account lacks run.jobs.runWithOverrides (asked as that account)', async () => {
    const invokerOnly = 'sched-invoker@demo-project.iam.gserviceaccount.com';
    // roles/run.invoker: the job may be run, but not with the container overrides every tick sends.
    fakes.run.grantedTo.set(invokerOnly, new Set(['run.jobs.run']));
    const env = await addEnv({ serviceAccount: invokerOnly });
    const minted = fakes.iamCredentials.minted.length;
    const err = await expectExit(
      withContext(root, (ctx) => setupSchedule(ctx), { env }),
      7,
    );
    assert.match(err.message, /run\.jobs\.runWithOverrides/);
    assert.ok(
      (err.suggestion ?? '').includes(
        `gcloud run jobs add-iam-policy-binding convergence-job --region us-central1 --member serviceAccount:${invokerOnly} --role roles/run.jobsExecutorWithOverrides`,
      ),
      err.suggestion,
    );
    // The operator's credentials impersonated the scheduler's account to ask.
    assert.deepEqual(fakes.iamCredentials.minted.slice(minted), [invokerOnly]);
    const asked = fakes.run.requests('TestIamPermissions').at(-1)!.request as { resource: string; permissions: string[] };
    assert.deepEqual([asked.resource, asked.permissions], [RUN_JOB, ['run.jobs.runWithOverrides']]);

    grantRunWithOverrides(invokerOnly);
    const again = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    assert.deepEqual([again.created, again.updated, again.unchanged], [0, 0, 3]);
  });

  it('doctor runs the same check: a failed scheduler check with the grant as its fix, then a pass once granted', async () => {
    const invokerOnly = 'sched-doctor@demo-project.iam.gserviceaccount.com';
    fakes.run.grantedTo.set(invokerOnly, new Set(['run.jobs.run']));
    const env = await addEnv({ serviceAccount: invokerOnly });
    const schedulerCheck = async () => (await runDoctor(root, env)).checks.find((check) => check.name === 'scheduler');
    const failed = await schedulerCheck();
    assert.equal(failed?.status, 'fail', failed?.detail);
    assert.equal(
      failed?.fix,
      `gcloud run jobs add-iam-policy-binding convergence-job --region us-central1 --member serviceAccount:${invokerOnly} --role roles/run.jobsExecutorWithOverrides`,
    );
    grantRunWithOverrides(invokerOnly);
    assert.equal((await schedulerCheck())?.status, 'pass');
  });

  it('setup succeeds when the scheduler account holds the permission', async () => {
    const env = await addEnv();
    const result = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    assert.equal(result.created, 3);
  });

  it('setup exits 7 when the operator may not impersonate the scheduler account to ask', async () => {
    const unimpersonable = 'sched-no-token@demo-project.iam.gserviceaccount.com';
    grantRunWithOverrides(unimpersonable);
    fakes.iamCredentials.denyTokenCreator(unimpersonable);
    const env = await addEnv({ serviceAccount: unimpersonable });
    const err = await expectExit(
      withContext(root, (ctx) => setupSchedule(ctx), { env }),
      7,
    );
    assert.match(err.message, /sched-no-token@demo-project\.iam\.gserviceaccount\.com/);
    assert.match(err.suggestion ?? '', /roles\/iam\.serviceAccountTokenCreator/);
    assert.match(err.suggestion ?? '', /gcloud iam service-accounts add-iam-policy-binding sched-no-token@/);
  });

  it('a tick Cloud Scheduler dispatches as an account without the grant is refused by Run with PERMISSION_DENIED', async () => {
    const ungranted = 'sched-nogrant@demo-project.iam.gserviceaccount.com';
    fakes.run.grantedTo.set(ungranted, new Set(['run.jobs.run']));
    const env = await addEnv({ serviceAccount: ungranted });
    await expectExit(
      withContext(root, (ctx) => setupSchedule(ctx), { env }),
      7,
    );
    const executions = fakes.run.executions(RUN_JOB).length;
    const refused = await withContext(root, (ctx) => runScheduledJob(ctx, 'dispatch-tenant-pipelines'), { env });
    assert.equal(refused.lastStatus?.code, 7);
    assert.match(refused.lastStatus?.message ?? '', /run\.jobs\.runWithOverrides/);
    assert.equal(fakes.run.executions(RUN_JOB).length, executions);

    grantRunWithOverrides(ungranted);
    const ran = await withContext(root, (ctx) => runScheduledJob(ctx, 'dispatch-tenant-pipelines'), { env });
    assert.equal(ran.lastStatus, null);
    const [started] = fakes.run.executions(RUN_JOB);
    assert.equal(fakes.run.executions(RUN_JOB).length, executions + 1);
    assert.equal(started?.taskCount, 3);
  });
});

describe('scheduler list, run and delete on a cloud environment', () => {
  it('lists the jobs with schedule, time zone and state; planned ones not created yet show NOT_CREATED', async () => {
    const env = await addEnv();
    const empty = await withContext(root, (ctx) => listSchedule(ctx), { env });
    assert.ok(empty.jobs.every((j) => j.state === 'NOT_CREATED'));
    await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const listed = await withContext(root, (ctx) => listSchedule(ctx), { env });
    assert.deepEqual(
      listed.jobs.map((j) => [j.id, j.schedule, j.timeZone, j.state]),
      [
        ['cleanup-orphaned-pipelines', '*/30 * * * *', 'UTC', 'ENABLED'],
        ['dispatch-tenant-pipelines', '*/5 * * * *', 'UTC', 'ENABLED'],
        ['reset-daily-quotas', '0 0 * * *', 'UTC', 'ENABLED'],
      ],
    );
    assert.ok(listed.jobs.every((j) => j.lastAttemptTime === null));
  });

  it('run asks Cloud Scheduler to run the job now (RunJob) and reports the attempt', async () => {
    const env = await addEnv();
    await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const before = fakes.scheduler.dispatches().length;
    const result = await withContext(root, (ctx) => runScheduledJob(ctx, 'reset-daily-quotas'), { env });
    assert.equal(result.mode, 'cloud');
    assert.equal(result.name, jobName(env, 'reset-daily-quotas'));
    assert.ok(result.lastAttemptTime instanceof Date);
    const dispatches = fakes.scheduler.dispatches().slice(before);
    assert.equal(dispatches.length, 1);
    assert.equal(dispatches[0]!.httpTarget!.uri, RUN_URI);
    assert.deepEqual(bodyOf(dispatches[0]!.httpTarget).overrides.containerOverrides[0].args, ['job', 'reset-quotas']);
    const runs = fakes.scheduler.requests('RunJob');
    assert.equal((runs.at(-1)!.request as { name: string }).name, jobName(env, 'reset-daily-quotas'));
    const listed = await withContext(root, (ctx) => listSchedule(ctx), { env });
    assert.ok(listed.jobs.find((j) => j.id === 'reset-daily-quotas')!.lastAttemptTime instanceof Date);
  });

  it('run of a job that does not exist exits 8', async () => {
    const env = await addEnv();
    await expectExit(
      withContext(root, (ctx) => runScheduledJob(ctx, 'reset-daily-quotas'), { env }),
      8,
    );
  });

  it('delete removes the job (the command confirms first; --yes skips the prompt)', async () => {
    const env = await addEnv();
    await withContext(root, (ctx) => setupSchedule(ctx), { env });
    const name = await withContext(root, async (ctx) => scheduledJobName(ctx, 'dispatch-tenant-pipelines'), { env });
    assert.equal(name, jobName(env, 'dispatch-tenant-pipelines'));
    const result = await withContext(root, (ctx) => deleteScheduledJob(ctx, `convergence-${env}-dispatch-tenant-pipelines`), { env });
    assert.deepEqual(result, { env, id: 'dispatch-tenant-pipelines', name, deleted: true });
    assert.equal(fakes.scheduler.job(name), undefined);
    assert.ok(fakes.scheduler.job(jobName(env, 'reset-daily-quotas')));
    const again = await withContext(root, (ctx) => setupSchedule(ctx), { env });
    assert.deepEqual([again.created, again.unchanged], [1, 2]);
  });
});

describe('scheduler on the local environment', () => {
  it('setup and list print the plan and call no cloud', async () => {
    const calls = fakes.scheduler.requests().length;
    const local = await newWorkspace('scheduler-local');
    const plan = await withContext(local, (ctx) => setupSchedule(ctx));
    assert.equal(plan.planOnly, true);
    assert.deepEqual(
      plan.jobs.map((j) => [j.id, j.schedule, j.timeZone]),
      [
        ['reset-daily-quotas', '0 0 * * *', 'UTC'],
        ['cleanup-orphaned-pipelines', '*/30 * * * *', 'UTC'],
        ['dispatch-tenant-pipelines', '*/5 * * * *', 'UTC'],
      ],
    );
    const listed = await withContext(local, (ctx) => listSchedule(ctx));
    assert.ok(listed.jobs.every((j) => j.state === 'PLANNED'));
    await expectExit(
      withContext(local, async (ctx) => scheduledJobName(ctx, 'reset-daily-quotas')),
      2,
    );
    assert.equal(fakes.scheduler.requests().length, calls);
  });

  it('run reset-daily-quotas resets the quotas in process', async () => {
    const local = await newBootstrappedWorkspace('scheduler-quotas');
    await withContext(local, async (ctx) => {
      await createTenant(ctx, { tenantId: 'acme_corp', name: 'Acme Corp', plan: 'starter' });
      const warehouse = await ctx.backends.warehouse();
      const today = new Date().toISOString().slice(0, 10);
      await warehouse.update(
        METADATA_DATASET,
        T.quotas,
        { pipelines_run_today: 7, pipelines_failed_today: 2, usage_date: today },
        { tenant_id: 'acme_corp' },
      );
    });
    const result = await withContext(local, (ctx) => runScheduledJob(ctx, 'reset-daily-quotas'));
    assert.equal(result.mode, 'in-process');
    const reset = result.result as { count: number; tenants: string[] };
    assert.equal(reset.count, 1);
    assert.deepEqual(reset.tenants, ['acme_corp']);
    const quota = await withContext(local, (ctx) => showQuota(ctx, 'acme_corp'));
    assert.equal(quota.runsToday, 0);
    assert.equal(quota.failedToday, 0);
  });

  it('run cleanup-orphaned-pipelines runs the cleanup in process; an unknown job exits 2', async () => {
    const local = await newBootstrappedWorkspace('scheduler-cleanup');
    const result = await withContext(local, (ctx) => runScheduledJob(ctx, 'cleanup-orphaned-pipelines'));
    assert.equal(result.mode, 'in-process');
    assert.deepEqual((result.result as { timedOut: unknown[] }).timedOut, []);
    await expectExit(
      withContext(local, (ctx) => runScheduledJob(ctx, 'no-such-job')),
      2,
    );
  });
});
