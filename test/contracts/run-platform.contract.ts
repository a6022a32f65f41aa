/**
 * Behaviour every RunPlatform adapter promises (src/backends/run-platform/port.ts): a service's
 * revisions and traffic as deploy and rollback drive them, and jobs with their executions as
 * remote runs drive them. Cloud Run is the only platform today; the fixture scripts what the
 * platform does on its own (a revision that never turns ready, a concurrent writer, how an
 * execution ends) and shows what a deployed container was given.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { RunPlatform, ServiceState } from '../../src/backends/run-platform/port.ts';
import { pinnedTraffic } from '../../src/backends/run-platform/port.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';

/** What a job's execution was started with, overrides applied. */
export interface StartedExecution {
  args: string[];
  env: Record<string, string>;
  taskCount: number;
  timeoutSeconds: number;
}

/** How the platform ends the next executions; every task succeeds at once by default. */
export interface ExecutionEnding {
  failed?: number;
  cancelled?: number;
  message?: string;
  /** The execution fails while no task is counted failed (its container never started). */
  failedBeforeAnyTask?: boolean;
  /** Looks (getExecution) before the execution completes. */
  looksBeforeDone?: number;
}

export interface RunPlatformFixture {
  subject: RunPlatform;
  /** Creates a job outside convergence (as `gcloud run jobs create` or Terraform would). */
  createJob(job: string): Promise<void>;
  /** The next revision created never turns ready. */
  failNextRevision(): void;
  /** The next `times` writes of the service meet another writer that changed it first. */
  concurrentWrites(times: number): void;
  executionsEnd(ending: ExecutionEnding): void;
  /** The executions started so far, oldest first. */
  startedExecutions(): StartedExecution[];
  /** The first container of the service's template as stored. */
  container(service: string): { image: string; args: string[]; env: Record<string, string> } | undefined;
  cleanup(): Promise<void>;
}

const SERVICE = 'convergence-api';
const IMAGE = 'us-docker.pkg.dev/contract-project/convergence/convergence';
const JOB = 'convergence-pipelines';

const failsWith = (code: string, exitCode: number) => (err: unknown) => {
  assert.ok(err instanceof ConvergenceError, `expected a ConvergenceError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.exitCode, exitCode, err.message);
  return true;
};

export function runPlatformContract(name: string, make: () => Promise<RunPlatformFixture>): void {
  describe(`RunPlatform contract: ${name}`, () => {
    let fixture: RunPlatformFixture;
    let platform: RunPlatform;

    beforeEach(async () => {
      fixture = await make();
      platform = fixture.subject;
    });
    afterEach(async () => {
      await platform.close();
      await fixture.cleanup();
    });

    /** A service serving `${SERVICE}-v1` at 100%, pinned by name. */
    async function deployed(): Promise<ServiceState> {
      const first = await platform.deployRevision(SERVICE, { image: `${IMAGE}:1`, revisionName: `${SERVICE}-v1`, noTraffic: false });
      assert.ok(first.service);
      return first.service;
    }

    it('says which platform it drives, and finds no service that was never deployed', async () => {
      assert.ok(platform.describe.length > 0);
      assert.equal(await platform.getService(SERVICE), undefined);
    });

    it('creates a missing service with all traffic on the new revision, even when asked for none', async () => {
      const result = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:1`,
        revisionName: `${SERVICE}-v1`,
        tag: 'first',
        noTraffic: true,
      });
      assert.equal(result.created, true);
      assert.equal(result.revision, `${SERVICE}-v1`);
      const service = result.service;
      assert.ok(service);
      assert.equal(service.name, SERVICE);
      assert.equal(service.ready, true);
      assert.equal(service.image, `${IMAGE}:1`);
      assert.match(service.uri, /^https:\/\//);
      assert.equal(service.latestReadyRevision, `${SERVICE}-v1`);
      assert.equal(service.latestCreatedRevision, `${SERVICE}-v1`);
      assert.deepEqual(service.traffic, [{ revision: `${SERVICE}-v1`, percent: 100, tag: 'first' }]);
      assert.deepEqual(
        service.trafficStatuses.map(({ revision, percent, tag, latest }) => ({ revision, percent, tag, latest })),
        [{ revision: `${SERVICE}-v1`, percent: 100, tag: 'first', latest: false }],
      );
      assert.deepEqual(await platform.getService(SERVICE), service);
    });

    it('routes an unnamed first revision as LATEST, which the status resolves to the revision', async () => {
      const result = await platform.deployRevision(SERVICE, { image: `${IMAGE}:1`, noTraffic: false });
      assert.equal(result.created, true);
      const service = result.service;
      assert.ok(service?.latestReadyRevision);
      assert.equal(result.revision, service.latestCreatedRevision);
      assert.deepEqual(service.traffic, [{ percent: 100 }]);
      assert.deepEqual(
        service.trafficStatuses.map(({ revision, percent, latest }) => ({ revision, percent, latest })),
        [{ revision: service.latestReadyRevision, percent: 100, latest: true }],
      );
      assert.deepEqual(pinnedTraffic(service), [{ revision: service.latestReadyRevision, percent: 100 }]);
    });

    it('adds a canary revision at 0% under its tag, keeping the serving traffic pinned where it was', async () => {
      await deployed();
      const result = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:2`,
        revisionName: `${SERVICE}-v2`,
        tag: 'canary',
        noTraffic: true,
      });
      assert.equal(result.created, false);
      assert.equal(result.revision, `${SERVICE}-v2`);
      const service = result.service;
      assert.ok(service);
      assert.equal(service.image, `${IMAGE}:2`);
      assert.equal(service.latestCreatedRevision, `${SERVICE}-v2`);
      assert.deepEqual(service.traffic, [
        { revision: `${SERVICE}-v1`, percent: 100 },
        { revision: `${SERVICE}-v2`, percent: 0, tag: 'canary' },
      ]);
      const canary = service.trafficStatuses.find((status) => status.tag === 'canary');
      assert.equal(canary?.revision, `${SERVICE}-v2`);
      assert.equal(canary?.percent, 0);
      assert.match(canary?.uri ?? '', /^https:\/\/canary---/, 'a tag gets its own URL');
    });

    it('refuses a no-traffic deploy without a revision name to route the tag to', async () => {
      await deployed();
      await assert.rejects(platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, tag: 'canary', noTraffic: true }), /revisionName/);
      assert.equal((await platform.getService(SERVICE))?.latestCreatedRevision, `${SERVICE}-v1`);
    });

    it("keeps args an operator added after the deploy's own, replaces other args, and merges env", async () => {
      await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:1`,
        revisionName: `${SERVICE}-v1`,
        args: ['serve', '--port', '8080'],
        env: { CONVERGENCE_ENV: 'cloud', LOG_LEVEL: 'info' },
        noTraffic: false,
      });
      await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:2`,
        revisionName: `${SERVICE}-v2`,
        args: ['serve'],
        env: { LOG_LEVEL: 'debug' },
        noTraffic: false,
      });
      assert.deepEqual(fixture.container(SERVICE), {
        image: `${IMAGE}:2`,
        args: ['serve', '--port', '8080'],
        env: { CONVERGENCE_ENV: 'cloud', LOG_LEVEL: 'debug' },
      });
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:3`, revisionName: `${SERVICE}-v3`, args: ['job'], noTraffic: false });
      assert.deepEqual(fixture.container(SERVICE)?.args, ['job']);
    });

    it('lists revisions newest first, with their image and readiness', async () => {
      await deployed();
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: false });
      const revisions = await platform.listRevisions(SERVICE);
      assert.deepEqual(
        revisions.map(({ name, image, ready, failed }) => ({ name, image, ready, failed })),
        [
          { name: `${SERVICE}-v2`, image: `${IMAGE}:2`, ready: true, failed: false },
          { name: `${SERVICE}-v1`, image: `${IMAGE}:1`, ready: true, failed: false },
        ],
      );
      assert.ok(revisions[0]!.createTime.getTime() > revisions[1]!.createTime.getTime());
    });

    it('rejects a deploy whose revision never turns ready, and keeps serving the previous one', async () => {
      await deployed();
      fixture.failNextRevision();
      await assert.rejects(
        platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: false }),
        failsWith('FAILED_PRECONDITION', 2),
      );
      const service = await platform.getService(SERVICE);
      assert.equal(service?.ready, false);
      assert.ok(service?.message, 'the failed condition says why');
      assert.equal(service?.latestReadyRevision, `${SERVICE}-v1`);
      const [newest] = await platform.listRevisions(SERVICE);
      assert.equal(newest?.name, `${SERVICE}-v2`);
      assert.equal(newest?.failed, true);
      assert.ok(newest?.message);
    });

    it('validates a deploy without changing anything', async () => {
      const first = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:1`,
        revisionName: `${SERVICE}-v1`,
        noTraffic: false,
        validateOnly: true,
      });
      assert.deepEqual(first, { revision: `${SERVICE}-v1`, created: true, service: undefined });
      assert.equal(await platform.getService(SERVICE), undefined);
      const before = await deployed();
      const next = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:2`,
        revisionName: `${SERVICE}-v2`,
        noTraffic: true,
        tag: 'canary',
        validateOnly: true,
      });
      assert.equal(next.revision, `${SERVICE}-v2`);
      assert.equal(next.created, false);
      assert.deepEqual(await platform.getService(SERVICE), before);
      assert.deepEqual(
        (await platform.listRevisions(SERVICE)).map((revision) => revision.name),
        [`${SERVICE}-v1`],
      );
    });

    it('rewrites the whole traffic list, and only validates it when asked', async () => {
      await deployed();
      const canary = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:2`,
        revisionName: `${SERVICE}-v2`,
        tag: 'canary',
        noTraffic: true,
      });
      const split = [
        { revision: `${SERVICE}-v1`, percent: 90 },
        { revision: `${SERVICE}-v2`, percent: 10, tag: 'canary' },
      ];
      assert.equal(await platform.setTraffic(SERVICE, split, canary.service!.etag, { validateOnly: true }), undefined);
      assert.deepEqual((await platform.getService(SERVICE))?.traffic, canary.service!.traffic);
      const after = await platform.setTraffic(SERVICE, split, canary.service!.etag);
      assert.deepEqual(after?.traffic, split);
      assert.deepEqual(
        after?.trafficStatuses.map(({ revision, percent }) => ({ revision, percent })),
        split.map(({ revision, percent }) => ({ revision, percent })),
      );
      assert.notEqual(after?.etag, canary.service!.etag);
    });

    it('re-applies the same traffic list from a fresh read when someone else changed the service meanwhile', async () => {
      const stale = await deployed();
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: true });
      const wanted = [{ revision: `${SERVICE}-v2`, percent: 100 }];
      assert.deepEqual((await platform.setTraffic(SERVICE, wanted, stale.etag))?.traffic, wanted);
      const current = await platform.getService(SERVICE);
      fixture.concurrentWrites(3);
      const back = [{ revision: `${SERVICE}-v1`, percent: 100 }];
      assert.deepEqual((await platform.setTraffic(SERVICE, back, current!.etag))?.traffic, back);
    });

    it('never overwrites a rollback made between the read and the traffic update: a list from the earlier read is a conflict', async () => {
      const first = await deployed();
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: true });
      const promoted = [{ revision: `${SERVICE}-v2`, percent: 100 }];
      const read = await platform.setTraffic(SERVICE, promoted, (await platform.getService(SERVICE))?.etag ?? first.etag);
      const canary = [
        { revision: `${SERVICE}-v2`, percent: 90 },
        { revision: `${SERVICE}-v1`, percent: 10 },
      ];
      // Someone rolls back to v1 after the read: the canary's list, computed from that read, must not undo it.
      const rolledBack = [{ revision: `${SERVICE}-v1`, percent: 100 }];
      await platform.setTraffic(SERVICE, rolledBack, read!.etag);
      await assert.rejects(platform.setTraffic(SERVICE, canary, read!.etag), failsWith('CONFLICT', 2));
      assert.deepEqual((await platform.getService(SERVICE))?.traffic, rolledBack);
    });

    it('re-applies a traffic change to the fresh read after a stale etag, so the final traffic holds both writes', async () => {
      const first = await deployed();
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: true });
      const promoted = [{ revision: `${SERVICE}-v2`, percent: 100 }];
      const read = await platform.setTraffic(SERVICE, promoted, (await platform.getService(SERVICE))?.etag ?? first.etag);
      const rolledBack = [{ revision: `${SERVICE}-v1`, percent: 100 }];
      await platform.setTraffic(SERVICE, rolledBack, read!.etag);
      // A tag for v2 at 0%, expressed on whatever the service serves when it is applied.
      const tagged = await platform.setTraffic(
        SERVICE,
        (current) => [
          ...current.traffic.filter((target) => target.revision !== `${SERVICE}-v2`),
          { revision: `${SERVICE}-v2`, percent: 0, tag: 'preview' },
        ],
        read!.etag,
      );
      assert.deepEqual(tagged?.traffic, [...rolledBack, { revision: `${SERVICE}-v2`, percent: 0, tag: 'preview' }]);
    });

    it('gives up on traffic after a bounded number of concurrent changes, as a conflict', async () => {
      const service = await deployed();
      await platform.deployRevision(SERVICE, { image: `${IMAGE}:2`, revisionName: `${SERVICE}-v2`, noTraffic: true });
      const fresh = await platform.getService(SERVICE);
      fixture.concurrentWrites(100);
      await assert.rejects(
        platform.setTraffic(SERVICE, [{ revision: `${SERVICE}-v2`, percent: 100 }], fresh!.etag),
        failsWith('CONFLICT', 2),
      );
      fixture.concurrentWrites(0);
      assert.deepEqual((await platform.getService(SERVICE))?.traffic, [
        { revision: service.traffic[0]!.revision, percent: 100 },
        { revision: `${SERVICE}-v2`, percent: 0 },
      ]);
    });

    it('starts a job execution with the overrides given, and reports it done with its counts', async () => {
      await fixture.createJob(JOB);
      const { execution } = await platform.runJob(JOB, {
        args: ['job', 'run', 'p_usage_daily'],
        env: { CONVERGENCE_ENV: 'cloud' },
        taskCount: 2,
        timeoutSeconds: 900,
      });
      assert.ok(execution.startsWith(`${JOB}-`), `a short execution id, got ${execution}`);
      assert.deepEqual(fixture.startedExecutions(), [
        { args: ['job', 'run', 'p_usage_daily'], env: { CONVERGENCE_ENV: 'cloud' }, taskCount: 2, timeoutSeconds: 900 },
      ]);
      const info = await platform.getExecution(JOB, execution);
      assert.deepEqual(
        { ...info, logUri: typeof info.logUri, message: typeof info.message },
        {
          name: execution,
          job: JOB,
          state: 'SUCCEEDED',
          taskCount: 2,
          succeededCount: 2,
          failedCount: 0,
          cancelledCount: 0,
          logUri: 'string',
          message: 'string',
        },
      );
    });

    it('reports an execution RUNNING until the platform finishes it', async () => {
      await fixture.createJob(JOB);
      fixture.executionsEnd({ looksBeforeDone: 3 });
      const { execution } = await platform.runJob(JOB, {});
      assert.equal((await platform.getExecution(JOB, execution)).state, 'RUNNING');
      assert.equal((await platform.getExecution(JOB, execution)).state, 'RUNNING');
      assert.equal((await platform.getExecution(JOB, execution)).state, 'SUCCEEDED');
    });

    it('reports failed and cancelled executions with their counts and message', async () => {
      await fixture.createJob(JOB);
      // An execution is still running when runJob returns, as on Cloud Run: it ends on the first look.
      fixture.executionsEnd({ failed: 1, message: 'Task failed: exit code 3', looksBeforeDone: 1 });
      const failed = await platform.getExecution(JOB, (await platform.runJob(JOB, { taskCount: 3 })).execution);
      assert.deepEqual(
        [failed.state, failed.succeededCount, failed.failedCount, failed.cancelledCount, failed.message],
        ['FAILED', 2, 1, 0, 'Task failed: exit code 3'],
      );
      fixture.executionsEnd({ cancelled: 1, looksBeforeDone: 1 });
      const cancelled = await platform.getExecution(JOB, (await platform.runJob(JOB, {})).execution);
      assert.deepEqual([cancelled.state, cancelled.cancelledCount], ['CANCELLED', 1]);
    });

    it('reads an execution whose Completed condition failed as FAILED even when no task is counted failed', async () => {
      await fixture.createJob(JOB);
      fixture.executionsEnd({ failedBeforeAnyTask: true, message: 'The container image could not be pulled.', looksBeforeDone: 1 });
      const info = await platform.getExecution(JOB, (await platform.runJob(JOB, { taskCount: 2 })).execution);
      assert.deepEqual(
        [info.state, info.succeededCount, info.failedCount, info.cancelledCount, info.message],
        ['FAILED', 0, 0, 0, 'The container image could not be pulled.'],
      );
    });

    it('applies service settings to the revision and the service, and reads them back', async () => {
      const settings = {
        serviceAccount: 'api@contract-project.iam.gserviceaccount.com',
        cpu: '2',
        memory: '1Gi',
        minInstances: 1,
        maxInstances: 4,
        concurrency: 20,
        timeoutSeconds: 90,
        ingress: 'INGRESS_TRAFFIC_INTERNAL_ONLY',
        public: true,
      };
      const created = await platform.deployRevision(SERVICE, { image: `${IMAGE}:1`, noTraffic: false, settings });
      assert.deepEqual(created.service?.settings, settings);
      // A later deploy that names only some settings keeps the others.
      const next = await platform.deployRevision(SERVICE, {
        image: `${IMAGE}:2`,
        revisionName: `${SERVICE}-v2`,
        noTraffic: false,
        settings: { memory: '2Gi', public: false },
      });
      assert.deepEqual(next.service?.settings, { ...settings, memory: '2Gi', public: false });
    });

    it('creates the pipeline job, then updates its image and settings and keeps what it is not given', async () => {
      assert.equal(await platform.getJob(JOB), undefined);
      assert.equal(await platform.applyJob(JOB, { image: `${IMAGE}:1` }, { validateOnly: true }), undefined);
      assert.equal(await platform.getJob(JOB), undefined, 'validateOnly creates nothing');
      const created = await platform.applyJob(JOB, {
        image: `${IMAGE}:1`,
        serviceAccount: 'jobs@contract-project.iam.gserviceaccount.com',
        cpu: '2',
        memory: '2Gi',
        taskTimeoutSeconds: 3600,
        maxRetries: 1,
      });
      assert.equal(created?.name, JOB);
      const updated = await platform.applyJob(JOB, { image: `${IMAGE}:2`, maxRetries: 0 });
      assert.deepEqual(
        { ...updated, etag: undefined },
        {
          name: JOB,
          etag: undefined,
          image: `${IMAGE}:2`,
          serviceAccount: 'jobs@contract-project.iam.gserviceaccount.com',
          cpu: '2',
          memory: '2Gi',
          taskTimeoutSeconds: 3600,
          maxRetries: 0,
        },
      );
      assert.notEqual(updated?.etag, created?.etag);
    });

    it('keeps the other containers and settings of a job created outside convergence', async () => {
      await fixture.createJob(JOB);
      const before = await platform.getJob(JOB);
      assert.ok(before);
      const after = await platform.applyJob(JOB, { image: `${IMAGE}:9` });
      assert.deepEqual({ ...after, etag: undefined }, { ...before, image: `${IMAGE}:9`, etag: undefined });
    });

    it('answers not found (exit 8) for a job or execution that does not exist', async () => {
      await assert.rejects(platform.runJob('no-such-job', {}), failsWith('NOT_FOUND', 8));
      await fixture.createJob(JOB);
      await assert.rejects(platform.getExecution(JOB, `${JOB}-zzzzz`), failsWith('NOT_FOUND', 8));
      assert.deepEqual(fixture.startedExecutions(), []);
    });
  });
}
