/**
 * The Cloud Run fake's jobs and executions, driven through the official @google-cloud/run clients
 * over a real socket the way remote runs drive them: RunJob overrides, executions that end over
 * several looks, failures, cancellation, and the onRunJob hook.
 */
import type { protos } from '@google-cloud/run';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunJobCall } from './run.ts';
import { executions, fails, jobs, nextId, PARENT, run, shortName, useRunFake } from './run-harness.ts';
import { accessTokenFor } from './caller.ts';
import { status } from './status.ts';

useRunFake();

describe('Cloud Run jobs and executions', () => {
  const jobName = (id: string) => `${PARENT}/jobs/${id}`;

  async function createJob(
    id: string,
    containers: protos.google.cloud.run.v2.IContainer[] = [
      { image: 'registry/job:1', args: ['job', 'run-pipeline'], env: [{ name: 'MODE', value: 'headless' }] },
    ],
  ) {
    const [operation] = await jobs.createJob({ parent: PARENT, jobId: id, job: { template: { template: { containers } } } });
    await operation.promise();
    const [job] = await jobs.getJob({ name: jobName(id) });
    return job;
  }

  it('creates, gets, lists, updates (etag checked) and deletes jobs, with Run’s defaults filled in', async () => {
    const id = nextId('job');
    const job = await createJob(id);
    assert.equal(job.template?.taskCount, 1);
    assert.equal(job.template?.template?.maxRetries, 3);
    assert.equal(job.template?.template?.timeout?.seconds, '600');
    assert.equal(job.generation, '1');
    assert.equal(job.terminalCondition?.state, 'CONDITION_SUCCEEDED');
    await assert.rejects(createJob(id), fails(status.ALREADY_EXISTS));

    const [listed] = await jobs.listJobs({ parent: PARENT });
    assert.ok(listed.some((item) => item.name === jobName(id)));

    const stale = { ...job };
    job.template!.template!.containers![0]!.image = 'registry/job:2';
    const [update] = await jobs.updateJob({ job });
    await update.promise();
    const [updated] = await jobs.getJob({ name: jobName(id) });
    assert.equal(updated.generation, '2');
    assert.equal(updated.template?.template?.containers?.[0]?.image, 'registry/job:2');
    await assert.rejects(jobs.updateJob({ job: stale }), fails(status.ABORTED));

    const [removal] = await jobs.deleteJob({ name: jobName(id) });
    await removal.promise();
    await assert.rejects(jobs.getJob({ name: jobName(id) }), fails(status.NOT_FOUND, /of kind 'JOB'/));
  });

  it('passes RunJob overrides (args, env, task count, timeout) to the onRunJob hook and succeeds by default', async () => {
    const id = nextId('job');
    await createJob(id);
    const seen: RunJobCall[] = [];
    run.onRunJob((call) => void seen.push(call));
    const [operation] = await jobs.runJob({
      name: jobName(id),
      overrides: {
        containerOverrides: [
          {
            args: ['job', 'run-pipeline', '--tenant', 'acme_corp'],
            env: [
              { name: 'RUN_ID', value: 'r-1' },
              { name: 'MODE', value: 'remote' },
            ],
          },
        ],
        taskCount: 3,
        timeout: { seconds: 1800 },
      },
    });
    const [execution] = await operation.promise();
    const call = seen[0]!;
    assert.deepEqual(call.args, ['job', 'run-pipeline', '--tenant', 'acme_corp']);
    assert.deepEqual(call.env, { MODE: 'remote', RUN_ID: 'r-1' });
    assert.equal(call.taskCount, 3);
    assert.equal(call.timeoutSeconds, 1800);
    assert.equal(call.job, jobName(id));
    assert.deepEqual(call.tasks[2]?.env, {
      MODE: 'remote',
      RUN_ID: 'r-1',
      CLOUD_RUN_JOB: id,
      CLOUD_RUN_EXECUTION: shortName(call.execution),
      CLOUD_RUN_TASK_INDEX: '2',
      CLOUD_RUN_TASK_ATTEMPT: '0',
      CLOUD_RUN_TASK_COUNT: '3',
    });
    assert.match(shortName(call.execution), new RegExp(`^${id}-[a-z0-9]{5}$`));

    const [fetched] = await executions.getExecution({ name: call.execution });
    assert.equal((execution as protos.google.cloud.run.v2.IExecution).name, call.execution);
    assert.equal(fetched.taskCount, 3);
    assert.equal(fetched.succeededCount, 3);
    assert.equal(fetched.failedCount, 0);
    assert.ok(fetched.completionTime?.seconds);
    assert.match(String(fetched.logUri), /^https:\/\/console\.cloud\.google\.com\/logs\/viewer\?project=demo-project/);
    assert.equal(fetched.conditions?.find((item) => item.type === 'Completed')?.state, 'CONDITION_SUCCEEDED');
    assert.equal(fetched.template?.containers?.[0]?.args?.at(-1), 'acme_corp');
    assert.equal(fetched.template?.timeout?.seconds, '1800');
    const [job] = await jobs.getJob({ name: jobName(id) });
    assert.equal(job.executionCount, 1);
    assert.equal(job.latestCreatedExecution?.name, call.execution);
    assert.equal(job.latestCreatedExecution?.completionStatus, 'EXECUTION_SUCCEEDED');
  });

  it('moves an execution from running to completed over N looks, so a --wait loop has something to follow', async () => {
    const id = nextId('job');
    await createJob(id);
    run.setExecutionPolls(3);
    run.onRunJob(() => ({ logUri: 'https://logs.example/run-1' }));
    const [operation] = await jobs.runJob({ name: jobName(id) });
    assert.equal(operation.done, false);
    const name = String((operation.metadata as protos.google.cloud.run.v2.IExecution).name);
    const states: string[] = [];
    for (let look = 0; look < 10; look += 1) {
      const [execution] = await executions.getExecution({ name });
      states.push(`${execution.runningCount}/${execution.succeededCount}/${execution.completionTime ? 'done' : 'running'}`);
      if (execution.completionTime) {
        assert.equal(execution.logUri, 'https://logs.example/run-1');
        break;
      }
    }
    assert.deepEqual(states, ['1/0/running', '1/0/running', '0/1/done']);
    const [result] = await operation.promise();
    assert.equal((result as protos.google.cloud.run.v2.IExecution).name, name);
  });

  it('polls the RunJob operation to the end of the execution and fails it when tasks fail', async () => {
    const id = nextId('job');
    await createJob(id);
    run.setExecutionPolls(2);
    run.onRunJob(() => ({ failed: 1, message: 'Task failed: exit code 3' }));
    const [operation] = await jobs.runJob({ name: jobName(id), overrides: { taskCount: 2 } });
    assert.equal(operation.done, false);
    await assert.rejects(operation.promise(), fails(status.FAILED_PRECONDITION, /1 of 2 tasks failed/));
    assert.equal(run.operations.pollCount(String(operation.name)), 2);
    const [listed] = await executions.listExecutions({ parent: jobName(id) });
    assert.equal(listed[0]?.failedCount, 1);
    assert.equal(listed[0]?.succeededCount, 1);
    const completed = listed[0]?.conditions?.find((item) => item.type === 'Completed');
    assert.equal(completed?.state, 'CONDITION_FAILED');
    assert.equal(completed?.executionReason, 'NON_ZERO_EXIT_CODE');
    assert.equal(completed?.message, 'Task failed: exit code 3');
    const [job] = await jobs.getJob({ name: jobName(id) });
    assert.equal(job.latestCreatedExecution?.completionStatus, 'EXECUTION_FAILED');
  });

  it('cancels a running execution; its RunJob operation then ends without an error', async () => {
    const id = nextId('job');
    await createJob(id);
    run.setExecutionPolls(50);
    const [operation] = await jobs.runJob({ name: jobName(id), overrides: { taskCount: 4 } });
    const name = String((operation.metadata as protos.google.cloud.run.v2.IExecution).name);
    const [cancel] = await executions.cancelExecution({ name });
    await cancel.promise();
    const [cancelled] = await executions.getExecution({ name });
    assert.equal(cancelled.cancelledCount, 4);
    assert.equal(cancelled.conditions?.find((item) => item.type === 'Completed')?.executionReason, 'CANCELLED');
    const [result] = await operation.promise();
    assert.equal((result as protos.google.cloud.run.v2.IExecution).cancelledCount, 4);
    await assert.rejects(executions.cancelExecution({ name }), fails(status.FAILED_PRECONDITION, /already completed/));
  });

  it('lists executions newest first', async () => {
    const id = nextId('job');
    await createJob(id);
    const names: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const [operation] = await jobs.runJob({ name: jobName(id) });
      names.push(String((operation.metadata as protos.google.cloud.run.v2.IExecution).name));
    }
    const [listed] = await executions.listExecutions({ parent: jobName(id) });
    assert.deepEqual(
      listed.map((execution) => execution.name),
      names.reverse(),
    );
  });

  it('refuses overrides Run would refuse and requires run.jobs.runWithOverrides for them', async () => {
    const id = nextId('job');
    await createJob(id);
    await assert.rejects(
      jobs.runJob({ name: jobName(id), overrides: { containerOverrides: [{ name: 'sidecar', args: ['x'] }] } }),
      fails(status.INVALID_ARGUMENT, /has no container named 'sidecar'/),
    );
    await assert.rejects(
      jobs.runJob({ name: jobName(id), overrides: { containerOverrides: [{ env: [{ name: 'CLOUD_RUN_TASK_INDEX', value: '9' }] }] } }),
      fails(status.INVALID_ARGUMENT, /reserved env names/),
    );
    await assert.rejects(
      jobs.runJob({ name: jobName(id), overrides: { taskCount: 20_000 } }),
      fails(status.INVALID_ARGUMENT, /task_count/),
    );
    run.granted.delete('run.jobs.runWithOverrides');
    await assert.rejects(
      jobs.runJob({ name: jobName(id), overrides: { taskCount: 2 } }),
      fails(status.PERMISSION_DENIED, /run\.jobs\.runWithOverrides/),
    );
    const [plain] = await jobs.runJob({ name: jobName(id) });
    await plain.promise();
    await assert.rejects(jobs.runJob({ name: jobName('absent') }), fails(status.NOT_FOUND));
  });

  it('answers each caller with its own grants: a service account token runs the job only as far as that account may', async () => {
    const id = nextId('job');
    await createJob(id);
    const account = 'scheduler@demo-project.iam.gserviceaccount.com';
    const as = (email: string) => ({ otherArgs: { headers: { authorization: `Bearer ${accessTokenFor(email)}` } } });
    const withOverrides = { name: jobName(id), overrides: { containerOverrides: [{ args: ['job', 'dispatch'] }] } };
    const asked = async (email: string) =>
      (await jobs.testIamPermissions({ resource: jobName(id), permissions: ['run.jobs.run', 'run.jobs.runWithOverrides'] }, as(email)))[0]
        .permissions;
    // An account with no grant holds nothing, whatever the operator holds; asking needs no permission.
    assert.deepEqual(await asked(account), []);
    await assert.rejects(jobs.runJob({ name: jobName(id) }, as(account)), fails(status.PERMISSION_DENIED, /run\.jobs\.run'/));
    // roles/run.invoker: a plain run, but not with overrides.
    run.grantedTo.set(account, new Set(['run.jobs.run']));
    assert.deepEqual(await asked(account), ['run.jobs.run']);
    await (await jobs.runJob({ name: jobName(id) }, as(account)))[0].promise();
    await assert.rejects(jobs.runJob(withOverrides, as(account)), fails(status.PERMISSION_DENIED, /run\.jobs\.runWithOverrides/));
    // roles/run.developer: overrides too.
    run.grantedTo.set(account, new Set(['run.jobs.run', 'run.jobs.runWithOverrides']));
    await (await jobs.runJob(withOverrides, as(account)))[0].promise();
    // The operator (no token) keeps its own grants.
    assert.deepEqual(
      (await jobs.testIamPermissions({ resource: jobName(id), permissions: ['run.jobs.runWithOverrides'] }))[0].permissions,
      ['run.jobs.runWithOverrides'],
    );
    run.grantedTo.delete(account);
  });
});
