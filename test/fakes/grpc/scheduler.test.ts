/**
 * The Cloud Scheduler fake driven through the official @google-cloud/scheduler client over a real
 * socket, as `scheduler setup|list|run|delete` will drive it.
 */
import '../env-guard.ts';
import { JobsClient } from '@google-cloud/run';
import { CloudSchedulerClient, type protos } from '@google-cloud/scheduler';
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { RunFake } from './run.ts';
import { isUnixCron, runJobDispatcher, SCHEDULER_PERMISSIONS, SchedulerFake } from './scheduler.ts';
import { startGrpcFake, type GrpcFake } from './server.ts';
import { status } from './status.ts';
import { fakeClientOptions } from './client-options.ts';

type IJob = protos.google.cloud.scheduler.v1.IJob;

const PARENT = 'projects/demo-project/locations/us-central1';
const RUN_TARGET = 'https://run.googleapis.com/v2/projects/demo-project/locations/us-central1/jobs/convergence:run';
const ROBOT = 'scheduler@demo-project.iam.gserviceaccount.com';

const scheduler = new SchedulerFake();
let fake: GrpcFake;
let client: CloudSchedulerClient;
let serial = 0;

before(async () => {
  fake = await startGrpcFake({ scheduler });
  client = new CloudSchedulerClient(fakeClientOptions(fake.port));
});

after(async () => {
  await client.close();
  await fake.stop();
});

afterEach(() => {
  scheduler.onRun(undefined);
  scheduler.granted = new Set(SCHEDULER_PERMISSIONS);
  fake.clearFaults();
});

const nextName = (prefix = 'job') => `${PARENT}/jobs/${prefix}-${++serial}`;

const fails = (code: number, pattern?: RegExp) => (err: unknown) => {
  const failure = err as { code?: number; message?: string };
  assert.equal(failure.code, code, `expected code ${code}, got ${failure.code}: ${failure.message}`);
  if (pattern) assert.match(String(failure.message), pattern);
  return true;
};

const desired = (name: string, overrides: IJob = {}): IJob => ({
  name,
  description: 'Reset daily pipeline quotas',
  schedule: '0 0 * * *',
  timeZone: 'UTC',
  httpTarget: {
    uri: RUN_TARGET,
    httpMethod: 'POST',
    body: Buffer.from(JSON.stringify({ overrides: { containerOverrides: [{ args: ['job', 'reset-quotas'] }] } })),
    headers: { 'Content-Type': 'application/json' },
    oauthToken: { serviceAccountEmail: ROBOT },
  },
  ...overrides,
});

async function create(job: IJob): Promise<IJob> {
  const [created] = await client.createJob({ parent: PARENT, job });
  return created;
}

/** The idempotent setup the product will do: get, then update only what differs, or create. */
async function ensure(job: IJob): Promise<'created' | 'updated' | 'unchanged'> {
  let current: IJob;
  try {
    [current] = await client.getJob({ name: job.name! });
  } catch (err) {
    if ((err as { code?: number }).code !== status.NOT_FOUND) throw err;
    await create(job);
    return 'created';
  }
  const paths: string[] = [];
  if (current.schedule !== job.schedule) paths.push('schedule');
  if (current.timeZone !== job.timeZone) paths.push('time_zone');
  if (current.description !== job.description) paths.push('description');
  if (current.httpTarget?.uri !== job.httpTarget?.uri) paths.push('http_target');
  if (paths.length === 0) return 'unchanged';
  await client.updateJob({ job, updateMask: { paths } });
  return 'updated';
}

describe('Cloud Scheduler jobs', () => {
  it('creates a job with an OAuth HTTP target and answers it with the documented defaults filled in', async () => {
    const name = nextName('reset-daily-quotas');
    const created = await create(desired(name));
    assert.equal(created.name, name);
    assert.equal(created.state, 'ENABLED');
    assert.equal(created.schedule, '0 0 * * *');
    assert.equal(created.timeZone, 'UTC');
    assert.equal(created.httpTarget?.httpMethod, 'POST');
    assert.equal(created.httpTarget?.oauthToken?.serviceAccountEmail, ROBOT);
    assert.equal(created.httpTarget?.headers?.['Content-Type'], 'application/json');
    assert.equal(created.attemptDeadline?.seconds, '180');
    assert.deepEqual(
      {
        retryCount: created.retryConfig?.retryCount,
        minBackoff: created.retryConfig?.minBackoffDuration?.seconds,
        maxBackoff: created.retryConfig?.maxBackoffDuration?.seconds,
        maxDoublings: created.retryConfig?.maxDoublings,
      },
      { retryCount: 0, minBackoff: '5', maxBackoff: '3600', maxDoublings: 5 },
    );
    assert.ok(Number(created.userUpdateTime?.seconds) > 0);
    const [fetched] = await client.getJob({ name });
    assert.deepEqual(JSON.parse(Buffer.from(fetched.httpTarget!.body as Uint8Array).toString()).overrides.containerOverrides[0].args, [
      'job',
      'reset-quotas',
    ]);
  });

  it('answers ALREADY_EXISTS and NOT_FOUND the way Scheduler does', async () => {
    const name = nextName();
    await create(desired(name));
    await assert.rejects(create(desired(name)), fails(status.ALREADY_EXISTS, new RegExp(`Job ${name} already exists`)));
    await assert.rejects(client.getJob({ name: `${PARENT}/jobs/absent` }), fails(status.NOT_FOUND, /Job not found/));
    await assert.rejects(client.deleteJob({ name: `${PARENT}/jobs/absent` }), fails(status.NOT_FOUND));
    await assert.rejects(create(desired('projects/other/locations/us-central1/jobs/x')), fails(status.INVALID_ARGUMENT, /is not a job of/));
  });

  it('validates unix-cron schedules and time zones', async () => {
    for (const schedule of ['*/30 * * * *', '0 6 * * MON-FRI', '15 2 1,15 JAN,JUL *', '0 0 * * 7', '5-55/10 */2 * * *']) {
      assert.ok(isUnixCron(schedule), schedule);
    }
    for (const schedule of [
      '0 0 * *',
      '0 0 * * * *',
      '60 0 * * *',
      '0 24 * * *',
      '0 0 0 * *',
      '0 0 * 13 *',
      'every 5 minutes',
      '*/0 * * * *',
      '5-1 * * * *',
    ]) {
      assert.equal(isUnixCron(schedule), false, schedule);
    }
    await assert.rejects(
      create(desired(nextName(), { schedule: '61 * * * *' })),
      fails(status.INVALID_ARGUMENT, /Schedule or time zone is invalid/),
    );
    await assert.rejects(
      create(desired(nextName(), { timeZone: 'Mars/Olympus' })),
      fails(status.INVALID_ARGUMENT, /Schedule or time zone is invalid/),
    );
    await assert.rejects(create(desired(nextName(), { schedule: '' })), fails(status.INVALID_ARGUMENT, /schedule: Field is required/));
    const la = await create(desired(nextName(), { schedule: '0 6 * * *', timeZone: 'America/Los_Angeles' }));
    assert.equal(la.timeZone, 'America/Los_Angeles');
  });

  it('checks the target, the token, retry settings and the attempt deadline', async () => {
    await assert.rejects(
      create(desired(nextName(), { httpTarget: { uri: 'ftp://example.com', oauthToken: { serviceAccountEmail: ROBOT } } })),
      fails(status.INVALID_ARGUMENT, /must begin with http/),
    );
    await assert.rejects(create({ name: nextName(), schedule: '* * * * *' }), fails(status.INVALID_ARGUMENT, /exactly one target/));
    await assert.rejects(
      create(desired(nextName(), { httpTarget: { uri: RUN_TARGET, oauthToken: { serviceAccountEmail: 'not-an-email' } } })),
      fails(status.INVALID_ARGUMENT, /Invalid service account email/),
    );
    await assert.rejects(create(desired(nextName(), { retryConfig: { retryCount: 6 } })), fails(status.INVALID_ARGUMENT, /retry_count/));
    await assert.rejects(
      create(desired(nextName(), { retryConfig: { minBackoffDuration: { seconds: 60 }, maxBackoffDuration: { seconds: 10 } } })),
      fails(status.INVALID_ARGUMENT, /min_backoff_duration/),
    );
    await assert.rejects(
      create(desired(nextName(), { attemptDeadline: { seconds: 10 } })),
      fails(status.INVALID_ARGUMENT, /between 15s and 1800s/),
    );
    await assert.rejects(
      create(
        desired(nextName(), {
          httpTarget: { uri: RUN_TARGET, httpMethod: 'GET', body: Buffer.from('x'), oauthToken: { serviceAccountEmail: ROBOT } },
        }),
      ),
      fails(status.INVALID_ARGUMENT, /body is allowed only with POST/),
    );
    const oidc = await create(
      desired(nextName(), {
        httpTarget: { uri: 'https://convergence-abc.a.run.app/api/v1/admin/dispatch', oidcToken: { serviceAccountEmail: ROBOT } },
        retryConfig: { retryCount: 3 },
        attemptDeadline: { seconds: 900 },
      }),
    );
    assert.equal(oidc.httpTarget?.oidcToken?.serviceAccountEmail, ROBOT);
    assert.equal(oidc.retryConfig?.retryCount, 3);
    assert.equal(oidc.attemptDeadline?.seconds, '900');
    scheduler.denyActAs('other@demo-project.iam.gserviceaccount.com');
    await assert.rejects(
      create(
        desired(nextName(), {
          httpTarget: { uri: RUN_TARGET, oauthToken: { serviceAccountEmail: 'other@demo-project.iam.gserviceaccount.com' } },
        }),
      ),
      fails(status.PERMISSION_DENIED, /iam\.serviceAccounts\.actAs/),
    );
  });

  it('updates only the fields the update mask names, or every field without a mask', async () => {
    const name = nextName();
    await create(desired(name));
    const [masked] = await client.updateJob({
      job: { name, schedule: '*/30 * * * *', description: 'ignored' },
      updateMask: { paths: ['schedule'] },
    });
    assert.equal(masked.schedule, '*/30 * * * *');
    assert.equal(masked.description, 'Reset daily pipeline quotas');
    assert.equal(masked.httpTarget?.uri, RUN_TARGET);

    const [nested] = await client.updateJob({
      job: { name, httpTarget: { uri: `${RUN_TARGET}?v=2` } },
      updateMask: { paths: ['http_target.uri'] },
    });
    assert.equal(nested.httpTarget?.uri, `${RUN_TARGET}?v=2`);
    assert.equal(nested.httpTarget?.oauthToken?.serviceAccountEmail, ROBOT, 'a nested path keeps the rest of the target');

    const [replaced] = await client.updateJob({ job: desired(name, { description: 'replaced', schedule: '0 1 * * *' }) });
    assert.equal(replaced.description, 'replaced');
    assert.equal(replaced.schedule, '0 1 * * *');

    await assert.rejects(
      client.updateJob({ job: { name, state: 'PAUSED' }, updateMask: { paths: ['state'] } }),
      fails(status.INVALID_ARGUMENT, /update_mask/),
    );
    await assert.rejects(client.updateJob({ job: { name: `${PARENT}/jobs/absent`, schedule: '* * * * *' } }), fails(status.NOT_FOUND));
    await assert.rejects(
      client.updateJob({ job: { name, schedule: 'soon' }, updateMask: { paths: ['schedule'] } }),
      fails(status.INVALID_ARGUMENT, /Schedule or time zone is invalid/),
    );
  });

  it('records requests so a second setup can be shown to change nothing', async () => {
    const jobs = [desired(nextName('reset-daily-quotas')), desired(nextName('cleanup-orphaned-pipelines'), { schedule: '*/30 * * * *' })];
    const updatesBefore = scheduler.requests('UpdateJob').length;
    assert.deepEqual(await Promise.all(jobs.map(ensure)), ['created', 'created']);
    assert.deepEqual(await Promise.all(jobs.map(ensure)), ['unchanged', 'unchanged']);
    assert.equal(scheduler.requests('UpdateJob').length, updatesBefore);
    jobs[1]!.schedule = '*/15 * * * *';
    assert.deepEqual(await Promise.all(jobs.map(ensure)), ['unchanged', 'updated']);
    assert.equal(scheduler.requests('UpdateJob').length, updatesBefore + 1);
  });

  it('lists jobs of a location page by page', async () => {
    const location = 'projects/demo-project/locations/europe-west1';
    for (const id of ['a', 'b', 'c']) await client.createJob({ parent: location, job: desired(`${location}/jobs/${id}`) });
    const names: string[] = [];
    for await (const job of client.listJobsAsync({ parent: location, pageSize: 2 })) names.push(String(job.name));
    assert.deepEqual(
      names,
      ['a', 'b', 'c'].map((id) => `${location}/jobs/${id}`),
    );
    assert.equal(fake.calls('ListJobs').length, 2);
  });

  it('pauses and resumes a job, refusing the transitions Scheduler refuses', async () => {
    const name = nextName();
    await create(desired(name));
    const [paused] = await client.pauseJob({ name });
    assert.equal(paused.state, 'PAUSED');
    await assert.rejects(client.pauseJob({ name }), fails(status.FAILED_PRECONDITION));
    const [resumed] = await client.resumeJob({ name });
    assert.equal(resumed.state, 'ENABLED');
    await assert.rejects(client.resumeJob({ name }), fails(status.FAILED_PRECONDITION));
  });

  it('runs a job now: the dispatch is recorded and the target’s answer lands in the job status', async () => {
    const name = nextName();
    await create(desired(name));
    const [ran] = await client.runJob({ name });
    assert.ok(Number(ran.lastAttemptTime?.seconds) > 0);
    const dispatch = scheduler.dispatches().at(-1)!;
    assert.equal(dispatch.job, name);
    assert.equal(dispatch.httpTarget?.uri, RUN_TARGET);
    assert.equal((dispatch.httpTarget?.oauthToken as { serviceAccountEmail?: string }).serviceAccountEmail, ROBOT);

    scheduler.onRun(() => ({ code: status.PERMISSION_DENIED, message: 'The caller does not have permission' }));
    const [denied] = await client.runJob({ name });
    assert.equal(denied.status?.code, status.PERMISSION_DENIED);
  });

  it('deletes a job', async () => {
    const name = nextName();
    await create(desired(name));
    await client.deleteJob({ name });
    await assert.rejects(client.getJob({ name }), fails(status.NOT_FOUND));
    assert.equal(scheduler.job(name), undefined);
  });

  it('answers PERMISSION_DENIED without the permission and takes injected faults by full method path', async () => {
    const name = nextName();
    await create(desired(name));
    scheduler.granted.delete('cloudscheduler.jobs.run');
    await assert.rejects(client.runJob({ name }), fails(status.PERMISSION_DENIED, /cloudscheduler\.jobs\.run/));
    scheduler.granted.add('cloudscheduler.jobs.run');
    fake.inject({ method: 'google.cloud.scheduler.v1.CloudScheduler/RunJob', code: status.RESOURCE_EXHAUSTED, message: 'Quota exceeded' });
    await assert.rejects(client.runJob({ name }), fails(status.RESOURCE_EXHAUSTED, /Quota exceeded/));
    const [ran] = await client.runJob({ name });
    assert.equal(ran.name, name);
  });
});

describe('Cloud Scheduler dispatching to the Cloud Run fake', () => {
  it('calls the Run jobs :run target as the job’s OAuth service account, so Run applies that account’s grants', async () => {
    const run = new RunFake();
    const dispatching = new SchedulerFake();
    const server = await startGrpcFake({ run, scheduler: dispatching });
    dispatching.dispatchTo(runJobDispatcher(server.address));
    const options = fakeClientOptions(server.port);
    const jobs = new JobsClient(options);
    const schedules = new CloudSchedulerClient(options);
    try {
      const [created] = await jobs.createJob({
        parent: PARENT,
        jobId: 'convergence',
        job: { template: { template: { containers: [{ image: 'us-docker.pkg.dev/demo-project/convergence/convergence:1' }] } } },
      });
      await created.promise();
      const name = nextName('dispatch');
      await schedules.createJob({ parent: PARENT, job: desired(name) });
      // roles/run.invoker only: the tick's container overrides are refused.
      run.grantedTo.set(ROBOT, new Set(['run.jobs.run']));
      const [refused] = await schedules.runJob({ name });
      assert.equal(refused.status?.code, status.PERMISSION_DENIED);
      assert.match(String(refused.status?.message), /run\.jobs\.runWithOverrides/);
      assert.deepEqual(run.executions(`${PARENT}/jobs/convergence`), []);
      run.grantedTo.set(ROBOT, new Set(['run.jobs.run', 'run.jobs.runWithOverrides']));
      const [ran] = await schedules.runJob({ name });
      assert.equal(ran.status, null);
      const [execution] = run.executions(`${PARENT}/jobs/convergence`);
      assert.deepEqual((execution?.template as { containers: Array<{ args: string[] }> }).containers[0]!.args, ['job', 'reset-quotas']);
      // Without an OAuth token the call reaches Run unauthenticated.
      const anonymous = nextName('dispatch');
      await schedules.createJob({
        parent: PARENT,
        job: desired(anonymous, { httpTarget: { ...desired(anonymous).httpTarget, oauthToken: null } }),
      });
      assert.equal((await schedules.runJob({ name: anonymous }))[0].status?.code, status.UNAUTHENTICATED);
    } finally {
      await jobs.close();
      await schedules.close();
      await server.stop();
    }
  });
});
