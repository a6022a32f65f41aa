/**
 * What the Cloud Run fake's services part and jobs part do alike with their top-level resources:
 * finding one by name behind its permission, the create and update preambles (ids, ALREADY_EXISTS,
 * allow_missing), listing a location, the `-` wildcard parent of revisions and executions,
 * Get/Delete/TestIamPermissions, and settling a pending reconcile before a write.
 */
import { paginate } from './operations.ts';
import {
  checkEtag,
  etagOf,
  isDnsLabel,
  notFound,
  pack,
  parseLocation,
  parseName,
  type Location,
  type Message,
  type RunContext,
} from './run-common.ts';
import type { RunPolicies } from './run-iam.ts';
import { FakeStatus, status } from './status.ts';

/** A service or a job as the fake keeps it. */
export interface RunResource {
  id: string;
  location: Location;
  uid: string;
  /** Bumped on every write; the etag is derived from it. */
  serial: number;
  /** The reconcile operation still pending, if any. */
  operation: string | undefined;
}

/** How Run names one kind of top-level resource. */
export interface RunKind {
  /** Resource collection in names: projects/P/locations/L/<collection>/<id>. */
  collection: 'services' | 'jobs';
  /** The kind NOT_FOUND names. */
  kind: 'SERVICE' | 'JOB';
  /** The google.cloud.run.v2 message type, which also names the RPCs (GetService, DeleteJob...). */
  type: 'Service' | 'Job';
  /** The request field carrying the resource ("service", "job"); `<field>Id` carries a new id. */
  field: 'service' | 'job';
  maxIdLength: number;
}

const MAX_PAGE = 1000;

export abstract class RunCollection<R extends RunResource> {
  protected readonly ctx: RunContext;
  protected readonly resources = new Map<string, R>();
  readonly #kind: RunKind;

  constructor(ctx: RunContext, kind: RunKind) {
    this.ctx = ctx;
    this.#kind = kind;
  }

  /** The resource as its Get RPC answers. */
  protected abstract describe(resource: R): Message;

  /** The resource as Get answers, or undefined; for assertions behind the client. */
  peek(name: string): Message | undefined {
    const resource = this.resources.get(name);
    return resource && this.describe(resource);
  }

  /** Whether `resource` names one of this kind; throws NOT_FOUND when it does but it does not exist. */
  owns(resource: string): boolean {
    const { collection, kind } = this.#kind;
    if (!new RegExp(`^projects/[^/]+/locations/[^/]+/${collection}/[^/]+$`).test(resource)) return false;
    const { location, id } = parseName(resource, collection);
    if (!this.resources.has(resource)) throw notFound(kind, id, location);
    return true;
  }

  /** Get<Type>, Delete<Type> (etag-checked, an operation) and TestIamPermissions. */
  protected commonHandlers(): Record<string, (request: Message) => unknown> {
    const { collection, type } = this.#kind;
    return {
      [`Get${type}`]: (request) => this.describe(this.find(String(request.name), `run.${collection}.get`)),
      [`Delete${type}`]: (request) => {
        const resource = this.find(String(request.name), `run.${collection}.delete`);
        this.settle(resource);
        checkEtag(String(request.etag ?? ''), etagOf(resource.uid, resource.serial), resource.id);
        const last = this.describe(resource);
        if (!request.validateOnly) {
          this.resources.delete(this.nameOf(resource));
          this.ctx.policies.forget(this.nameOf(resource));
        }
        return this.ctx.operations.start(resource.location.path, {
          metadata: () => pack(type, last),
          complete: () => pack(type, last),
        });
      },
      TestIamPermissions: (request) => {
        // Google asks no permission for this call: it answers the subset the caller holds.
        const resource = String(request.resource);
        if (!this.owns(resource)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${resource}`);
        return { permissions: (request.permissions as string[]).filter((permission) => this.holds(permission, resource)) };
      },
      GetIamPolicy: (request) => {
        const resource = this.#policyResource(request, 'getIamPolicy');
        return this.ctx.policies.describe(resource);
      },
      SetIamPolicy: (request) => {
        const resource = this.#policyResource(request, 'setIamPolicy');
        this.ctx.policies.set(resource, (request.policy ?? {}) as Parameters<RunPolicies['set']>[1]);
        return this.ctx.policies.describe(resource);
      },
    };
  }

  /** A page of the location's resources, by id. */
  protected listed(request: Message): { items: R[]; nextPageToken: string } {
    const location = parseLocation(String(request.parent));
    this.ctx.require(`run.${this.#kind.collection}.list`, location.path);
    const all = [...this.resources.values()]
      .filter((resource) => resource.location.path === location.path)
      .sort((a, b) => a.id.localeCompare(b.id));
    return paginate(all, request, MAX_PAGE);
  }

  /** The resources a child listing covers: the one its parent names, or all of the location for `-`. */
  protected parentsOf(parent: string, permission: string): R[] {
    const { location, id } = parseName(parent, this.#kind.collection);
    this.ctx.require(permission, parent);
    if (id === '-') return [...this.resources.values()].filter((resource) => resource.location.path === location.path);
    const resource = this.resources.get(parent);
    if (!resource) throw notFound(this.#kind.kind, id, location);
    return [resource];
  }

  /**
   * The checks before a create: the body is there, the caller may create, the id is valid and
   * free. `allowMissingName` is an update with allow_missing creating the resource it names.
   */
  protected newResource(request: Message, allowMissingName?: string): { body: Message; location: Location; id: string; name: string } {
    const { collection, field, maxIdLength } = this.#kind;
    const body = request[field] as Message | null;
    if (!body) throw new FakeStatus(status.INVALID_ARGUMENT, `${field}: Field is required.`);
    let location: Location;
    let id: string;
    if (allowMissingName) ({ location, id } = parseName(allowMissingName, collection));
    else {
      location = parseLocation(String(request.parent));
      id = String(request[`${field}Id`] ?? '');
    }
    this.ctx.require(`run.${collection}.create`, allowMissingName ?? location.path);
    if (!isDnsLabel(id, maxIdLength)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `Invalid ${field} id '${id}': use lowercase letters, digits and hyphens, begin with a letter, do not end with a hyphen, at most ${maxIdLength} characters.`,
      );
    }
    const name = `${location.path}/${collection}/${id}`;
    if (this.resources.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, `Resource '${id}' already exists.`);
    return { body, location, id, name };
  }

  /**
   * The checks before an update: the body is there and the caller may update. `resource` is
   * undefined only when it is missing and the request allows creating it (allow_missing).
   */
  protected updating(request: Message): { body: Message; name: string; location: Location; resource: R | undefined } {
    const { collection, field, kind } = this.#kind;
    const body = request[field] as Message | null;
    if (!body) throw new FakeStatus(status.INVALID_ARGUMENT, `${field}: Field is required.`);
    const name = String(body.name);
    const { location, id } = parseName(name, collection);
    this.ctx.require(`run.${collection}.update`, name);
    const resource = this.resources.get(name);
    if (!resource && !request.allowMissing) throw notFound(kind, id, location);
    return { body, name, location, resource };
  }

  protected find(name: string, permission: string): R {
    const { location, id } = parseName(name, this.#kind.collection);
    this.ctx.require(permission, name);
    const resource = this.resources.get(name);
    if (!resource) throw notFound(this.#kind.kind, id, location);
    return resource;
  }

  /** Finishes a pending reconcile first, as Run does before the next write is looked at. */
  protected settle(resource: R): void {
    if (resource.operation) this.ctx.operations.settle(resource.operation);
  }

  /** The resource an IAM policy call names, once it exists and the caller may make the call. */
  #policyResource(request: Message, verb: 'getIamPolicy' | 'setIamPolicy'): string {
    const resource = String(request.resource);
    if (!this.owns(resource)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${resource}`);
    this.ctx.require(`run.${this.#kind.collection}.${verb}`, resource);
    return resource;
  }

  protected holds(permission: string, resource = ''): boolean {
    try {
      this.ctx.require(permission, resource);
      return true;
    } catch {
      return false;
    }
  }

  protected nameOf(resource: R): string {
    return `${resource.location.path}/${this.#kind.collection}/${resource.id}`;
  }
}
