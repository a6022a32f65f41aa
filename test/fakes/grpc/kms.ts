/**
 * google.cloud.kms.v1.KeyManagementService for symmetric ENCRYPT_DECRYPT keys, with the rules
 * the adapter has to cope with: real AES-256-GCM per key version, ciphertexts that name their
 * version (so another key cannot decrypt them), version states, per-key IAM permissions, the
 * CRC32C integrity fields, and KMS's own status codes and messages.
 */
import { crc32c } from '@aws-crypto/crc32c';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FakePolicy } from './iam-policy.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const KMS_PERMISSIONS = {
  encrypt: 'cloudkms.cryptoKeyVersions.useToEncrypt',
  decrypt: 'cloudkms.cryptoKeyVersions.useToDecrypt',
  getKey: 'cloudkms.cryptoKeys.get',
  getVersion: 'cloudkms.cryptoKeyVersions.get',
} as const;

/** What `setup` needs on the project (all in roles/cloudkms.admin); the operator holds them unless a test revokes some. */
export const KMS_ADMIN_PERMISSIONS = {
  getKeyRing: 'cloudkms.keyRings.get',
  createKeyRing: 'cloudkms.keyRings.create',
  createKey: 'cloudkms.cryptoKeys.create',
  updateKey: 'cloudkms.cryptoKeys.update',
  getIamPolicy: 'cloudkms.cryptoKeys.getIamPolicy',
  setIamPolicy: 'cloudkms.cryptoKeys.setIamPolicy',
} as const;

export type KmsVersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED' | 'DESTROY_SCHEDULED';

const LOCATION_NAME = /^projects\/[^/]+\/locations\/[^/]+$/;
const KEY_RING_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+$/;
/** KMS resource ids: letters, digits, "_" and "-", at most 63. */
const RESOURCE_ID = /^[a-zA-Z0-9_-]{1,63}$/;
const MIN_ROTATION_SECONDS = 24 * 3600;
const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
const VERSION_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/(\d+)$/;
const MAX_PLAINTEXT = 64 * 1024;
// Ciphertext: magic (2) | version id (8) | IV (12) | tag (16) | body. The version id is also AAD.
const MAGIC = Buffer.from([0x0a, 0x4b]);
const ID_BYTES = 8;
const HEADER = MAGIC.length + ID_BYTES + 12 + 16;

interface Version {
  number: number;
  id: Buffer;
  state: KmsVersionState;
  material: Buffer;
}

interface Key {
  name: string;
  purpose: string;
  versions: Version[];
  primary: number;
  granted: Set<string>;
  rotationPeriod?: { seconds: string; nanos: number };
  nextRotationTime?: { seconds: string; nanos: number };
  policy: FakePolicy;
}

const int64 = (field: unknown): number | undefined => {
  if (field === null || field === undefined) return undefined;
  return Number((field as { value: unknown }).value);
};

const checksum = (data: Buffer) => ({ value: String(crc32c(data)) });

export class KmsFake implements FakeService {
  readonly #keys = new Map<string, Key>();
  readonly #keyRings = new Map<string, string>();
  #adminGranted = new Set<string>(Object.values(KMS_ADMIN_PERMISSIONS));

  /** Creates an ENCRYPT_DECRYPT key whose version 1 is primary. Returns the key name. */
  createKey(
    name: string,
    options: { state?: KmsVersionState; granted?: readonly string[]; purpose?: string; rotationPeriodSeconds?: number } = {},
  ): string {
    if (!KEY_NAME.test(name)) throw new Error(`not a crypto key name: ${name}`);
    this.addKeyRing(name.slice(0, name.indexOf('/cryptoKeys/')));
    const key: Key = {
      name,
      purpose: options.purpose ?? 'ENCRYPT_DECRYPT',
      versions: [],
      primary: 1,
      granted: new Set(options.granted ?? Object.values(KMS_PERMISSIONS)),
      policy: new FakePolicy(),
      ...(options.rotationPeriodSeconds ? { rotationPeriod: { seconds: String(options.rotationPeriodSeconds), nanos: 0 } } : {}),
    };
    this.#keys.set(name, key);
    this.#addVersion(key, options.state ?? 'ENABLED');
    return name;
  }

  /** A key ring made outside the API (test setup): projects/P/locations/L/keyRings/R. */
  addKeyRing(name: string): void {
    if (!KEY_RING_NAME.test(name)) throw new Error(`not a key ring name: ${name}`);
    if (!this.#keyRings.has(name)) this.#keyRings.set(name, new Date().toISOString());
  }

  hasKeyRing(name: string): boolean {
    return this.#keyRings.has(name);
  }

  /** The key's IAM policy (bindings, etag), for assertions and for a concurrent writer in tests. */
  policy(keyName: string): FakePolicy {
    return this.#key(keyName).policy;
  }

  /** The key as GetCryptoKey answers it. */
  describeKey(keyName: string): Record<string, unknown> {
    return this.#describeKey(this.#key(keyName));
  }

  /** Replaces the project-level KMS admin permissions the operator holds (KMS_ADMIN_PERMISSIONS). */
  grantAdmin(permissions: readonly string[]): void {
    this.#adminGranted = new Set(permissions);
  }

  iamPolicy(resource: string, access: 'get' | 'set'): FakePolicy | undefined {
    if (!KEY_NAME.test(resource)) return undefined;
    const key = this.#find(resource);
    this.#requireAdmin(access === 'get' ? KMS_ADMIN_PERMISSIONS.getIamPolicy : KMS_ADMIN_PERMISSIONS.setIamPolicy, resource);
    return key.policy;
  }

  /** Adds a version and makes it primary, like `gcloud kms keys versions create --primary`. */
  rotate(keyName: string): string {
    const key = this.#key(keyName);
    const version = this.#addVersion(key, 'ENABLED');
    key.primary = version.number;
    return `${keyName}/cryptoKeyVersions/${version.number}`;
  }

  /** Sets a version's state; a key name means its primary version. */
  setState(name: string, state: KmsVersionState): void {
    const match = VERSION_NAME.exec(name);
    const key = this.#key(match ? match[1]! : name);
    const number = match ? Number(match[2]) : key.primary;
    const version = key.versions.find((candidate) => candidate.number === number);
    if (!version) throw new Error(`no version ${number} of ${key.name}`);
    version.state = state;
  }

  /** Replaces the permissions the caller holds on a key. */
  grant(keyName: string, permissions: readonly string[]): void {
    this.#key(keyName).granted = new Set(permissions);
  }

  iamPermissions(resource: string): ReadonlySet<string> | undefined {
    if (!KEY_NAME.test(resource)) return undefined;
    return this.#find(resource).granted;
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: protosJsonOf('@google-cloud/kms'),
        service: 'google.cloud.kms.v1.KeyManagementService',
        handlers: {
          Encrypt: (request) => this.#encrypt(request),
          Decrypt: (request) => this.#decrypt(request),
          GetKeyRing: (request) => {
            const name = String(request.name);
            if (!KEY_RING_NAME.test(name)) throw new FakeStatus(status.INVALID_ARGUMENT, `${name} is not a valid KeyRing name.`);
            this.#requireAdmin(KMS_ADMIN_PERMISSIONS.getKeyRing, name);
            const created = this.#keyRings.get(name);
            if (!created) throw new FakeStatus(status.NOT_FOUND, `KeyRing ${name} not found.`);
            return { name, createTime: timestampOf(created) };
          },
          CreateKeyRing: (request) => this.#createKeyRing(request),
          CreateCryptoKey: (request) => this.#createCryptoKey(request),
          UpdateCryptoKey: (request) => this.#updateCryptoKey(request),
          GetCryptoKey: (request) => {
            const key = this.#find(String(request.name));
            this.#require(key, KMS_PERMISSIONS.getKey, key.name);
            return this.#describeKey(key);
          },
          GetCryptoKeyVersion: (request) => {
            const { key, version } = this.#findVersion(String(request.name));
            this.#require(key, KMS_PERMISSIONS.getVersion, String(request.name));
            return this.#describeVersion(key, version);
          },
        },
      },
    ];
  }

  #createKeyRing(request: Record<string, unknown>) {
    const parent = String(request.parent);
    const id = String(request.keyRingId ?? '');
    if (!LOCATION_NAME.test(parent)) throw new FakeStatus(status.INVALID_ARGUMENT, `${parent} is not a valid Location name.`);
    if (!RESOURCE_ID.test(id))
      throw new FakeStatus(status.INVALID_ARGUMENT, `key_ring_id "${id}" is invalid: it must match [a-zA-Z0-9_-]{1,63}.`);
    this.#requireAdmin(KMS_ADMIN_PERMISSIONS.createKeyRing, parent);
    const name = `${parent}/keyRings/${id}`;
    if (this.#keyRings.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, `KeyRing ${name} already exists.`);
    this.addKeyRing(name);
    return { name, createTime: timestampOf(this.#keyRings.get(name)!) };
  }

  #createCryptoKey(request: Record<string, unknown>) {
    const parent = String(request.parent);
    const id = String(request.cryptoKeyId ?? '');
    if (!KEY_RING_NAME.test(parent)) throw new FakeStatus(status.INVALID_ARGUMENT, `${parent} is not a valid KeyRing name.`);
    if (!RESOURCE_ID.test(id))
      throw new FakeStatus(status.INVALID_ARGUMENT, `crypto_key_id "${id}" is invalid: it must match [a-zA-Z0-9_-]{1,63}.`);
    this.#requireAdmin(KMS_ADMIN_PERMISSIONS.createKey, parent);
    if (!this.#keyRings.has(parent)) throw new FakeStatus(status.NOT_FOUND, `KeyRing ${parent} not found.`);
    const name = `${parent}/cryptoKeys/${id}`;
    if (this.#keys.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, `CryptoKey ${name} already exists.`);
    const body = (request.cryptoKey ?? {}) as Record<string, unknown>;
    const purpose = String(body.purpose ?? 'CRYPTO_KEY_PURPOSE_UNSPECIFIED');
    if (purpose === 'CRYPTO_KEY_PURPOSE_UNSPECIFIED')
      throw new FakeStatus(status.INVALID_ARGUMENT, 'The request must specify a CryptoKey purpose.');
    const rotation = this.#rotation(body, purpose);
    this.createKey(name, { purpose });
    Object.assign(this.#key(name), rotation);
    return this.#describeKey(this.#key(name));
  }

  #updateCryptoKey(request: Record<string, unknown>) {
    const body = (request.cryptoKey ?? {}) as Record<string, unknown>;
    const key = this.#find(String(body.name));
    this.#requireAdmin(KMS_ADMIN_PERMISSIONS.updateKey, key.name);
    const paths = ((request.updateMask as { paths?: string[] } | undefined)?.paths ?? []).map(String);
    if (paths.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'The request must specify an update_mask.');
    const unknown = paths.filter((path) => !['rotation_period', 'next_rotation_time', 'labels'].includes(path));
    if (unknown.length > 0)
      throw new FakeStatus(status.INVALID_ARGUMENT, `The update_mask contains a field that cannot be updated: ${unknown[0]}.`);
    const rotation = this.#rotation(body, key.purpose);
    if (paths.includes('rotation_period')) key.rotationPeriod = rotation.rotationPeriod;
    if (paths.includes('next_rotation_time')) key.nextRotationTime = rotation.nextRotationTime;
    return this.#describeKey(key);
  }

  /** KMS's rules for automatic rotation: symmetric keys only, at least a day apart, next time not in the past. */
  #rotation(body: Record<string, unknown>, purpose: string): Pick<Key, 'rotationPeriod' | 'nextRotationTime'> {
    const period = body.rotationPeriod as { seconds?: string | number } | undefined;
    const next = body.nextRotationTime as { seconds?: string | number } | undefined;
    if (!period && !next) return {};
    if (purpose !== 'ENCRYPT_DECRYPT') {
      throw new FakeStatus(status.INVALID_ARGUMENT, 'Automatic rotation is only supported for keys with purpose ENCRYPT_DECRYPT.');
    }
    if (period && Number(period.seconds ?? 0) < MIN_ROTATION_SECONDS) {
      throw new FakeStatus(status.INVALID_ARGUMENT, 'The rotation_period must be at least 86400s (1 day).');
    }
    if (next && Number(next.seconds ?? 0) * 1000 < Date.now() - 60_000) {
      throw new FakeStatus(status.INVALID_ARGUMENT, 'The next_rotation_time must be in the future.');
    }
    return {
      ...(period ? { rotationPeriod: { seconds: String(period.seconds ?? 0), nanos: 0 } } : {}),
      ...(next ? { nextRotationTime: { seconds: String(next.seconds ?? 0), nanos: 0 } } : {}),
    };
  }

  #requireAdmin(permission: string, resource: string): void {
    if (!this.#adminGranted.has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`);
    }
  }

  #encrypt(request: Record<string, unknown>) {
    const name = String(request.name);
    const { key, version } = VERSION_NAME.test(name) ? this.#findVersion(name) : this.#primaryOf(this.#find(name));
    this.#require(key, KMS_PERMISSIONS.encrypt, name);
    const plaintext = request.plaintext as Buffer;
    const aad = request.additionalAuthenticatedData as Buffer;
    if (plaintext.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Plaintext is required.');
    if (plaintext.length > MAX_PLAINTEXT) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `The plaintext must be no larger than ${MAX_PLAINTEXT} bytes.`);
    }
    this.#verifyChecksum(plaintext, request.plaintextCrc32c, 'plaintext');
    this.#verifyChecksum(aad, request.additionalAuthenticatedDataCrc32c, 'additional_authenticated_data');
    this.#requireEnabled(key, version);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.material, iv);
    cipher.setAAD(Buffer.concat([version.id, aad]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const ciphertext = Buffer.concat([MAGIC, version.id, iv, cipher.getAuthTag(), body]);
    return {
      name: `${key.name}/cryptoKeyVersions/${version.number}`,
      ciphertext,
      ciphertextCrc32c: checksum(ciphertext),
      verifiedPlaintextCrc32c: int64(request.plaintextCrc32c) !== undefined,
      verifiedAdditionalAuthenticatedDataCrc32c: int64(request.additionalAuthenticatedDataCrc32c) !== undefined,
      protectionLevel: 'SOFTWARE',
    };
  }

  #decrypt(request: Record<string, unknown>) {
    const name = String(request.name);
    if (!KEY_NAME.test(name)) throw new FakeStatus(status.INVALID_ARGUMENT, `${name} is not a valid CryptoKey name.`);
    const key = this.#find(name);
    this.#require(key, KMS_PERMISSIONS.decrypt, name);
    const ciphertext = request.ciphertext as Buffer;
    const aad = request.additionalAuthenticatedData as Buffer;
    if (ciphertext.length === 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Ciphertext is required.');
    this.#verifyChecksum(ciphertext, request.ciphertextCrc32c, 'ciphertext');
    this.#verifyChecksum(aad, request.additionalAuthenticatedDataCrc32c, 'additional_authenticated_data');
    const invalid = () => new FakeStatus(status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
    if (ciphertext.length < HEADER || !ciphertext.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid();
    const id = ciphertext.subarray(MAGIC.length, MAGIC.length + ID_BYTES);
    const owner = [...this.#keys.values()].find((candidate) => candidate.versions.some((version) => version.id.equals(id)));
    if (!owner) throw invalid();
    if (owner !== key)
      throw new FakeStatus(status.INVALID_ARGUMENT, "Decryption failed: verify that 'name' refers to the correct CryptoKey.");
    const version = key.versions.find((candidate) => candidate.id.equals(id))!;
    this.#requireEnabled(key, version);
    const ivAt = MAGIC.length + ID_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', version.material, ciphertext.subarray(ivAt, ivAt + 12));
    decipher.setAAD(Buffer.concat([version.id, aad]));
    decipher.setAuthTag(ciphertext.subarray(ivAt + 12, HEADER));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(ciphertext.subarray(HEADER)), decipher.final()]);
    } catch {
      throw invalid();
    }
    return { plaintext, plaintextCrc32c: checksum(plaintext), usedPrimary: version.number === key.primary, protectionLevel: 'SOFTWARE' };
  }

  #verifyChecksum(data: Buffer, field: unknown, fieldName: string): void {
    const expected = int64(field);
    if (expected !== undefined && expected !== crc32c(data)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `The checksum in field ${fieldName}_crc32c did not match the data in field ${fieldName}.`,
      );
    }
  }

  #require(key: Key, permission: string, resource: string): void {
    if (!key.granted.has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`);
    }
  }

  #requireEnabled(key: Key, version: Version): void {
    if (version.state !== 'ENABLED') {
      throw new FakeStatus(
        status.FAILED_PRECONDITION,
        `${key.name}/cryptoKeyVersions/${version.number} is not enabled, current state is: ${version.state}.`,
      );
    }
  }

  #addVersion(key: Key, state: KmsVersionState): Version {
    const version = { number: key.versions.length + 1, id: randomBytes(ID_BYTES), state, material: randomBytes(32) };
    key.versions.push(version);
    return version;
  }

  #key(name: string): Key {
    const key = this.#keys.get(name);
    if (!key) throw new Error(`the fake has no key ${name}; createKey it first`);
    return key;
  }

  #find(name: string): Key {
    if (!KEY_NAME.test(name)) throw new FakeStatus(status.INVALID_ARGUMENT, `${name} is not a valid CryptoKey name.`);
    const key = this.#keys.get(name);
    if (!key) throw new FakeStatus(status.NOT_FOUND, `CryptoKey ${name} not found.`);
    return key;
  }

  #findVersion(name: string): { key: Key; version: Version } {
    const match = VERSION_NAME.exec(name);
    if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `${name} is not a valid CryptoKeyVersion name.`);
    const key = this.#find(match[1]!);
    const version = key.versions.find((candidate) => candidate.number === Number(match[2]));
    if (!version) throw new FakeStatus(status.NOT_FOUND, `CryptoKeyVersion ${name} not found.`);
    return { key, version };
  }

  #primaryOf(key: Key): { key: Key; version: Version } {
    return { key, version: key.versions.find((version) => version.number === key.primary)! };
  }

  #describeVersion(key: Key, version: Version) {
    return {
      name: `${key.name}/cryptoKeyVersions/${version.number}`,
      state: version.state,
      protectionLevel: 'SOFTWARE',
      algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
    };
  }

  #describeKey(key: Key) {
    const { version } = this.#primaryOf(key);
    return {
      name: key.name,
      purpose: key.purpose,
      primary: this.#describeVersion(key, version),
      ...(key.rotationPeriod ? { rotationPeriod: key.rotationPeriod } : {}),
      ...(key.nextRotationTime ? { nextRotationTime: key.nextRotationTime } : {}),
      versionTemplate: { protectionLevel: 'SOFTWARE', algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' },
    };
  }
}

const timestampOf = (iso: string) => ({ seconds: String(Math.floor(Date.parse(iso) / 1000)), nanos: 0 });
