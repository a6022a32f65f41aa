/**
 * Cloud Run Admin API v2 as the deploy, rollback and remote-run code meets it: Services and
 * Revisions (run-services.ts), Jobs and Executions (run-jobs.ts), both built on the same
 * resource handling (run-collection.ts), their long-running operations
 * (operations.ts, served from `run.operations`), per-project IAM permissions, and the hooks
 * tests steer it with:
 *   failNextRevision()     the next revision created never turns ready
 *   setEtagConflict(n)     the next n UpdateService calls that carry an etag meet a concurrent writer
 *   onRunJob(handler)      decides how each execution ends, and sees the overrides it ran with
 *   setExecutionPolls(n)   executions complete on their Nth look instead of at once
 *   forwardLogs(sink)      the lines an onRunJob handler's container writes go to Cloud Logging
 *   operations.setPolls(n) every other operation completes on its Nth poll
 *   requests(method)       the calls that reached the fake, oldest first
 * Names in responses carry the project as the request spelled it.
 */
import { RunPolicies } from './run-iam.ts';
import { currentCaller } from './caller.ts';
import type { ContainerLogSink } from './logging.ts';
import { OperationsFake } from './operations.ts';
import { denied, RUN_PERMISSIONS, RUN_PROTOS, type Message } from './run-common.ts';
import { RunJobs, type RunJobHandler } from './run-jobs.ts';
import { NOT_READY_MESSAGE, RunServices } from './run-services.ts';
import type { FakeService, ServiceBinding } from './server.ts';

export type { RunJobCall, RunJobHandler, RunJobOutcome } from './run-jobs.ts';
export { RUN_PERMISSIONS } from './run-common.ts';

export interface RunRequest {
  /** google.cloud.run.v2.Services, ... */
  service: string;
  method: string;
  request: Record<string, unknown>;
}

export class RunFake implements FakeService {
  /** Served by the gRPC fake together with Run (register `run`; `operations` only when shared). */
  readonly operations: OperationsFake;
  /** Permissions the caller holds everywhere; tests remove some to see PERMISSION_DENIED. */
  granted = new Set<string>(RUN_PERMISSIONS);
  /** Permissions of service accounts calling with their own token (see caller.ts); none unless granted. */
  readonly grantedTo = new Map<string, Set<string>>();
  /** IAM policies of services and jobs; a service account also holds what its roles there grant. */
  readonly policies = new RunPolicies();
  readonly #services: RunServices;
  readonly #jobs: RunJobs;
  readonly #log: RunRequest[] = [];
  #lastTime = 0;

  constructor(options: { operations?: OperationsFake } = {}) {
    this.operations = options.operations ?? new OperationsFake();
    const ctx = {
      operations: this.operations,
      require: (permission: string, resource: string) => {
        if (this.#callerHolds().has(permission)) return;
        const caller = currentCaller();
        if (caller === undefined || !this.policies.grants(caller, resource, permission)) throw denied(permission, resource);
      },
      policies: this.policies,
      now: () => {
        this.#lastTime = Math.max(Date.now(), this.#lastTime + 1);
        return new Date(this.#lastTime);
      },
    };
    this.#services = new RunServices(ctx);
    this.#jobs = new RunJobs(ctx);
  }

  /** The next revision created fails its health check; its deploy operation ends in FAILED_PRECONDITION. */
  failNextRevision(message: string = NOT_READY_MESSAGE): void {
    this.#services.failNextRevision(message);
  }

  /**
   * The next `times` UpdateService calls that send an etag find the service changed by someone
   * else (its etag moves on) and fail with ABORTED, even when the etag they sent was current.
   */
  setEtagConflict(times: number): void {
    this.#services.setEtagConflict(times);
  }

  /** Scripts how executions end (default: every task succeeds); undefined restores the default. */
  onRunJob(handler: RunJobHandler | undefined): void {
    this.#jobs.onRunJob(handler);
  }

  /** Where the containers' output goes (RunJobCall.output), as Run sends it to Cloud Logging; undefined drops it. */
  forwardLogs(sink: ContainerLogSink | undefined): void {
    this.#jobs.forwardLogs(sink);
  }

  /** Looks (GetExecution or a poll of the RunJob operation) before an execution completes; 0 = at once. */
  setExecutionPolls(polls: number): void {
    this.#jobs.setExecutionPolls(polls);
  }

  /** Calls that reached the fake (injected faults answered by the server are not here). */
  requests(method?: string): RunRequest[] {
    return this.#log.filter((entry) => method === undefined || entry.method === method);
  }

  /** A service as GetService would answer it, for assertions behind the client. */
  service(name: string): Message | undefined {
    return this.#services.peek(name);
  }

  /** A service's revisions, newest first. */
  revisions(serviceName: string): Message[] {
    return this.#services.peekRevisions(serviceName);
  }

  job(name: string): Message | undefined {
    return this.#jobs.peek(name);
  }

  /** A job's executions, newest first, without advancing them. */
  executions(jobName: string): Message[] {
    return this.#jobs.peekExecutions(jobName);
  }

  iamPermissions(resource: string): ReadonlySet<string> | undefined {
    return this.#services.owns(resource) || this.#jobs.owns(resource) ? this.#callerHolds() : undefined;
  }

  /** The operator's permissions, or those granted to the service account calling. */
  #callerHolds(): ReadonlySet<string> {
    const caller = currentCaller();
    return caller === undefined ? this.granted : (this.grantedTo.get(caller) ?? new Set());
  }

  bindings(): ServiceBinding[] {
    const binding = (service: string, handlers: Record<string, (request: Message) => unknown>): ServiceBinding => ({
      protos: RUN_PROTOS,
      service,
      handlers: Object.fromEntries(
        Object.entries(handlers).map(([method, handler]) => [
          method,
          (request: Message) => {
            this.#log.push({ service, method, request });
            return handler(request);
          },
        ]),
      ),
    });
    return [
      binding('google.cloud.run.v2.Services', this.#services.servicesHandlers()),
      binding('google.cloud.run.v2.Revisions', this.#services.revisionsHandlers()),
      binding('google.cloud.run.v2.Jobs', this.#jobs.jobsHandlers()),
      binding('google.cloud.run.v2.Executions', this.#jobs.executionsHandlers()),
    ];
  }
}
