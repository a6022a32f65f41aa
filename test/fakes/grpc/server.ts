/**
 * One in-process gRPC server that stands in for the Google APIs the gcp adapters call over gRPC.
 * Tests start it on 127.0.0.1:0 and point the official clients at it; every service is a
 * separate module (kms.ts, secret-manager.ts, ...) that implements FakeService, so adding an API
 * means writing one module and one line in FakeServices.
 *
 * The server adds what every service needs: a request log, fault injection (status codes,
 * delays, response rewrites) and the shared google.iam.v1.IAMPolicy service, which Google serves
 * at each API's endpoint and which the fake routes to the module that owns the resource.
 *
 * Adding an API (Cloud Run, Scheduler, ...):
 *   1. `<api>.ts`: a class implementing FakeService that holds the API's state; bindings() names
 *      the client's protos.json (protosJsonOf('@google-cloud/run')), the fully qualified service
 *      (google.cloud.run.v2.Services) and handlers by proto method name. Handlers get the request
 *      decoded like gax decodes (camelCase, enum names, int64 as strings) and return a plain
 *      object; they throw FakeStatus for errors, with an ErrorInfo where Google sends one.
 *   2. An optional key for it in FakeServices below.
 * A service several APIs share is registered once: IAMPolicy routes by resource (iam.ts); the
 * same goes for google.longrunning.Operations if more than one module starts operations.
 * Handlers run even when the client gave up waiting (delayMs past its deadline), as a real
 * server would, so state changes of a "timed out" call still happen.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { asCaller } from './caller.ts';
import { iamBinding } from './iam.ts';
import type { FakePolicy } from './iam-policy.ts';
import { serviceDefinition } from './protos.ts';
import type { KmsFake } from './kms.ts';
import type { LoggingFake } from './logging.ts';
import type { LogMetricsFake } from './logging-metrics.ts';
import type { MonitoringFake } from './monitoring.ts';
import type { OperationsFake } from './operations.ts';
import type { PubSubFake } from './pubsub.ts';
import type { ResourceManagerFake } from './resource-manager.ts';
import type { RunFake } from './run.ts';
import type { SchedulerFake } from './scheduler.ts';
import type { SecretManagerFake } from './secret-manager.ts';
import type { ServiceUsageFake } from './service-usage.ts';
import type { ArtifactRegistryFake } from './artifact-registry.ts';
import { FakeStatus, status, toServiceError, type ErrorInfo, type GrpcCode } from './status.ts';

export type Handler = (request: Record<string, unknown>, call: CallInfo) => unknown;

export interface CallInfo {
  /** google.cloud.kms.v1.KeyManagementService */
  service: string;
  /** Encrypt */
  method: string;
}

export interface ServiceBinding {
  /** Absolute path of the protos.json that defines the service (see protosJsonOf). */
  protos: string;
  /** Fully qualified service name, e.g. google.cloud.kms.v1.KeyManagementService. */
  service: string;
  /** Handlers by proto method name; methods left out answer UNIMPLEMENTED like an old server. */
  handlers: Record<string, Handler>;
}

/** What a service module gives the server. */
export interface FakeService {
  bindings(): ServiceBinding[];
  /**
   * IAM permissions the caller holds on `resource`, when this module owns it; undefined when the
   * resource is not this module's. Throw FakeStatus (NOT_FOUND) for a resource it owns but lacks.
   */
  iamPermissions?(resource: string): ReadonlySet<string> | undefined;
  /**
   * The IAM policy of `resource` (GetIamPolicy / SetIamPolicy), when this module owns it; the
   * module throws PERMISSION_DENIED itself when the caller may not `access` it.
   */
  iamPolicy?(resource: string, access: 'get' | 'set'): FakePolicy | undefined;
}

/** The services a test can plug in. */
export interface FakeServices {
  kms?: KmsFake;
  secretManager?: SecretManagerFake;
  /** Cloud Run Admin API v2; its operations are served from `run.operations`. */
  run?: RunFake;
  scheduler?: SchedulerFake;
  /** google.longrunning.Operations on its own; when given with `run` it must be `run.operations`. */
  operations?: OperationsFake;
  /** google.pubsub.v1.Publisher, for notification topics. */
  pubsub?: PubSubFake;
  /** google.logging.v2.LoggingServiceV2: log entries, e.g. what Run forwards from job containers. */
  logging?: LoggingFake;
  /** google.logging.v2.MetricsServiceV2: log-based metrics. */
  logMetrics?: LogMetricsFake;
  /** Cloud Monitoring v3: alert policies, notification channels, uptime checks. */
  monitoring?: MonitoringFake;
  /** Resource Manager v3 Projects: project IAM policies. */
  resourceManager?: ResourceManagerFake;
  /** Service Usage: enabled APIs; its operations are served by the OperationsFake it was made with (register that too). */
  serviceUsage?: ServiceUsageFake;
  /** Artifact Registry repositories; operations as for serviceUsage. */
  artifactRegistry?: ArtifactRegistryFake;
}

export interface Fault {
  /** Short method name ('Encrypt'), full path ('google.cloud.kms.v1.KeyManagementService/Encrypt'), or a RegExp on the full path. */
  method: string | RegExp;
  /** Status to answer with instead of running the handler; without it the handler runs (after delayMs). */
  code?: GrpcCode;
  message?: string;
  errorInfo?: ErrorInfo;
  /** How many matching calls this fault applies to (default 1). Use Infinity for "until cleared". */
  times?: number;
  /** Wait before answering, e.g. to exceed the client's deadline. */
  delayMs?: number;
  /** Rewrite a successful response (integrity checks, odd shapes). */
  mutate?: (response: Record<string, unknown>) => Record<string, unknown>;
}

export interface LoggedCall {
  service: string;
  method: string;
  request: Record<string, unknown>;
  /** Status the call ended with (0 = OK). */
  code: number;
  /** True when an injected fault decided the outcome. */
  injected: boolean;
}

export interface GrpcFake {
  port: number;
  /** host:port, the form CONVERGENCE_GRPC_ENDPOINT takes. */
  address: string;
  inject(fault: Fault): void;
  clearFaults(): void;
  /** Every call so far, oldest first; filter by short method name. */
  calls(method?: string): LoggedCall[];
  stop(): Promise<void>;
}

interface ActiveFault extends Fault {
  remaining: number;
}

const matches = (fault: Fault, service: string, method: string) =>
  typeof fault.method === 'string'
    ? fault.method === method || fault.method === `${service}/${method}`
    : fault.method.test(`${service}/${method}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startGrpcFake(services: FakeServices): Promise<GrpcFake> {
  const server = new Server();
  const faults: ActiveFault[] = [];
  const log: LoggedCall[] = [];
  // A module that starts operations brings its store; listing it twice registers it once.
  const modules = [...new Set([...Object.values(services), services.run?.operations])].filter(
    (module): module is FakeService => module !== undefined,
  );

  const takeFault = (service: string, method: string): ActiveFault | undefined => {
    const fault = faults.find((candidate) => candidate.remaining > 0 && matches(candidate, service, method));
    if (fault) fault.remaining -= 1;
    return fault;
  };

  const wrap =
    (service: string, method: string, handler: Handler) =>
    async (call: ServerUnaryCall<Record<string, unknown>, unknown>, callback: sendUnaryData<unknown>) => {
      const entry: LoggedCall = { service, method, request: call.request, code: status.OK, injected: false };
      log.push(entry);
      const fault = takeFault(service, method);
      try {
        if (fault?.delayMs) await sleep(fault.delayMs);
        if (fault?.code !== undefined) {
          entry.injected = true;
          throw new FakeStatus(fault.code, fault.message ?? `injected ${fault.code} for ${method}`, fault.errorInfo);
        }
        const authorization = call.metadata.get('authorization')[0]?.toString();
        let response = (await asCaller(authorization, () => handler(call.request, { service, method }))) as Record<string, unknown>;
        if (fault?.mutate) {
          entry.injected = true;
          response = fault.mutate(response);
        }
        callback(null, response);
      } catch (err) {
        const failure =
          err instanceof FakeStatus ? err : new FakeStatus(status.INTERNAL, `fake handler crashed: ${(err as Error).message}`);
        entry.code = failure.code;
        callback(toServiceError(failure.code, failure.message, failure.errorInfo));
      }
    };

  const bindings = [...modules.flatMap((module) => module.bindings()), ...iamBinding(modules)];
  const seen = new Set<string>();
  for (const binding of bindings) {
    if (seen.has(binding.service)) throw new Error(`two fake modules serve ${binding.service}; route inside one module instead`);
    seen.add(binding.service);
    const definition = serviceDefinition(binding.protos, binding.service);
    const implementation: UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(binding.handlers)) {
      if (!(method in definition)) throw new Error(`${binding.service} has no method ${method}`);
      implementation[method] = wrap(binding.service, method, handler);
    }
    server.addService(definition, implementation);
  }

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );

  return {
    port,
    address: `127.0.0.1:${port}`,
    inject: (fault) => faults.push({ ...fault, remaining: fault.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    calls: (method) => log.filter((entry) => method === undefined || entry.method === method),
    stop: () =>
      new Promise<void>((resolve) => {
        // A client that never closed its channel would hold tryShutdown open; force it after a grace period.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
