import type { KeyManagementServiceClient } from '@google-cloud/kms';
import type { GcpClients } from '../gcp/clients.ts';
import { GrpcCode, googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type { IamPolicy, PolicyCondition } from '../../domain/iam-policy.ts';
import type { CryptoKeyInfo, KeyRotation, KmsAdmin } from './port.ts';

type GetIamPolicyRequest = Parameters<KeyManagementServiceClient['getIamPolicy']>[0];
type SetIamPolicyRequest = Parameters<KeyManagementServiceClient['setIamPolicy']>[0];

const API = 'cloudkms.googleapis.com';
/** roles/cloudkms.admin carries every permission below (key use is the KeyRing adapter's). */
const ADMIN_ROLE = 'roles/cloudkms.admin';
const OPTIONS = { retry: null, timeout: 30_000 } as const;

const seconds = (value: { seconds?: unknown } | null | undefined): number | undefined =>
  value?.seconds === undefined || value.seconds === null ? undefined : Number(String(value.seconds));
const timestamp = (date: Date) => ({ seconds: Math.floor(date.getTime() / 1000), nanos: 0 });

/** Cloud KMS key rings, keys and key IAM through the official KeyManagementServiceClient. */
export class GcpKmsAdmin implements KmsAdmin {
  readonly #clients: GcpClients;

  constructor(clients: GcpClients) {
    this.#clients = clients;
  }

  async keyRingExists(name: string): Promise<boolean> {
    return this.#call(`Cloud KMS key ring ${name}`, 'cloudkms.keyRings.get', async (kms) => {
      try {
        await kms.getKeyRing({ name }, OPTIONS);
        return true;
      } catch (err) {
        if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return false;
        throw err;
      }
    });
  }

  async createKeyRing(location: string, id: string): Promise<void> {
    await this.#call(`Cloud KMS key ring ${location}/keyRings/${id}`, 'cloudkms.keyRings.create', (kms) =>
      ignoreAlreadyExists(kms.createKeyRing({ parent: location, keyRingId: id, keyRing: {} }, OPTIONS)),
    );
  }

  async getCryptoKey(name: string): Promise<CryptoKeyInfo | undefined> {
    return this.#call(`Cloud KMS key ${name}`, 'cloudkms.cryptoKeys.get', async (kms) => {
      try {
        const [key] = await kms.getCryptoKey({ name }, OPTIONS);
        const next = seconds(key.nextRotationTime);
        return {
          name: key.name ?? name,
          purpose: String(key.purpose ?? 'CRYPTO_KEY_PURPOSE_UNSPECIFIED'),
          rotationPeriodSeconds: seconds(key.rotationPeriod),
          nextRotationTime: next === undefined ? undefined : new Date(next * 1000),
        };
      } catch (err) {
        if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
        throw err;
      }
    });
  }

  async createCryptoKey(keyRing: string, id: string, rotation: KeyRotation): Promise<void> {
    await this.#call(`Cloud KMS key ${keyRing}/cryptoKeys/${id}`, 'cloudkms.cryptoKeys.create', (kms) =>
      ignoreAlreadyExists(
        kms.createCryptoKey(
          {
            parent: keyRing,
            cryptoKeyId: id,
            cryptoKey: {
              purpose: 'ENCRYPT_DECRYPT',
              versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
              rotationPeriod: { seconds: rotation.periodSeconds, nanos: 0 },
              nextRotationTime: timestamp(rotation.nextRotationTime),
            },
          },
          OPTIONS,
        ),
      ),
    );
  }

  async updateRotation(name: string, rotation: KeyRotation): Promise<void> {
    await this.#call(`Cloud KMS key ${name}`, 'cloudkms.cryptoKeys.update', (kms) =>
      kms.updateCryptoKey(
        {
          cryptoKey: {
            name,
            rotationPeriod: { seconds: rotation.periodSeconds, nanos: 0 },
            nextRotationTime: timestamp(rotation.nextRotationTime),
          },
          updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
        },
        OPTIONS,
      ),
    );
  }

  async getIamPolicy(keyName: string): Promise<IamPolicy> {
    return this.#call(`the IAM policy of Cloud KMS key ${keyName}`, 'cloudkms.cryptoKeys.getIamPolicy', async (kms) => {
      // The generated type asks for the protobuf class; gax encodes a plain object the same way.
      const request = { resource: keyName, options: { requestedPolicyVersion: 3 } } as unknown as GetIamPolicyRequest;
      const [policy] = await kms.getIamPolicy(request, OPTIONS);
      return fromApiPolicy(policy);
    });
  }

  async setIamPolicy(keyName: string, policy: IamPolicy): Promise<IamPolicy> {
    // Not retried: a write that may have landed is re-read and re-applied by the caller's read-modify-write.
    return this.#call(
      `the IAM policy of Cloud KMS key ${keyName}`,
      'cloudkms.cryptoKeys.setIamPolicy',
      async (kms) => {
        const request = {
          resource: keyName,
          policy: { version: policy.version, bindings: policy.bindings, etag: Buffer.from(policy.etag, 'base64') },
        } as unknown as SetIamPolicyRequest;
        const [written] = await kms.setIamPolicy(request, OPTIONS);
        return fromApiPolicy(written);
      },
      false,
    );
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  async #call<T>(what: string, permission: string, call: (kms: KeyManagementServiceClient) => Promise<T>, retry = true): Promise<T> {
    const project = this.#clients.target.project;
    try {
      const kms = await this.#clients.kms();
      return await (retry ? retryTransient(() => call(kms)) : call(kms));
    } catch (err) {
      throw toConvergenceError(err, {
        what,
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

/** A create that finds the resource already there (a rerun, or a retry whose answer was lost) succeeded. */
async function ignoreAlreadyExists(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (googleErrorFacts(err).grpcCode !== GrpcCode.ALREADY_EXISTS) throw err;
  }
}

type ApiExpr = { expression?: string | null; title?: string | null; description?: string | null; location?: string | null };
type ApiBinding = { role?: string | null; members?: string[] | null; condition?: ApiExpr | null };
type ApiPolicy = { version?: number | null; bindings?: ApiBinding[] | null; etag?: Uint8Array | string | null };

function fromApiPolicy(policy: ApiPolicy): IamPolicy {
  const etag = policy.etag ?? '';
  return {
    version: policy.version ?? 1,
    bindings: (policy.bindings ?? []).map((binding) => ({
      role: binding.role ?? '',
      members: [...(binding.members ?? [])],
      ...(binding.condition ? { condition: fromApiExpr(binding.condition) } : {}),
    })),
    etag: typeof etag === 'string' ? etag : Buffer.from(etag).toString('base64'),
  };
}

function fromApiExpr(expr: ApiExpr): PolicyCondition {
  return {
    expression: expr.expression ?? '',
    ...(expr.title ? { title: expr.title } : {}),
    ...(expr.description ? { description: expr.description } : {}),
    ...(expr.location ? { location: expr.location } : {}),
  };
}
