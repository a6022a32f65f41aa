/**
 * google.api.serviceusage.v1.ServiceUsage: which APIs each project has enabled. BatchEnableServices
 * answers with an operation (served by the shared OperationsFake) that enables the services when it
 * completes, as Google's do a moment after the call. The rules the adapter has to cope with:
 * at most 20 services per batch and 30 per batch get, the caller's serviceusage.* permissions on the
 * project, Google's "Not found or permission denied" for a service name it does not know, and
 * service names answered with the project's number whatever the request named it by.
 */
import { currentCaller } from './caller.ts';
import { packAny, type OperationsFake } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const SERVICE_USAGE_PERMISSIONS = {
  get: 'serviceusage.services.get',
  list: 'serviceusage.services.list',
  enable: 'serviceusage.services.enable',
} as const;

const V1 = 'google.api.serviceusage.v1';
const PARENT = /^projects\/([^/]+)$/;
const SERVICE_NAME = /^projects\/([^/]+)\/services\/([^/]+)$/;
const MAX_ENABLE = 20;
const MAX_GET = 30;
const DOMAIN = 'serviceusage.googleapis.com';

/** APIs the fake knows exist; any other name is refused as Google refuses an unknown service. */
const KNOWN_SERVICES = new Set(
  [
    'run',
    'cloudbuild',
    'artifactregistry',
    'secretmanager',
    'bigquery',
    'cloudkms',
    'cloudscheduler',
    'storage',
    'logging',
    'monitoring',
    'pubsub',
    'iam',
    'iamcredentials',
    'cloudresourcemanager',
    'serviceusage',
    'compute',
  ].map((api) => `${api}.googleapis.com`),
);

interface Project {
  id: string;
  number: string;
  enabled: Set<string>;
}

export interface ServiceUsageFakeOptions {
  /** Project id → project number, for the projects that exist. */
  projects: Record<string, string>;
  /** Where BatchEnableServices' operations are served: the shared store when other modules start operations too. */
  operations: OperationsFake;
}

export class ServiceUsageFake implements FakeService {
  readonly #projects = new Map<string, Project>();
  readonly #operations: OperationsFake;
  readonly #protos = protosJsonOf('@google-cloud/service-usage');
  /** Permissions per caller (undefined: the operator); a caller not listed holds every one. */
  readonly #granted = new Map<string | undefined, Set<string>>();

  constructor(options: ServiceUsageFakeOptions) {
    this.#operations = options.operations;
    for (const [id, number] of Object.entries(options.projects)) this.#projects.set(id, { id, number, enabled: new Set() });
  }

  /** Marks services enabled, as if enabled before the test (e.g. a half-set-up project). */
  enableNow(project: string, services: readonly string[]): void {
    for (const service of services) this.#project(project).enabled.add(service);
  }

  isEnabled(project: string, service: string): boolean {
    return this.#project(project).enabled.has(service);
  }

  /** Replaces the permissions a caller (undefined: the operator) holds on every project. */
  grant(caller: string | undefined, permissions: readonly string[]): void {
    this.#granted.set(caller, new Set(permissions));
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: this.#protos,
        service: `${V1}.ServiceUsage`,
        handlers: {
          GetService: (request) => {
            const match = SERVICE_NAME.exec(String(request.name));
            if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid service name: ${String(request.name)}`);
            const project = this.#find(`projects/${match[1]}`, SERVICE_USAGE_PERMISSIONS.get);
            return this.#describe(project, this.#known(match[2]!));
          },
          BatchGetServices: (request) => this.#batchGet(request),
          BatchEnableServices: (request) => this.#batchEnable(request),
        },
      },
    ];
  }

  #batchGet(request: Record<string, unknown>) {
    const project = this.#find(String(request.parent), SERVICE_USAGE_PERMISSIONS.get);
    const names = (request.names as string[]) ?? [];
    if (names.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Request must contain at least one service name.');
    if (names.length > MAX_GET) throw new FakeStatus(status.INVALID_ARGUMENT, `Request can contain at most ${MAX_GET} service names.`);
    const services = names.map((name) => {
      const match = SERVICE_NAME.exec(name);
      if (!match || this.#lookup(match[1]!) !== project) {
        throw new FakeStatus(status.INVALID_ARGUMENT, `Service name ${name} does not belong to parent ${String(request.parent)}.`);
      }
      return this.#describe(project, this.#known(match[2]!));
    });
    return { services };
  }

  #batchEnable(request: Record<string, unknown>) {
    const ids = (request.serviceIds as string[]) ?? [];
    const project = this.#find(
      String(request.parent),
      SERVICE_USAGE_PERMISSIONS.enable,
      `Permission denied to enable service [${ids.join(', ')}]`,
    );
    if (ids.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Request must contain at least one service id.');
    if (ids.length > MAX_ENABLE) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `Request can contain at most ${MAX_ENABLE} services, got ${ids.length}.`);
    }
    const unknown = ids.filter((id) => !KNOWN_SERVICES.has(id));
    if (unknown.length > 0) throw this.#notFoundOrDenied(unknown);
    const pack = (type: string, value: Record<string, unknown>) => packAny(this.#protos, `${V1}.${type}`, value);
    return this.#operations.start('', {
      metadata: () => pack('OperationMetadata', { resourceNames: ids.map((id) => this.#serviceName(project, id)) }),
      complete: () => {
        for (const id of ids) project.enabled.add(id);
        return pack('BatchEnableServicesResponse', { services: ids.map((id) => this.#describe(project, id)), failures: [] });
      },
    });
  }

  #describe(project: Project, id: string) {
    return {
      name: this.#serviceName(project, id),
      parent: `projects/${project.number}`,
      config: { name: id, title: id },
      state: project.enabled.has(id) ? 'ENABLED' : 'DISABLED',
    };
  }

  #serviceName(project: Project, id: string) {
    return `projects/${project.number}/services/${id}`;
  }

  #known(id: string): string {
    if (!KNOWN_SERVICES.has(id)) throw this.#notFoundOrDenied([id]);
    return id;
  }

  /** What Google answers for a service name it has no configuration for (or the caller may not see). */
  #notFoundOrDenied(ids: string[]) {
    return new FakeStatus(status.PERMISSION_DENIED, `Not found or permission denied for service(s): ${ids.join(', ')}.`, {
      reason: 'SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED',
      domain: DOMAIN,
      metadata: { services: ids.join(',') },
    });
  }

  /**
   * The project `parent` names (by id or number), after checking the caller holds `permission` on
   * it; `enableDenied` is the message Google refuses an enable with (it names the services).
   */
  #find(parent: string, permission: string, enableDenied?: string): Project {
    const match = PARENT.exec(parent);
    if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource name: ${parent}`);
    const project = this.#lookup(match[1]!);
    const granted = this.#granted.get(currentCaller());
    if (!project || (granted && !granted.has(permission))) {
      if (enableDenied) {
        throw new FakeStatus(status.PERMISSION_DENIED, enableDenied, {
          reason: 'AUTH_PERMISSION_DENIED',
          domain: DOMAIN,
          metadata: { permission },
        });
      }
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource '${parent}' (or it may not exist).`);
    }
    return project;
  }

  #lookup(idOrNumber: string): Project | undefined {
    return this.#projects.get(idOrNumber) ?? [...this.#projects.values()].find((project) => project.number === idOrNumber);
  }

  #project(id: string): Project {
    const project = this.#projects.get(id);
    if (!project) throw new Error(`the fake has no project ${id}; name it in the constructor`);
    return project;
  }
}
