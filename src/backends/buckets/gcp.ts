import type { Storage } from '@google-cloud/storage';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { GcpClients } from '../gcp/clients.ts';
import { googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type { IamPolicy, PolicyCondition } from '../../domain/iam-policy.ts';
import type { BucketState, Buckets } from './port.ts';

const API = 'storage.googleapis.com';
/** roles/storage.admin carries storage.buckets.create/get/update/getIamPolicy/setIamPolicy. */
const ADMIN_ROLE = 'roles/storage.admin';
/** What Storage says when the name is ours already (a rerun, or a retry whose answer was lost). */
const ALREADY_OURS = /already own it/i;

interface BucketMetadata {
  location?: string;
  versioning?: { enabled?: boolean };
  iamConfiguration?: { uniformBucketLevelAccess?: { enabled?: boolean }; publicAccessPrevention?: string };
}

const HARDENED = {
  iamConfiguration: { uniformBucketLevelAccess: { enabled: true }, publicAccessPrevention: 'enforced' },
  versioning: { enabled: true },
};

/** Cloud Storage buckets and bucket IAM through the official @google-cloud/storage client. */
export class GcpBuckets implements Buckets {
  readonly #clients: GcpClients;

  constructor(clients: GcpClients) {
    this.#clients = clients;
  }

  async inspect(name: string): Promise<BucketState> {
    return this.#call(name, 'storage.buckets.get', async (storage) => {
      try {
        const [metadata] = (await storage.bucket(name).getMetadata()) as unknown as [BucketMetadata];
        return {
          kind: 'ours',
          location: metadata.location ?? '',
          uniformAccess: metadata.iamConfiguration?.uniformBucketLevelAccess?.enabled === true,
          publicAccessPrevention: metadata.iamConfiguration?.publicAccessPrevention ?? 'inherited',
          versioning: metadata.versioning?.enabled === true,
        };
      } catch (err) {
        const facts = googleErrorFacts(err);
        if (facts.httpStatus === 404) return { kind: 'missing' };
        if (facts.httpStatus === 403) return { kind: 'unreadable', detail: facts.detail };
        throw err;
      }
    });
  }

  async create(name: string, settings: { location: string }): Promise<void> {
    await this.#call(name, 'storage.buckets.create', async (storage) => {
      try {
        await storage.createBucket(name, { location: settings.location, ...HARDENED });
      } catch (err) {
        const facts = googleErrorFacts(err);
        if (facts.httpStatus !== 409) throw err;
        if (ALREADY_OURS.test(facts.detail)) return;
        throw new ConvergenceError(
          'BUCKET_NAME_TAKEN',
          ExitCode.usage,
          `the bucket name ${name} is taken by another owner: ${facts.detail}`,
          {
            cause: err,
            suggestion:
              'bucket names are global: set another state_bucket for the environment in convergence.yaml (e.g. with your project id in it)',
            data: { bucket: name },
          },
        );
      }
    });
  }

  async harden(name: string): Promise<void> {
    await this.#call(name, 'storage.buckets.update', (storage) => storage.bucket(name).setMetadata(HARDENED));
  }

  async getIamPolicy(name: string): Promise<IamPolicy> {
    return this.#call(name, 'storage.buckets.getIamPolicy', async (storage) => {
      const [policy] = await storage.bucket(name).iam.getPolicy({ requestedPolicyVersion: 3 });
      return fromApiPolicy(policy);
    });
  }

  async setIamPolicy(name: string, policy: IamPolicy): Promise<IamPolicy> {
    // Not retried: a write that may have landed is re-read and re-applied by the caller's read-modify-write.
    return this.#call(
      name,
      'storage.buckets.setIamPolicy',
      async (storage) => {
        const [written] = await storage
          .bucket(name)
          .iam.setPolicy({ version: policy.version, bindings: policy.bindings, etag: policy.etag });
        return fromApiPolicy(written);
      },
      false,
    );
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  async #call<T>(bucket: string, permission: string, call: (storage: Storage) => Promise<T>, retry = true): Promise<T> {
    const project = this.#clients.target.project;
    try {
      const storage = await this.#clients.storage();
      return await (retry ? retryTransient(() => call(storage)) : call(storage));
    } catch (err) {
      const facts = googleErrorFacts(err);
      // Storage answers a stale etag with 412; the read-modify-write caller retries a CONFLICT.
      if (facts.httpStatus === 412) {
        throw new ConvergenceError(
          'CONFLICT',
          ExitCode.usage,
          `the IAM policy of bucket ${bucket} was changed concurrently: ${facts.detail}`,
          {
            cause: err,
            suggestion: 'retry the command',
            data: { httpStatus: 412 },
          },
        );
      }
      throw toConvergenceError(err, {
        what: `Cloud Storage bucket ${bucket}`,
        permission,
        role: ADMIN_ROLE,
        resource: `project ${project}`,
        grantCommand: `gcloud projects add-iam-policy-binding ${project} --member <member> --role ${ADMIN_ROLE}`,
        api: API,
        project,
      });
    }
  }
}

type ApiPolicy = { version?: number; bindings?: { role: string; members?: string[]; condition?: PolicyCondition }[]; etag?: string };

function fromApiPolicy(policy: ApiPolicy): IamPolicy {
  return {
    version: policy.version ?? 1,
    bindings: (policy.bindings ?? []).map((binding) => ({
      role: binding.role,
      members: [...(binding.members ?? [])],
      ...(binding.condition ? { condition: binding.condition } : {}),
    })),
    etag: policy.etag ?? '',
  };
}
