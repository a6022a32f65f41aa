import type { IamPolicy } from '../../domain/iam-policy.ts';

/**
 * KmsAdmin port: the Cloud KMS resources `setup` creates (a key ring, one symmetric key with a
 * rotation schedule) and the key's IAM policy. Encrypting with the key is the KeyRing port's job.
 */
export interface KmsAdmin {
  /** Whether projects/P/locations/L/keyRings/R exists. */
  keyRingExists(name: string): Promise<boolean>;
  /** Creates keyRings/<id> under projects/P/locations/L. */
  createKeyRing(location: string, id: string): Promise<void>;
  /** The key, or undefined when it does not exist. */
  getCryptoKey(name: string): Promise<CryptoKeyInfo | undefined>;
  /** Creates an ENCRYPT_DECRYPT key cryptoKeys/<id> in the key ring with the rotation schedule. */
  createCryptoKey(keyRing: string, id: string, rotation: KeyRotation): Promise<void>;
  /** Sets rotation_period and next_rotation_time of an existing key (an update mask of those two). */
  updateRotation(name: string, rotation: KeyRotation): Promise<void>;
  getIamPolicy(keyName: string): Promise<IamPolicy>;
  /** Writes the policy under its etag: a policy changed since it was read is refused (CONFLICT). */
  setIamPolicy(keyName: string, policy: IamPolicy): Promise<IamPolicy>;
  close(): Promise<void>;
}

export interface CryptoKeyInfo {
  name: string;
  /** ENCRYPT_DECRYPT, ASYMMETRIC_SIGN, ... */
  purpose: string;
  /** Undefined when the key never rotates. */
  rotationPeriodSeconds: number | undefined;
  nextRotationTime: Date | undefined;
}

export interface KeyRotation {
  periodSeconds: number;
  nextRotationTime: Date;
}
