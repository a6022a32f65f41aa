/**
 * Behaviour every Schedule adapter promises (src/backends/schedule/port.ts): Cloud Scheduler
 * jobs on gcp, in-process runs on local. Local keeps no jobs (there is no scheduler daemon), so
 * the suite takes that as a capability: with `storesJobs` it proves create / read back / update
 * by mask / list / delete and the not-found answers; without it, that reads find nothing and
 * that every write is refused as a usage error pointing at a cloud environment. Running a job
 * now is promised by both. (The port has no pause or resume: setup leaves a paused job paused.)
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JobSpec, Schedule, ScheduledJob } from '../../src/backends/schedule/port.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';

export interface ScheduleCapabilities {
  /** The adapter keeps jobs (Cloud Scheduler); local has none and refuses every write. */
  storesJobs: boolean;
}

export interface ScheduleFixture {
  subject: Schedule;
  /** The name this adapter gives a job id (the full resource name on gcp, the id itself on local). */
  jobName(jobId: string): string;
  /** How many times the job has been started now (in process, or dispatched by the scheduler). */
  runsOf(name: string): number;
  /** What the job's target answers when the scheduler runs it (null = success); stored jobs keep it as their last status. */
  targetAnswers?(answer: { code: number; message: string } | null): void;
  cleanup(): Promise<void>;
}

/** The job id prefix the suite's jobs share, as `scheduler list` asks for them. */
export const CONTRACT_PREFIX = 'convergence-contract-';
/** The one job every fixture can run now (local registers an in-process runner for it). */
export const RUNNABLE_JOB = `${CONTRACT_PREFIX}reset-daily-quotas`;

const ROBOT = 'scheduler@contract-project.iam.gserviceaccount.com';
const RUN_URI = 'https://run.googleapis.com/v2/projects/contract-project/locations/us-central1/jobs/convergence:run';

/** A job as `scheduler setup` writes one: an authenticated POST to the Cloud Run job's `:run`. */
function jobSpec(name: string, overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    name,
    description: 'Reset daily pipeline quotas',
    schedule: '0 0 * * *',
    timeZone: 'Etc/UTC',
    httpTarget: {
      uri: RUN_URI,
      httpMethod: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ overrides: { containerOverrides: [{ args: ['job', 'reset-quotas'] }], taskCount: 1 } }),
      oauthServiceAccount: ROBOT,
      oauthScope: 'https://www.googleapis.com/auth/cloud-platform',
      oidcServiceAccount: null,
    },
    retry: { retryCount: 3, maxRetryDurationSeconds: 0, minBackoffSeconds: 30, maxBackoffSeconds: 600, maxDoublings: 5 },
    attemptDeadlineSeconds: 600,
    ...overrides,
  };
}

/** The spec as read back, compared on the headers convergence set (Google adds its own). */
function asWritten(found: JobSpec, wanted: JobSpec): JobSpec {
  if (!found.httpTarget || !wanted.httpTarget) return found;
  const headers = Object.fromEntries(Object.keys(wanted.httpTarget.headers).map((key) => [key, found.httpTarget!.headers[key]!]));
  return { ...found, httpTarget: { ...found.httpTarget, headers } };
}

const failsWith = (code: string, exitCode: number, mentions: string) => (err: unknown) => {
  assert.ok(err instanceof ConvergenceError, `expected a ConvergenceError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.exitCode, exitCode, err.message);
  assert.ok(err.message.includes(mentions), `expected "${err.message}" to name ${mentions}`);
  return true;
};

export function scheduleContract(name: string, capabilities: ScheduleCapabilities, make: () => Promise<ScheduleFixture>): void {
  describe(`Schedule contract: ${name}`, () => {
    let fixture: ScheduleFixture;
    let schedule: Schedule;
    const { storesJobs } = capabilities;
    const named = (id: string) => fixture.jobName(`${CONTRACT_PREFIX}${id}`);

    beforeEach(async () => {
      fixture = await make();
      schedule = fixture.subject;
    });
    afterEach(async () => {
      await schedule.close();
      await fixture.cleanup();
    });

    it('finds nothing for a job that was never created', async () => {
      assert.ok(schedule.parent.length > 0, 'the adapter says where its jobs live');
      assert.equal(await schedule.get(named('never-created')), undefined);
      assert.deepEqual(await schedule.list(CONTRACT_PREFIX), []);
    });

    it('runs a job now, once per call', async () => {
      const job = fixture.jobName(RUNNABLE_JOB);
      if (storesJobs) await schedule.create(jobSpec(job));
      const ran = await schedule.run(job);
      assert.equal(fixture.runsOf(job), 1);
      await schedule.run(job);
      assert.equal(fixture.runsOf(job), 2);
      if (storesJobs) {
        assert.ok(ran, 'a stored job is answered after its run');
        assert.equal(ran.spec.name, job);
        assert.ok(ran.lastAttemptTime instanceof Date, 'the run is recorded as the last attempt');
        assert.equal(ran.lastStatus, null);
      } else {
        assert.equal(ran, undefined, 'an in-process run has no stored job to answer with');
      }
    });

    it('refuses to run a job it cannot start, naming the job', async () => {
      const job = named('no-such-job');
      // A stored job that is missing is not found (exit 8); local cannot run an unknown job in process (exit 2).
      const [code, exitCode] = storesJobs ? ['NOT_FOUND', 8] : ['USAGE', 2];
      await assert.rejects(schedule.run(job), failsWith(code, exitCode, job));
      assert.equal(fixture.runsOf(job), 0);
    });

    if (!storesJobs) {
      it('refuses every write as a usage error naming the job, and still finds nothing', async () => {
        const wanted = jobSpec(named('create'));
        const writes = [() => schedule.create(wanted), () => schedule.update(wanted, ['schedule']), () => schedule.delete(wanted.name)];
        for (const write of writes) {
          await assert.rejects(write(), (err: unknown) => {
            failsWith('USAGE', 2, wanted.name)(err);
            assert.match((err as ConvergenceError).suggestion ?? '', /--env/, 'points at a cloud environment');
            return true;
          });
        }
        assert.equal(await schedule.get(wanted.name), undefined);
        assert.deepEqual(await schedule.list(CONTRACT_PREFIX), []);
      });
      return;
    }

    it('creates a job and reads back exactly the spec it wrote, enabled and never run', async () => {
      const wanted = jobSpec(named('create'));
      const created = await schedule.create(wanted);
      assert.deepEqual(asWritten(created.spec, wanted), wanted);
      const found = await schedule.get(wanted.name);
      assert.ok(found);
      assert.deepEqual(asWritten(found.spec, wanted), wanted);
      assert.equal(found.state, 'ENABLED');
      assert.equal(found.lastAttemptTime, null);
      assert.equal(found.lastStatus, null);
    });

    it('refuses to create a job twice (a conflict, exit 2) and keeps the first', async () => {
      const first = jobSpec(named('twice'));
      await schedule.create(first);
      await assert.rejects(schedule.create({ ...first, schedule: '30 1 * * *' }), failsWith('CONFLICT', 2, first.name));
      const found = await schedule.get(first.name);
      assert.equal(found?.spec.schedule, '0 0 * * *');
    });

    it('updates only the fields named by the mask', async () => {
      const wanted = jobSpec(named('masked'));
      await schedule.create(wanted);
      const changed = jobSpec(wanted.name, {
        schedule: '15 2 * * *',
        description: 'not in the mask',
        retry: { ...wanted.retry, retryCount: 5, maxBackoffSeconds: 900 },
      });
      const updated = await schedule.update(changed, ['schedule', 'retry_config.retry_count']);
      const expected = { ...wanted, schedule: '15 2 * * *', retry: { ...wanted.retry, retryCount: 5 } };
      assert.deepEqual(asWritten(updated.spec, wanted), expected);
      const found = await schedule.get(wanted.name);
      assert.ok(found);
      assert.deepEqual(asWritten(found.spec, wanted), expected);
    });

    it('reconciles idempotently: writing back the spec it read changes nothing', async () => {
      const wanted = jobSpec(named('steady'));
      await schedule.create(wanted);
      const read = await schedule.get(wanted.name);
      assert.ok(read);
      const mask = ['description', 'schedule', 'time_zone', 'http_target', 'retry_config', 'attempt_deadline'];
      const once = await schedule.update(read.spec, mask);
      const twice = await schedule.update(once.spec, mask);
      assert.deepEqual(once.spec, read.spec);
      assert.deepEqual(twice.spec, read.spec);
      assert.deepEqual(asWritten(twice.spec, wanted), wanted);
    });

    it('lists only the jobs whose id starts with the prefix, sorted by name', async () => {
      await schedule.create(jobSpec(named('b-second')));
      await schedule.create(jobSpec(named('a-first')));
      const other = fixture.jobName('convergence-other-a-first');
      await schedule.create(jobSpec(other));
      const listed = await schedule.list(CONTRACT_PREFIX);
      assert.deepEqual(
        listed.map((job: ScheduledJob) => job.spec.name),
        [named('a-first'), named('b-second')],
      );
      assert.ok(listed.every((job) => job.state === 'ENABLED'));
      assert.deepEqual(
        (await schedule.list('convergence-other-')).map((job) => job.spec.name),
        [other],
      );
    });

    it("keeps the last attempt's failure as the job's last status, and clears it after a success", async () => {
      assert.ok(fixture.targetAnswers, 'a fixture with stored jobs scripts what the target answers');
      const job = fixture.jobName(RUNNABLE_JOB);
      await schedule.create(jobSpec(job));
      fixture.targetAnswers({ code: 13, message: 'the Cloud Run job answered 500' });
      const failed = await schedule.run(job);
      assert.deepEqual(failed?.lastStatus, { code: 13, message: 'the Cloud Run job answered 500' });
      assert.deepEqual((await schedule.get(job))?.lastStatus, { code: 13, message: 'the Cloud Run job answered 500' });
      fixture.targetAnswers(null);
      const succeeded = await schedule.run(job);
      assert.equal(succeeded?.lastStatus, null);
    });

    it('deletes a job; afterwards it is not found to get, update, run or delete', async () => {
      const wanted = jobSpec(named('doomed'));
      await schedule.create(wanted);
      await schedule.delete(wanted.name);
      assert.equal(await schedule.get(wanted.name), undefined);
      assert.deepEqual(await schedule.list(CONTRACT_PREFIX), []);
      await assert.rejects(schedule.update(wanted, ['schedule']), failsWith('NOT_FOUND', 8, wanted.name));
      await assert.rejects(schedule.run(wanted.name), failsWith('NOT_FOUND', 8, wanted.name));
      await assert.rejects(schedule.delete(wanted.name), failsWith('NOT_FOUND', 8, wanted.name));
    });
  });
}
