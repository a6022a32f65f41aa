/**
 * Cloud Run services and revisions (google.cloud.run.v2.Services / Revisions) with the rules a
 * canary deploy and a rollback live by:
 *   - a new revision only when the template changes, named `<service>-<5-digit generation>-<3>` or
 *     `template.revision` (which must start with `<service>-`, at most 63 characters, and may not
 *     name an existing revision with another configuration);
 *   - traffic: LATEST or a named existing revision per target, percents summing to 100, unique
 *     tags with tag + service name <= 46 characters; stored as sent, resolved in trafficStatuses;
 *   - etags on update and delete (ABORTED when stale, the AIP-154 code);
 *   - reconciliation finishing with the operation: until then `reconciling` is true and the
 *     status fields (trafficStatuses, latestReadyRevision, observedGeneration) keep the last
 *     serving state; a revision that never turns ready fails the operation (FAILED_PRECONDITION,
 *     as Run reports "is not ready and cannot serve traffic") and leaves that state in place.
 */
import { randomUUID } from 'node:crypto';
import { paginate, timestamp } from './operations.ts';
import { RunCollection } from './run-collection.ts';
import {
  applyMask,
  canonical,
  checkContainers,
  checkEtag,
  condition,
  durationSeconds,
  etagOf,
  fieldsOf,
  hostHash,
  isDnsLabel,
  normalize,
  notFound,
  pack,
  parseName,
  suffix,
  type Location,
  type Message,
  type RunContext,
} from './run-common.ts';
import { FakeStatus, status } from './status.ts';

const LATEST = 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST';
const BY_REVISION = 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION';
const MAX_TAG_AND_SERVICE = 46;
const MAX_REVISION_NAME = 63;
const MAX_SERVICE_ID = 49;
const MAX_PAGE = 1000;

const SERVICE_OUTPUT_ONLY = new Set([
  'name',
  'uid',
  'generation',
  'createTime',
  'updateTime',
  'deleteTime',
  'expireTime',
  'creator',
  'lastModifier',
  'urls',
  'observedGeneration',
  'terminalCondition',
  'conditions',
  'latestReadyRevision',
  'latestCreatedRevision',
  'trafficStatuses',
  'uri',
  'satisfiesPzs',
  'threatDetectionEnabled',
  'reconciling',
  'etag',
]);

// Revision fields a revision takes from the template it was cut from.
const FROM_TEMPLATE = [
  'labels',
  'annotations',
  'scaling',
  'vpcAccess',
  'maxInstanceRequestConcurrency',
  'timeout',
  'serviceAccount',
  'containers',
  'volumes',
  'executionEnvironment',
  'encryptionKey',
  'serviceMesh',
  'encryptionKeyRevocationAction',
  'encryptionKeyShutdownDuration',
  'sessionAffinity',
  'nodeSelector',
  'gpuZonalRedundancyDisabled',
];

export const NOT_READY_MESSAGE =
  'The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout. This can happen when the container port is misconfigured or if the timeout is too short.';

type RevisionState = 'pending' | 'ready' | 'failed';

interface Revision {
  id: string;
  uid: string;
  template: Message;
  createTime: Date;
  updateTime: Date;
  state: RevisionState;
  failure: string | undefined;
  willFail: string | undefined;
  serial: number;
}

interface Service {
  id: string;
  location: Location;
  uid: string;
  spec: Message;
  generation: number;
  createTime: Date;
  updateTime: Date;
  serial: number;
  observedGeneration: number;
  latestReady: string;
  latestCreated: string;
  trafficStatuses: Message[];
  terminalCondition: Message;
  conditions: Message[];
  reconciling: boolean;
  revisions: Map<string, Revision>;
  operation: string | undefined;
}

const fullName = (service: Service) => `${service.location.path}/services/${service.id}`;
const revisionName = (service: Service, revision: string) => `${fullName(service)}/revisions/${revision}`;

/** The revision limits Run refuses to go beyond: concurrency 1..1000, request timeout up to 3600s, min <= max instances. */
function checkServiceLimits(template: Message): void {
  const concurrency = Number(template.maxInstanceRequestConcurrency);
  if (concurrency < 1 || concurrency > 1000) {
    throw new FakeStatus(
      status.INVALID_ARGUMENT,
      `service.template.max_instance_request_concurrency: must be between 1 and 1000, got ${concurrency}.`,
    );
  }
  const timeout = durationSeconds(template.timeout) ?? 0;
  if (timeout <= 0 || timeout > 3600) {
    throw new FakeStatus(status.INVALID_ARGUMENT, `service.template.timeout: must be positive and at most 3600s, got ${timeout}s.`);
  }
  const scaling = template.scaling as Message | null;
  if (scaling && Number(scaling.maxInstanceCount) > 0 && Number(scaling.minInstanceCount) > Number(scaling.maxInstanceCount)) {
    throw new FakeStatus(status.INVALID_ARGUMENT, 'service.template.scaling: min_instance_count must not exceed max_instance_count.');
  }
}

export class RunServices extends RunCollection<Service> {
  readonly #userFields = new Set(fieldsOf('Service').filter((field) => !SERVICE_OUTPUT_ONLY.has(field)));
  #failNext: string[] = [];
  #etagConflicts = 0;

  constructor(ctx: RunContext) {
    super(ctx, { collection: 'services', kind: 'SERVICE', type: 'Service', field: 'service', maxIdLength: MAX_SERVICE_ID });
  }

  failNextRevision(message: string): void {
    this.#failNext.push(message);
  }

  setEtagConflict(times: number): void {
    this.#etagConflicts = times;
  }

  /** Revisions of a service as ListRevisions answers (newest first). */
  peekRevisions(name: string): Message[] {
    const service = this.resources.get(name);
    return service ? this.#newestFirst(service).map((revision) => this.#describeRevision(service, revision)) : [];
  }

  servicesHandlers(): Record<string, (request: Message) => unknown> {
    return {
      ...this.commonHandlers(),
      CreateService: (request) => this.#create(request),
      ListServices: (request) => {
        const { items, nextPageToken } = this.listed(request);
        return { services: items.map((service) => this.describe(service)), nextPageToken, unreachable: [] };
      },
      UpdateService: (request) => this.#update(request),
    };
  }

  revisionsHandlers(): Record<string, (request: Message) => unknown> {
    return {
      GetRevision: (request) => {
        const { service, revision } = this.#findRevision(String(request.name), 'run.revisions.get');
        return this.#describeRevision(service, revision);
      },
      ListRevisions: (request) => {
        const all = this.parentsOf(String(request.parent), 'run.revisions.list')
          .flatMap((service) => [...service.revisions.values()].map((revision) => ({ service, revision })))
          .sort((a, b) => b.revision.createTime.getTime() - a.revision.createTime.getTime());
        const { items, nextPageToken } = paginate(all, request, MAX_PAGE);
        return { revisions: items.map(({ service, revision }) => this.#describeRevision(service, revision)), nextPageToken };
      },
      DeleteRevision: (request) => {
        const { service, revision } = this.#findRevision(String(request.name), 'run.revisions.delete');
        this.settle(service);
        checkEtag(String(request.etag ?? ''), etagOf(revision.uid, revision.serial), revision.id);
        const serving =
          (service.spec.traffic as Message[]).some((target) => target.revision === revision.id) ||
          service.trafficStatuses.some((target) => target.revision === revision.id && (Number(target.percent) > 0 || target.tag));
        if (serving) {
          throw new FakeStatus(
            status.FAILED_PRECONDITION,
            `Revision '${revision.id}' cannot be deleted because it is receiving traffic or is referenced by a traffic target of service '${service.id}'.`,
          );
        }
        if (revision.id === service.latestCreated || revision.id === service.latestReady) {
          throw new FakeStatus(
            status.FAILED_PRECONDITION,
            `Revision '${revision.id}' cannot be deleted because it is the latest revision of service '${service.id}'.`,
          );
        }
        const last = this.#describeRevision(service, revision);
        if (!request.validateOnly) service.revisions.delete(revision.id);
        return this.ctx.operations.start(service.location.path, {
          metadata: () => pack('Revision', last),
          complete: () => pack('Revision', last),
        });
      },
    };
  }

  #create(request: Message, allowMissingName?: string) {
    const { body, location, id, name } = this.newResource(request, allowMissingName);
    const spec = this.#spec(body);
    const now = this.ctx.now();
    const service: Service = {
      id,
      location,
      uid: randomUUID(),
      spec,
      generation: 1,
      createTime: now,
      updateTime: now,
      serial: 1,
      observedGeneration: 0,
      latestReady: '',
      latestCreated: '',
      trafficStatuses: [],
      terminalCondition: condition('Ready', 'CONDITION_RECONCILING', now),
      conditions: [],
      reconciling: true,
      revisions: new Map(),
      operation: undefined,
    };
    const revisionId = this.#newRevisionId(service, spec, 1);
    this.#checkTraffic(service, spec.traffic as Message[], (revision) => revision === revisionId);
    if (request.validateOnly) {
      return this.ctx.operations.start(location.path, {
        polls: 0,
        metadata: () => undefined,
        complete: () => pack('Service', this.describe(service)),
      });
    }
    this.resources.set(name, service);
    const created = this.#addRevision(service, revisionId, spec.template as Message, now);
    return this.#reconcileOperation(service, created);
  }

  #update(request: Message) {
    const { body, name, location, resource: service } = this.updating(request);
    if (!service) return this.#create(request, name);
    this.settle(service);
    const sentEtag = String(body.etag ?? '');
    if (sentEtag && this.#etagConflicts > 0) {
      // Another writer got there first: the service changed under the caller, whose etag is now stale.
      this.#etagConflicts -= 1;
      service.serial += 1;
      service.updateTime = this.ctx.now();
    }
    checkEtag(sentEtag, etagOf(service.uid, service.serial), service.id);

    const paths = ((request.updateMask as { paths?: string[] } | null)?.paths ?? []).filter((path) => path !== '*');
    // With a mask the body may carry only the named fields, so it is checked after merging.
    const spec =
      paths.length > 0 ? this.#spec(applyMask(service.spec, normalize('Service', body), paths, this.#userFields)) : this.#spec(body);
    if (canonical(spec) === canonical(service.spec)) {
      return this.ctx.operations.start(location.path, {
        metadata: () => pack('Service', this.describe(service)),
        complete: () => pack('Service', this.describe(service)),
      });
    }
    const generation = service.generation + 1;
    const templateChanged = canonical(spec.template) !== canonical(service.spec.template);
    const revisionId = templateChanged ? this.#newRevisionId(service, spec, generation) : undefined;
    this.#checkTraffic(service, spec.traffic as Message[], (revision) => service.revisions.has(revision) || revision === revisionId);
    if (request.validateOnly) {
      const preview = this.describe({ ...service, spec, generation });
      return this.ctx.operations.start(location.path, { polls: 0, metadata: () => undefined, complete: () => pack('Service', preview) });
    }
    const now = this.ctx.now();
    service.spec = spec;
    service.generation = generation;
    service.updateTime = now;
    service.serial += 1;
    service.reconciling = true;
    service.terminalCondition = condition('Ready', 'CONDITION_RECONCILING', now);
    const created = revisionId ? this.#addRevision(service, revisionId, spec.template as Message, now) : undefined;
    return this.#reconcileOperation(service, created);
  }

  /** The operation that carries reconciliation: status fields change when it completes. */
  #reconcileOperation(service: Service, created: Revision | undefined) {
    const operation = this.ctx.operations.start(service.location.path, {
      metadata: () => pack('Service', this.describe(service)),
      complete: () => {
        service.operation = undefined;
        this.#reconcile(service, created);
        return pack('Service', this.describe(service));
      },
    });
    if (!operation.done) service.operation = String(operation.name);
    return operation;
  }

  #reconcile(service: Service, created: Revision | undefined): void {
    const now = this.ctx.now();
    const failures: string[] = [];
    if (created?.state === 'pending') {
      created.state = created.willFail === undefined ? 'ready' : 'failed';
      created.failure = created.willFail;
      created.updateTime = now;
      created.serial += 1;
    }
    if (created?.state === 'failed') failures.push(`Revision '${created.id}' is not ready and cannot serve traffic. ${created.failure}`);
    const latestReady = created?.state === 'ready' ? created.id : service.latestReady;
    const statuses = (service.spec.traffic as Message[]).map((target) => {
      const revision = target.type === LATEST ? latestReady : String(target.revision);
      const serves = Number(target.percent) > 0 || Boolean(target.tag);
      const found = service.revisions.get(revision);
      if (serves && (!found || found.state !== 'ready')) {
        failures.push(
          found
            ? `Revision '${revision}' is not ready and cannot serve traffic. ${found.failure ?? ''}`.trim()
            : `Revision '${revision || '(latest ready)'}' does not exist or is deleted. Update all traffic to route to currently available revisions.`,
        );
      }
      return {
        type: target.type,
        revision,
        percent: target.percent,
        tag: target.tag,
        uri: target.tag ? `https://${String(target.tag)}---${service.id}-${hostHash(service.location)}.a.run.app` : '',
      };
    });
    service.serial += 1;
    service.reconciling = false;
    const [failure] = failures;
    if (failure !== undefined) {
      const configurationReady = created?.state === 'failed' ? 'CONDITION_FAILED' : 'CONDITION_SUCCEEDED';
      service.terminalCondition = condition('Ready', 'CONDITION_FAILED', now, { message: failure, reason: 'REVISION_FAILED' });
      service.conditions = [
        condition('RoutesReady', 'CONDITION_FAILED', now, { message: failure }),
        condition('ConfigurationsReady', configurationReady, now, configurationReady === 'CONDITION_FAILED' ? { message: failure } : {}),
      ];
      throw new FakeStatus(status.FAILED_PRECONDITION, failure);
    }
    service.latestReady = latestReady;
    service.trafficStatuses = statuses;
    service.observedGeneration = service.generation;
    service.terminalCondition = condition('Ready', 'CONDITION_SUCCEEDED', now);
    service.conditions = [
      condition('RoutesReady', 'CONDITION_SUCCEEDED', now),
      condition('ConfigurationsReady', 'CONDITION_SUCCEEDED', now),
    ];
  }

  #addRevision(service: Service, id: string, template: Message, now: Date): Revision {
    const revision: Revision = {
      id,
      uid: randomUUID(),
      template,
      createTime: now,
      updateTime: now,
      state: 'pending',
      failure: undefined,
      willFail: this.#failNext.shift(),
      serial: 1,
    };
    service.revisions.set(id, revision);
    service.latestCreated = id;
    return revision;
  }

  #newRevisionId(service: Service, spec: Message, generation: number): string {
    const named = String((spec.template as Message).revision ?? '');
    if (!named) return `${service.id}-${String(generation).padStart(5, '0')}-${suffix(`${service.uid}/${generation}`, 3)}`;
    if (!named.startsWith(`${service.id}-`)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `service.template.revision: revision name '${named}' must start with the service name followed by a hyphen ('${service.id}-').`,
      );
    }
    if (named.length > MAX_REVISION_NAME || !isDnsLabel(named, MAX_REVISION_NAME)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `service.template.revision: revision name '${named}' must be at most ${MAX_REVISION_NAME} characters of lowercase letters, digits and hyphens, not ending with a hyphen.`,
      );
    }
    if (service.revisions.has(named)) {
      throw new FakeStatus(status.ALREADY_EXISTS, `Revision named '${named}' with different configuration already exists.`);
    }
    return named;
  }

  #checkTraffic(service: Service, traffic: Message[], exists: (revision: string) => boolean): void {
    const tags = new Set<string>();
    let sum = 0;
    traffic.forEach((target, index) => {
      const field = `service.traffic[${index}]`;
      const revision = String(target.revision ?? '');
      if (target.type === LATEST) {
        if (revision) {
          throw new FakeStatus(
            status.INVALID_ARGUMENT,
            `${field}: a target of type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST must not name a revision.`,
          );
        }
      } else if (target.type === BY_REVISION) {
        if (!revision)
          throw new FakeStatus(status.INVALID_ARGUMENT, `${field}.revision: required for TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.`);
        if (revision.includes('/')) {
          throw new FakeStatus(status.INVALID_ARGUMENT, `${field}.revision: '${revision}' must be a revision name, not a resource path.`);
        }
        if (!exists(revision)) {
          throw new FakeStatus(
            status.INVALID_ARGUMENT,
            `Revision '${revision}' does not exist or is deleted. Update all traffic to route to currently available revisions.`,
          );
        }
      } else {
        throw new FakeStatus(
          status.INVALID_ARGUMENT,
          `${field}.type: must be TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST or TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION.`,
        );
      }
      const percent = Number(target.percent);
      if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
        throw new FakeStatus(status.INVALID_ARGUMENT, `${field}.percent: must be between 0 and 100, got ${percent}.`);
      }
      sum += percent;
      const tag = String(target.tag ?? '');
      if (tag) {
        if (!isDnsLabel(tag, 63)) {
          throw new FakeStatus(
            status.INVALID_ARGUMENT,
            `${field}.tag: '${tag}' must be lowercase letters, digits and hyphens, begin with a letter and not end with a hyphen.`,
          );
        }
        if (tags.has(tag))
          throw new FakeStatus(status.INVALID_ARGUMENT, `${field}.tag: tag '${tag}' is used by more than one traffic target.`);
        tags.add(tag);
        if (tag.length + service.id.length > MAX_TAG_AND_SERVICE) {
          throw new FakeStatus(
            status.INVALID_ARGUMENT,
            `${field}.tag: tag '${tag}' is too long for service '${service.id}': the tag and the service name together may have at most ${MAX_TAG_AND_SERVICE} characters, got ${tag.length + service.id.length}.`,
          );
        }
      }
    });
    if (sum !== 100) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `service.traffic: the traffic percentages must add up to 100, got ${sum}.`);
    }
  }

  /** The user-settable part of a Service in decoded form, with the defaults Run fills in. */
  #spec(body: Message): Message {
    const spec = normalize('Service', body);
    for (const field of SERVICE_OUTPUT_ONLY) delete spec[field];
    const template = spec.template as Message | null;
    if (!template) throw new FakeStatus(status.INVALID_ARGUMENT, 'service.template: Field is required.');
    const containers = checkContainers(template.containers, 'service.template.containers');
    if (!template.maxInstanceRequestConcurrency) template.maxInstanceRequestConcurrency = 80;
    template.timeout ??= { seconds: '300', nanos: 0 };
    checkServiceLimits(template);
    // Run reports the ingress it applies: everyone's traffic unless the service says otherwise.
    if (!spec.ingress || spec.ingress === 'INGRESS_TRAFFIC_UNSPECIFIED') spec.ingress = 'INGRESS_TRAFFIC_ALL';
    for (const container of containers) {
      if ((container.ports as Message[]).length === 0) container.ports = [{ name: 'http1', containerPort: 8080 }];
      container.resources ??= { limits: { cpu: '1000m', memory: '512Mi' }, cpuIdle: true, startupCpuBoost: false };
    }
    if ((spec.traffic as Message[]).length === 0) spec.traffic = [{ type: LATEST, revision: '', percent: 100, tag: '' }];
    return normalize('Service', spec);
  }

  #findRevision(name: string, permission: string): { service: Service; revision: Revision } {
    const { location, id, subId } = parseName(name, 'services', 'revisions');
    this.ctx.require(permission, name);
    const service = this.resources.get(`${location.path}/services/${id}`);
    const revision = service?.revisions.get(subId!);
    if (!service || !revision) throw notFound('REVISION', subId!, location);
    return { service, revision };
  }

  #newestFirst(service: Service): Revision[] {
    return [...service.revisions.values()].sort((a, b) => b.createTime.getTime() - a.createTime.getTime());
  }

  protected describe(service: Service): Message {
    const uri = `https://${service.id}-${hostHash(service.location)}.a.run.app`;
    return {
      ...service.spec,
      name: fullName(service),
      uid: service.uid,
      generation: String(service.generation),
      createTime: timestamp(service.createTime),
      updateTime: timestamp(service.updateTime),
      observedGeneration: String(service.observedGeneration),
      terminalCondition: service.terminalCondition,
      conditions: service.conditions,
      latestReadyRevision: service.latestReady ? revisionName(service, service.latestReady) : '',
      latestCreatedRevision: service.latestCreated ? revisionName(service, service.latestCreated) : '',
      trafficStatuses: service.trafficStatuses,
      uri,
      urls: [uri],
      reconciling: service.reconciling,
      etag: etagOf(service.uid, service.serial),
    };
  }

  #describeRevision(service: Service, revision: Revision): Message {
    const at = revision.updateTime;
    const conditions =
      revision.state === 'pending'
        ? [condition('Ready', 'CONDITION_RECONCILING', at), condition('ContainerHealthy', 'CONDITION_RECONCILING', at)]
        : revision.state === 'ready'
          ? [condition('Ready', 'CONDITION_SUCCEEDED', at), condition('ContainerHealthy', 'CONDITION_SUCCEEDED', at)]
          : [
              condition('Ready', 'CONDITION_FAILED', at, { message: revision.failure ?? '' }),
              condition('ContainerHealthy', 'CONDITION_FAILED', at, {
                message: revision.failure ?? '',
                revisionReason: 'HEALTH_CHECK_CONTAINER_ERROR',
              }),
            ];
    const { project } = service.location;
    return {
      ...Object.fromEntries(FROM_TEMPLATE.map((field) => [field, revision.template[field] ?? null])),
      name: revisionName(service, revision.id),
      uid: revision.uid,
      generation: '1',
      createTime: timestamp(revision.createTime),
      updateTime: timestamp(revision.updateTime),
      launchStage: service.spec.launchStage,
      service: fullName(service),
      reconciling: revision.state === 'pending',
      conditions,
      observedGeneration: revision.state === 'pending' ? '0' : '1',
      logUri: `https://console.cloud.google.com/logs/viewer?project=${project}&resource=cloud_run_revision/service_name/${service.id}/revision_name/${revision.id}`,
      etag: etagOf(revision.uid, revision.serial),
    };
  }
}
