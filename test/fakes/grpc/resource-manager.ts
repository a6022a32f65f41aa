/**
 * google.cloud.resourcemanager.v3.Projects' IAM methods (GetIamPolicy, SetIamPolicy,
 * TestIamPermissions) with the rules a read-modify-write of a project policy has to respect:
 *
 * - every write gets a new etag; a SetIamPolicy carrying an older one is ABORTED with Google's
 *   "There were concurrent policy changes" (a write without an etag overwrites blindly, as Google's
 *   does: the adapter must never send one);
 * - without an update mask only bindings and etag are written (audit configs stay);
 * - a policy with conditional bindings read below version 3 comes back with mangled role names
 *   (`_withcond_`) and no conditions, and writing those back, or a condition at version 1, is
 *   INVALID_ARGUMENT;
 * - a serviceAccount: member that does not exist is INVALID_ARGUMENT (when the IAM fake knows
 *   the account's project);
 * - PERMISSION_DENIED names the missing permission, per caller (grpc/caller.ts); an unknown
 *   project answers the same, as Google does not tell "missing" from "not yours".
 *
 * `interleave(change)` lets a test be the other writer: the change lands right before the next
 * SetIamPolicy is decided, after its caller read the policy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { currentCaller } from './caller.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const RESOURCE_MANAGER_PERMISSIONS = ['resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy'] as const;

const PROJECT = /^projects\/([^/]+)$/;
const CONCURRENT =
  "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff. The request's ETag does not match the current ETag of the policy.";
const MEMBER =
  /^(user|serviceAccount|group|domain|principal|principalSet|deleted:user|deleted:serviceAccount|deleted:group):.+$|^allUsers$|^allAuthenticatedUsers$/;
const ROLE = /^(roles\/[A-Za-z0-9_.]+|(projects|organizations)\/[^/]+\/roles\/[A-Za-z0-9_.]+)$/;
const MASK_PATHS = new Set(['bindings', 'etag', 'audit_configs', 'auditConfigs']);

export interface StoredCondition {
  expression: string;
  title: string;
  description: string;
  location: string;
}

export interface StoredBinding {
  role: string;
  members: string[];
  condition?: StoredCondition;
}

export interface StoredAuditConfig {
  service: string;
  auditLogConfigs: Array<{ logType: string; exemptedMembers: string[] }>;
}

export interface StoredPolicy {
  version: number;
  bindings: StoredBinding[];
  auditConfigs: StoredAuditConfig[];
  etag: Buffer;
}

type Message = Record<string, unknown>;

const copy = (policy: StoredPolicy): StoredPolicy => structuredClone(policy);
const withcondSuffix = (condition: StoredCondition) => createHash('sha256').update(condition.expression).digest('hex').slice(0, 16);

function conditionOf(raw: unknown): StoredCondition | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const expr = raw as Message;
  return {
    expression: String(expr.expression ?? ''),
    title: String(expr.title ?? ''),
    description: String(expr.description ?? ''),
    location: String(expr.location ?? ''),
  };
}

export class ResourceManagerFake implements FakeService {
  /** Permissions of the operator (calls without a token the fakes minted). */
  granted = new Set<string>(RESOURCE_MANAGER_PERMISSIONS);
  /** Permissions of a service account calling with a token the fakes minted for it. */
  readonly grantedTo = new Map<string, Set<string>>();
  readonly #policies = new Map<string, StoredPolicy>();
  readonly #interleaved: Array<(policy: StoredPolicy) => void> = [];
  readonly #propagating = new Map<string, number>();
  readonly #accountExists: ((email: string) => boolean | undefined) | undefined;
  #writes = 0;

  /**
   * `accountExists` answers whether a service account exists, or undefined when its project is
   * not one the IAM fake serves (such members are then taken as they are).
   */
  constructor(options: { projects: readonly string[]; accountExists?: (email: string) => boolean | undefined }) {
    for (const project of options.projects)
      this.#policies.set(project, { version: 1, bindings: [], auditConfigs: [], etag: randomBytes(8) });
    this.#accountExists = options.accountExists;
  }

  /** The project's policy as stored (a copy). */
  policy(project: string): StoredPolicy {
    return copy(this.#stored(project));
  }

  /** SetIamPolicy calls that changed a policy. */
  writes(): number {
    return this.#writes;
  }

  /** Replaces a project's policy, as another tool would; it gets a new etag. */
  seedPolicy(project: string, policy: Partial<Omit<StoredPolicy, 'etag'>>): void {
    const current = this.#stored(project);
    this.#policies.set(project, {
      version: policy.version ?? current.version,
      bindings: structuredClone(policy.bindings ?? current.bindings),
      auditConfigs: structuredClone(policy.auditConfigs ?? current.auditConfigs),
      etag: randomBytes(8),
    });
  }

  /**
   * Another writer changes the policy right before the next SetIamPolicy is decided (its etag
   * changes); each call queued applies to one SetIamPolicy, in order.
   */
  interleave(change: (policy: StoredPolicy) => void): void {
    this.#interleaved.push(change);
  }

  /**
   * The next `times` SetIamPolicy calls naming this service account refuse it as not existing,
   * as Google does for a minute or so after an account is created.
   */
  notYetKnown(email: string, times: number): void {
    this.#propagating.set(email, times);
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: protosJsonOf('@google-cloud/resource-manager'),
        service: 'google.cloud.resourcemanager.v3.Projects',
        handlers: {
          GetIamPolicy: (request) => this.#getIamPolicy(request),
          SetIamPolicy: (request) => this.#setIamPolicy(request),
          TestIamPermissions: (request) => {
            this.#project(request.resource, undefined);
            const held = this.#held();
            return { permissions: ((request.permissions as string[]) ?? []).filter((permission) => held.has(permission)) };
          },
        },
      },
    ];
  }

  #getIamPolicy(request: Message) {
    const project = this.#project(request.resource, 'resourcemanager.projects.getIamPolicy');
    const policy = this.#stored(project);
    const requested = Number((request.options as Message | null)?.requestedPolicyVersion ?? 0) || 1;
    if (![1, 2, 3].includes(requested)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid requested policy version ${requested}.`);
    const conditional = policy.bindings.some((binding) => binding.condition);
    if (requested < 3 && conditional) {
      // What Google does for a client that cannot read conditions: a role name it cannot write back.
      return this.#wire({
        ...policy,
        version: 1,
        bindings: policy.bindings.map((binding) =>
          binding.condition ? { role: `${binding.role}_withcond_${withcondSuffix(binding.condition)}`, members: binding.members } : binding,
        ),
      });
    }
    return this.#wire(policy);
  }

  #setIamPolicy(request: Message) {
    const project = this.#project(request.resource, 'resourcemanager.projects.setIamPolicy');
    const incoming = (request.policy ?? {}) as Message;
    const bindings = this.#validBindings(incoming);
    const paths = ((request.updateMask as Message | null)?.paths as string[] | undefined) ?? [];
    for (const path of paths) {
      if (!MASK_PATHS.has(path)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid update mask path "${path}".`);
    }
    const change = this.#interleaved.shift();
    if (change) {
      const other = this.#stored(project);
      change(other);
      other.etag = randomBytes(8);
    }
    const current = this.#stored(project);
    const etag = incoming.etag as Buffer | undefined;
    if (etag && etag.length > 0 && !Buffer.from(etag).equals(current.etag)) throw new FakeStatus(status.ABORTED, CONCURRENT);
    const writesAuditConfigs = paths.includes('audit_configs') || paths.includes('auditConfigs');
    const next: StoredPolicy = {
      version: Number(incoming.version ?? 1) || 1,
      bindings,
      auditConfigs: writesAuditConfigs ? structuredClone((incoming.auditConfigs as StoredAuditConfig[]) ?? []) : current.auditConfigs,
      etag: randomBytes(8),
    };
    this.#policies.set(project, next);
    this.#writes += 1;
    return this.#wire(next);
  }

  #validBindings(incoming: Message): StoredBinding[] {
    const version = Number(incoming.version ?? 1) || 1;
    const invalid = (message: string) => new FakeStatus(status.INVALID_ARGUMENT, message);
    const bindings: StoredBinding[] = [];
    for (const raw of (incoming.bindings as Message[] | undefined) ?? []) {
      const role = String(raw.role ?? '');
      if (role.includes('_withcond_')) {
        throw invalid(
          `Role ${role} is a conditional role binding read at policy version 1; read the policy at version 3 and write it back at version 3.`,
        );
      }
      if (!ROLE.test(role)) throw invalid(`Role ${role} is not supported for this resource.`);
      const condition = conditionOf(raw.condition);
      if (condition && version < 3) throw invalid('Policy with conditional bindings must be set at version 3.');
      const members = [...new Set(((raw.members as string[] | undefined) ?? []).map(String))];
      for (const member of members) {
        if (!MEMBER.test(member)) throw invalid(`Invalid member ${member}: it must start with user:, serviceAccount:, group: or domain:.`);
        const account = member.startsWith('serviceAccount:') ? member.slice('serviceAccount:'.length) : undefined;
        if (account && this.#accountExists?.(account) === false) throw invalid(`Service account ${account} does not exist.`);
        const lagging = account ? (this.#propagating.get(account) ?? 0) : 0;
        if (account && lagging > 0) {
          this.#propagating.set(account, lagging - 1);
          throw invalid(`Service account ${account} does not exist.`);
        }
      }
      // Google drops a binding left without members.
      if (members.length > 0) bindings.push({ role, members, ...(condition ? { condition } : {}) });
    }
    return bindings;
  }

  #wire(policy: StoredPolicy) {
    return {
      version: policy.version,
      bindings: policy.bindings.map((binding) => ({
        role: binding.role,
        members: binding.members,
        ...(binding.condition ? { condition: binding.condition } : {}),
      })),
      auditConfigs: policy.auditConfigs,
      etag: policy.etag,
    };
  }

  #held(): ReadonlySet<string> {
    const caller = currentCaller();
    return caller === undefined ? this.granted : (this.grantedTo.get(caller) ?? new Set());
  }

  /** The project a resource name names, once the caller may act on it; unknown projects look denied. */
  #project(resource: unknown, permission: string | undefined): string {
    const match = PROJECT.exec(String(resource ?? ''));
    if (!match)
      throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource name "${String(resource)}"; expected projects/[PROJECT_ID]`);
    const project = match[1]!;
    const denied = (needed: string) =>
      new FakeStatus(
        status.PERMISSION_DENIED,
        `Permission '${needed}' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
        { reason: 'IAM_PERMISSION_DENIED', domain: 'cloudresourcemanager.googleapis.com', metadata: { permission: needed } },
      );
    if (!this.#policies.has(project)) throw denied(permission ?? 'resourcemanager.projects.get');
    if (permission && !this.#held().has(permission)) throw denied(permission);
    return project;
  }

  #stored(project: string): StoredPolicy {
    const policy = this.#policies.get(project);
    if (!policy) throw new Error(`the fake serves no project ${project}`);
    return policy;
  }
}
