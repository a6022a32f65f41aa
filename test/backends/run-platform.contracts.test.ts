/**
 * The RunPlatform contract against GcpRunPlatform wired as the backend factory wires it (its own
 * client factory, closed by close()), with the official @google-cloud/run clients over a real
 * socket to the Cloud Run fake.
 */
import '../fakes/env-guard.ts';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpRunPlatform } from '../../src/backends/run-platform/gcp.ts';
import { runPlatformContract, type ExecutionEnding, type StartedExecution } from '../contracts/run-platform.contract.ts';
import { RunFake } from '../fakes/grpc/run.ts';
import { startGrpcFake } from '../fakes/grpc/server.ts';

const PROJECT = 'contract-project';
const REGION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

type Message = Record<string, unknown>;

/** Literal env of a container as Run stores it. */
const envOf = (container: Message): Record<string, string> =>
  Object.fromEntries(((container.env ?? []) as Message[]).map((variable) => [String(variable.name), String(variable.value ?? '')]));

runPlatformContract('Cloud Run (gRPC fake)', async () => {
  const run = new RunFake();
  const grpc = await startGrpcFake({ run });
  const clients = createGcpClients({ project: PROJECT, location: 'US', region: REGION }, { [ENDPOINT_VARS.grpc]: grpc.address });
  const started: StartedExecution[] = [];
  let ending: ExecutionEnding = {};
  run.onRunJob((call) => {
    started.push({ args: call.args, env: call.env, taskCount: call.taskCount, timeoutSeconds: call.timeoutSeconds });
    const { looksBeforeDone, ...counts } = ending;
    return { ...counts, ...(looksBeforeDone === undefined ? {} : { polls: looksBeforeDone }) };
  });
  return {
    subject: new GcpRunPlatform(clients),
    createJob: async (job) => {
      const jobs = await clients.runJobs();
      const [operation] = await jobs.createJob({
        parent: PARENT,
        jobId: job,
        job: { template: { template: { containers: [{ image: 'us-docker.pkg.dev/contract-project/convergence/convergence:1' }] } } },
      });
      await operation.promise();
    },
    failNextRevision: () => run.failNextRevision(),
    concurrentWrites: (times) => run.setEtagConflict(times),
    executionsEnd: (next) => {
      ending = next;
    },
    startedExecutions: () => [...started],
    container: (service) => {
      const found = run.service(`${PARENT}/services/${service}`);
      const container = ((found?.template as Message | undefined)?.containers as Message[] | undefined)?.[0];
      return container && { image: String(container.image), args: (container.args as string[]).map(String), env: envOf(container) };
    },
    cleanup: () => grpc.stop(),
  };
});
