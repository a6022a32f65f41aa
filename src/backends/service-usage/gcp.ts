import type { protos } from '@google-cloud/service-usage';
import type { GcpClients } from '../gcp/clients.ts';
import { toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { ServiceUsage } from './port.ts';

type IBatchEnableResponse = protos.google.api.serviceusage.v1.IBatchEnableServicesResponse;

const SERVICE_USAGE_API = 'serviceusage.googleapis.com';
/** Google's limits: services per BatchEnableServices, names per BatchGetServices. */
const ENABLE_BATCH = 20;
const GET_BATCH = 30;

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size));

/** The service id a service resource name ends with: projects/123/services/run.googleapis.com → run.googleapis.com. */
const serviceId = (name: string | null | undefined) => String(name ?? '').replace(/^.*\/services\//, '');

export class GcpServiceUsage implements ServiceUsage {
  readonly project: string;
  readonly #clients: GcpClients;
  readonly #timeoutMs: number;

  constructor(clients: GcpClients, options: { timeoutMs?: number } = {}) {
    this.#clients = clients;
    this.project = clients.target.project;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  get #parent() {
    return `projects/${this.project}`;
  }

  async disabled(services: readonly string[]): Promise<string[]> {
    const client = await this.#clients.serviceUsage();
    const enabled = new Set<string>();
    for (const batch of chunks(services, GET_BATCH)) {
      try {
        const names = batch.map((service) => `${this.#parent}/services/${service}`);
        const [response] = await retryTransient(() => client.batchGetServices({ parent: this.#parent, names }, this.#call()));
        for (const service of response.services ?? []) if (service.state === 'ENABLED') enabled.add(serviceId(service.name));
      } catch (err) {
        throw this.#error(
          err,
          `the APIs enabled in project ${this.project}`,
          'serviceusage.services.get',
          'roles/serviceusage.serviceUsageViewer',
        );
      }
    }
    return services.filter((service) => !enabled.has(service));
  }

  async enable(services: readonly string[]): Promise<void> {
    const client = await this.#clients.serviceUsage();
    for (const batch of chunks(services, ENABLE_BATCH)) {
      const what = `enabling ${batch.join(', ')} in project ${this.project}`;
      let response: IBatchEnableResponse;
      try {
        // Enabling is idempotent on Google's side, so a retried call cannot do harm.
        const [operation] = await retryTransient(() =>
          client.batchEnableServices({ parent: this.#parent, serviceIds: batch }, this.#call()),
        );
        [response] = await operation.promise();
      } catch (err) {
        throw this.#error(err, what, 'serviceusage.services.enable', 'roles/serviceusage.serviceUsageAdmin');
      }
      const failures = response.failures ?? [];
      if (failures.length > 0) {
        const listed = failures.map((failure) => `${failure.serviceId}: ${failure.errorMessage}`).join('; ');
        throw new ConvergenceError('GCP_ERROR', ExitCode.unexpected, `Google did not enable every API (${what}): ${listed}`, {
          suggestion: `fix what the message says, then run setup again (or \`gcloud services enable ${batch.join(' ')} --project ${this.project}\`)`,
          data: { failures: failures.map((failure) => ({ service: failure.serviceId, message: failure.errorMessage })) },
        });
      }
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  #call() {
    return { retry: null, timeout: this.#timeoutMs };
  }

  #error(err: unknown, what: string, permission: string, role: string) {
    return toConvergenceError(err, {
      what,
      permission,
      role,
      resource: `project ${this.project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${this.project} --member=user:YOU@example.com --role=${role}`,
      api: SERVICE_USAGE_API,
      project: this.project,
    });
  }
}
