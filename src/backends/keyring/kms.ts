import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { crc32c } from '@aws-crypto/crc32c';
import { randomBytes } from 'node:crypto';
import { ConvergenceError, ExitCode, keyringError, usageError } from '../../lib/errors.ts';
import type { RetryPolicy } from '../../lib/retry.ts';
import { GrpcCode, googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { IntegrityError, retryTransient } from '../gcp/retry.ts';
import type { KeyRing } from './port.ts';

type TestIamPermissionsRequest = Parameters<KeyManagementServiceClient['testIamPermissions']>[0];

const KEY_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/keyRings\/([^/]+)\/cryptoKeys\/([^/]+)$/;
const ROLE = 'roles/cloudkms.cryptoKeyEncrypterDecrypter';
const USE_TO_ENCRYPT = 'cloudkms.cryptoKeyVersions.useToEncrypt';
const USE_TO_DECRYPT = 'cloudkms.cryptoKeyVersions.useToDecrypt';

/**
 * KMS requires a non-empty plaintext, but the port promises empty values round-trip. An empty
 * value is sent as one byte bound to this AAD, so every other ciphertext stays a plain KMS
 * ciphertext that `gcloud kms decrypt` (and data written before convergence) can read.
 */
const EMPTY_MARKER_AAD = Buffer.from('convergence:keyring:empty-plaintext:v1');
const EMPTY_MARKER = Buffer.from([0]);

type Int64Value = { value?: number | string | { toString(): string } | null } | null | undefined;
const int64 = (field: Int64Value): number | undefined =>
  field?.value === undefined || field.value === null ? undefined : Number(String(field.value));

export interface KmsKeyRingOptions {
  client: KeyManagementServiceClient;
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K (the key, not a version: KMS picks the primary). */
  keyName: string;
  /** Service account or user that calls KMS, for the grant remedy. */
  principal?: string;
  retry?: Partial<RetryPolicy>;
  /** Deadline of one attempt. */
  timeoutMs?: number;
}

/**
 * KeyRing on a Cloud KMS symmetric key. Requests carry CRC32C checksums and responses are
 * verified, as Google recommends for KMS, and transient failures are retried a bounded number
 * of times (Encrypt and Decrypt are safe to repeat).
 */
export class KmsKeyRing implements KeyRing {
  readonly describe: string;
  readonly #client: KeyManagementServiceClient;
  readonly #key: string;
  readonly #principal: string | undefined;
  readonly #retry: Partial<RetryPolicy>;
  readonly #timeoutMs: number;

  constructor(options: KmsKeyRingOptions) {
    if (!KEY_NAME.test(options.keyName)) {
      throw usageError(`kms_key ${JSON.stringify(options.keyName)} is not a Cloud KMS key name`, {
        suggestion: 'use projects/P/locations/L/keyRings/R/cryptoKeys/K (without /cryptoKeyVersions/N)',
      });
    }
    this.#client = options.client;
    this.#key = options.keyName;
    this.#principal = options.principal;
    this.#retry = options.retry ?? {};
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.describe = `Cloud KMS key ${this.#key}`;
  }

  async encrypt(plaintext: Buffer): Promise<Buffer> {
    const empty = plaintext.length === 0;
    const data = empty ? EMPTY_MARKER : plaintext;
    const aad = empty ? EMPTY_MARKER_AAD : undefined;
    return this.#call('encrypt', USE_TO_ENCRYPT, async () => {
      const [response] = await this.#client.encrypt(
        {
          name: this.#key,
          plaintext: data,
          plaintextCrc32c: { value: crc32c(data) },
          ...(aad ? { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } } : {}),
        },
        { retry: null, timeout: this.#timeoutMs },
      );
      const ciphertext = Buffer.from(response.ciphertext ?? []);
      if (!response.verifiedPlaintextCrc32c || (aad && !response.verifiedAdditionalAuthenticatedDataCrc32c)) {
        throw new IntegrityError('KMS did not confirm the checksum of the plaintext it received');
      }
      if (int64(response.ciphertextCrc32c as Int64Value) !== crc32c(ciphertext)) {
        throw new IntegrityError('the ciphertext KMS returned does not match its checksum');
      }
      if (!String(response.name ?? '').startsWith(`${this.#key}/cryptoKeyVersions/`)) {
        throw keyringError(`KMS encrypted with ${response.name || 'an unnamed key'} instead of a version of ${this.#key}`);
      }
      return ciphertext;
    });
  }

  async decrypt(ciphertext: Buffer): Promise<Buffer> {
    if (ciphertext.length === 0) throw keyringError('cannot decrypt an empty ciphertext');
    try {
      return await this.#decrypt(ciphertext, undefined);
    } catch (err) {
      if (!(err instanceof ConvergenceError && err.code === 'KMS_CIPHERTEXT_INVALID')) throw err;
      // Either damaged, from another key, or the empty-value form: only that form names the marker AAD.
      const marker = await this.#decrypt(ciphertext, EMPTY_MARKER_AAD).catch(() => undefined);
      if (marker?.equals(EMPTY_MARKER)) return Buffer.alloc(0);
      throw err;
    }
  }

  /** Permissions first (a precise remedy), then a real encrypt/decrypt round trip. */
  async check(): Promise<void> {
    const wanted = [USE_TO_ENCRYPT, USE_TO_DECRYPT];
    const granted = await this.#call('check permissions on', USE_TO_ENCRYPT, async () => {
      // The generated type asks for the protobuf class; gax encodes a plain object the same way.
      const request = { resource: this.#key, permissions: wanted } as unknown as TestIamPermissionsRequest;
      const [response] = await this.#client.testIamPermissions(request, { retry: null, timeout: this.#timeoutMs });
      return new Set(response.permissions ?? []);
    }).catch((err: unknown) => {
      // Some proxies and older endpoints do not serve the IAM mixin; the round trip still tells.
      if (err instanceof ConvergenceError && err.data?.grpcCode === GrpcCode.UNIMPLEMENTED) return new Set(wanted);
      throw err;
    });
    const missing = wanted.filter((permission) => !granted.has(permission));
    if (missing.length > 0) {
      throw new ConvergenceError('PERMISSION_DENIED', ExitCode.auth, `missing ${missing.join(' and ')} on ${this.describe}`, {
        suggestion: this.#grantRemedy(),
        data: { missing, role: ROLE, key: this.#key },
      });
    }
    const probe = randomBytes(32);
    const back = await this.decrypt(await this.encrypt(probe));
    if (!back.equals(probe)) throw keyringError(`${this.describe} failed an encrypt/decrypt round trip`);
  }

  async #decrypt(ciphertext: Buffer, aad: Buffer | undefined): Promise<Buffer> {
    return this.#call('decrypt', USE_TO_DECRYPT, async () => {
      const [response] = await this.#client.decrypt(
        {
          name: this.#key,
          ciphertext,
          ciphertextCrc32c: { value: crc32c(ciphertext) },
          ...(aad ? { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } } : {}),
        },
        { retry: null, timeout: this.#timeoutMs },
      );
      const plaintext = Buffer.from(response.plaintext ?? []);
      if (int64(response.plaintextCrc32c as Int64Value) !== crc32c(plaintext)) {
        throw new IntegrityError('the plaintext KMS returned does not match its checksum');
      }
      return plaintext;
    });
  }

  async #call<T>(action: string, permission: string, call: () => Promise<T>): Promise<T> {
    try {
      return await retryTransient(call, this.#retry);
    } catch (err) {
      throw this.#mapError(err, action, permission);
    }
  }

  #mapError(err: unknown, action: string, permission: string): ConvergenceError {
    if (err instanceof ConvergenceError) return err;
    if (err instanceof IntegrityError) {
      return keyringError(`${action} with ${this.describe} failed an integrity check: ${err.message}`, {
        cause: err,
        suggestion: 'retry; repeated failures point at a network device altering traffic',
      });
    }
    const facts = googleErrorFacts(err);
    const [, project, location, ring, key] = KEY_NAME.exec(this.#key)!;
    const where = `--keyring ${ring} --location ${location} --project ${project}`;
    if (facts.grpcCode === GrpcCode.FAILED_PRECONDITION) {
      const disabled = /(projects\/\S+\/cryptoKeyVersions\/(\d+)) is not enabled, current state is: (\w+)/.exec(facts.detail);
      if (disabled) {
        const [, version, number, state] = disabled;
        const destroyed = state === 'DESTROYED' || state === 'DESTROY_SCHEDULED';
        return new ConvergenceError(
          'KMS_KEY_DISABLED',
          ExitCode.usage,
          `Cloud KMS key version ${version} is ${state}, so ${this.#key} cannot ${action}`,
          {
            cause: err,
            suggestion: destroyed
              ? state === 'DESTROY_SCHEDULED'
                ? `cancel the destruction: gcloud kms keys versions restore ${number} --key ${key} ${where}, then enable it`
                : 'a destroyed version cannot come back: values encrypted with it are lost; re-create them (e.g. rotate API keys)'
              : `enable it: gcloud kms keys versions enable ${number} --key ${key} ${where}`,
            data: { key: this.#key, version, state },
          },
        );
      }
    }
    if (facts.grpcCode === GrpcCode.INVALID_ARGUMENT && action === 'decrypt' && /decryption failed/i.test(facts.detail)) {
      return new ConvergenceError(
        'KMS_CIPHERTEXT_INVALID',
        ExitCode.usage,
        `ciphertext could not be decrypted with ${this.describe}: it was altered, truncated or encrypted with another key (${facts.detail})`,
        { cause: err, data: { key: this.#key } },
      );
    }
    return toConvergenceError(err, {
      what: this.describe,
      permission,
      role: ROLE,
      resource: this.#key,
      ...(this.#principal ? { principal: this.#principal } : {}),
      grantCommand: this.#grantCommand(),
      api: 'cloudkms.googleapis.com',
      project,
    });
  }

  #grantCommand(): string {
    const [, project, location, ring, key] = KEY_NAME.exec(this.#key)!;
    const member = this.#principal
      ? `${this.#principal.endsWith('.gserviceaccount.com') ? 'serviceAccount' : 'user'}:${this.#principal}`
      : '<member>';
    return `gcloud kms keys add-iam-policy-binding ${key} --keyring ${ring} --location ${location} --project ${project} --member ${member} --role ${ROLE}`;
  }

  #grantRemedy(): string {
    const who = this.#principal ?? 'the account convergence runs as (`gcloud auth list`; on Cloud Run, the service account)';
    return `grant ${ROLE} on ${this.#key} to ${who}, e.g. ${this.#grantCommand()}`;
  }
}
