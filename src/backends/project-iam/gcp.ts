import type { protos } from '@google-cloud/resource-manager';
import type { GcpClients } from '../gcp/clients.ts';
import { googleErrorFacts, GrpcCode, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type { IamPolicy, PolicyBinding } from '../../domain/iam-policy.ts';
import { PolicyConflict, UnknownMember, type ProjectIam } from './port.ts';

type IPolicy = protos.google.iam.v1.IPolicy;
type IBinding = protos.google.iam.v1.IBinding;

const RESOURCE_MANAGER_API = 'cloudresourcemanager.googleapis.com';
/** The version that returns conditional bindings whole; older versions mangle their role names. */
const POLICY_VERSION = 3;
const READ = { permission: 'resourcemanager.projects.getIamPolicy', role: 'roles/iam.securityReviewer' } as const;
const WRITE = { permission: 'resourcemanager.projects.setIamPolicy', role: 'roles/resourcemanager.projectIamAdmin' } as const;

/** Google's INVALID_ARGUMENT for a member that is a service account it does not know. */
const UNKNOWN_ACCOUNT = /Service account (\S+@\S+?) does not exist/;

const etagText = (etag: IPolicy['etag']): string =>
  etag === null || etag === undefined ? '' : typeof etag === 'string' ? etag : Buffer.from(etag).toString('base64');

function fromApiBinding(binding: IBinding): PolicyBinding {
  const condition = binding.condition;
  return {
    role: binding.role ?? '',
    members: (binding.members ?? []).map(String),
    ...(condition
      ? {
          condition: {
            expression: condition.expression ?? '',
            title: condition.title ?? '',
            description: condition.description ?? '',
            location: condition.location ?? '',
          },
        }
      : {}),
  };
}

function fromApi(policy: IPolicy): IamPolicy {
  return { version: policy.version ?? 1, bindings: (policy.bindings ?? []).map(fromApiBinding), etag: etagText(policy.etag) };
}

function toApi(policy: IamPolicy): IPolicy {
  return {
    // Written back at the version read with, so conditions are never dropped on the way.
    version: Math.max(policy.version, POLICY_VERSION),
    bindings: policy.bindings.map((binding) => ({
      role: binding.role,
      members: binding.members,
      ...(binding.condition ? { condition: binding.condition } : {}),
    })),
    etag: Buffer.from(policy.etag, 'base64'),
  };
}

/** A project's IAM policy through the official Resource Manager v3 client. */
export class GcpProjectIam implements ProjectIam {
  readonly #clients: GcpClients;

  constructor(clients: GcpClients) {
    this.#clients = clients;
  }

  get project(): string {
    return this.#clients.target.project;
  }

  async getPolicy(): Promise<IamPolicy> {
    const client = await this.#clients.projects();
    try {
      const [policy] = await retryTransient(() =>
        client.getIamPolicy({ resource: this.#resource(), options: { requestedPolicyVersion: POLICY_VERSION } }, { retry: null }),
      );
      return fromApi(policy);
    } catch (err) {
      throw this.#error(err, READ);
    }
  }

  async setPolicy(policy: IamPolicy): Promise<IamPolicy> {
    const client = await this.#clients.projects();
    try {
      // No update mask: Google then writes bindings and etag only, so audit configs stay as they are.
      const [written] = await retryTransient(() =>
        client.setIamPolicy({ resource: this.#resource(), policy: toApi(policy) }, { retry: null }),
      );
      return fromApi(written);
    } catch (err) {
      const facts = googleErrorFacts(err);
      if (facts.grpcCode === GrpcCode.ABORTED) throw new PolicyConflict(facts.detail);
      const unknown = facts.grpcCode === GrpcCode.INVALID_ARGUMENT ? UNKNOWN_ACCOUNT.exec(facts.detail) : null;
      if (unknown) throw new UnknownMember(unknown[1]!, facts.detail);
      throw this.#error(err, WRITE);
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  #resource() {
    return `projects/${this.project}`;
  }

  #error(err: unknown, needs: { permission: string; role: string }) {
    const { project } = this.#clients.target;
    return toConvergenceError(err, {
      what: `the IAM policy of project ${project}`,
      permission: needs.permission,
      role: needs.role,
      resource: `project ${project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${project} --member=user:YOU@example.com --role=${needs.role}`,
      api: RESOURCE_MANAGER_API,
      project,
    });
  }
}
