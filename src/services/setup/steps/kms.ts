import type { CryptoKeyInfo, KmsAdmin } from '../../../backends/kms-admin/port.ts';
import { usageError } from '../../../lib/errors.ts';
import { grantRole, membersLacking, serviceAccountMember } from '../resource-iam.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** The seeds rotate the API-key encryption key every 90 days. */
export const ROTATION_PERIOD_SECONDS = 90 * 24 * 3600;
const ENCRYPTER_DECRYPTER = 'roles/cloudkms.cryptoKeyEncrypterDecrypter';
const KEY_NAME = /^(projects\/[^/]+\/locations\/[^/]+)\/keyRings\/([^/]+)\/cryptoKeys\/([^/]+)$/;

interface KeyParts {
  location: string;
  ringId: string;
  ring: string;
  keyId: string;
  key: string;
}

function keyParts(setup: SetupContext): KeyParts {
  const key = setup.names.kmsKey;
  const match = KEY_NAME.exec(key);
  if (!match) {
    throw usageError(`kms_key ${JSON.stringify(key)} is not a Cloud KMS key name`, {
      suggestion: `set environments.${setup.env.name}.kms_key to projects/P/locations/L/keyRings/R/cryptoKeys/K`,
    });
  }
  const [, location, ringId, keyId] = match as unknown as [string, string, string, string];
  return { location, ringId, ring: `${location}/keyRings/${ringId}`, keyId, key };
}

/** The API and the job encrypt and decrypt tenants' keys and credentials with this key. */
const users = (setup: SetupContext) => [serviceAccountMember(setup.names.apiAccount), serviceAccountMember(setup.names.jobAccount)];

const rotation = (setup: SetupContext) => ({
  periodSeconds: ROTATION_PERIOD_SECONDS,
  nextRotationTime: new Date(setup.ctx.now().getTime() + ROTATION_PERIOD_SECONDS * 1000),
});

/** A key of another purpose (signing, MAC) cannot encrypt: setup will not repurpose what someone made. */
function assertSymmetric(setup: SetupContext, key: CryptoKeyInfo): void {
  if (key.purpose === 'ENCRYPT_DECRYPT') return;
  throw usageError(`Cloud KMS key ${key.name} exists with purpose ${key.purpose}; convergence needs an ENCRYPT_DECRYPT key`, {
    suggestion: `set environments.${setup.env.name}.kms_key in convergence.yaml to another key name (setup creates it), e.g. …/cryptoKeys/api-key-encryption-${setup.env.name}`,
    data: { key: key.name, purpose: key.purpose },
  });
}

async function withKms<T>(setup: SetupContext, use: (kms: KmsAdmin) => Promise<T>): Promise<T> {
  const kms = await setup.ctx.backends.kmsAdmin!();
  try {
    return await use(kms);
  } finally {
    await kms.close();
  }
}

const grantChanges = (parts: KeyParts, members: readonly string[]): PlannedChange[] =>
  members.map((member) => ({ action: 'grant', resource: parts.key, detail: `${ENCRYPTER_DECRYPTER} to ${member}` }));

/**
 * The key ring and the symmetric key that encrypts API keys and credentials, rotated every 90
 * days, usable by the API service and the pipeline job only (granted on the key, not the project).
 */
export const kmsStep: SetupStep = {
  id: 'kms',
  title: 'Create the Cloud KMS key',
  plan: (setup) =>
    withKms(setup, async (kms): Promise<PlannedChange[]> => {
      const parts = keyParts(setup);
      const changes: PlannedChange[] = [];
      if (!(await kms.keyRingExists(parts.ring))) changes.push({ action: 'create', resource: parts.ring, detail: 'key ring' });
      const key = changes.length > 0 ? undefined : await kms.getCryptoKey(parts.key);
      if (!key) {
        changes.push({ action: 'create', resource: parts.key, detail: 'ENCRYPT_DECRYPT key, rotated every 90 days' });
        return [...changes, ...grantChanges(parts, users(setup))];
      }
      assertSymmetric(setup, key);
      if (key.rotationPeriodSeconds === undefined) {
        changes.push({ action: 'update', resource: parts.key, detail: 'rotate every 90 days (rotation_period, next_rotation_time)' });
      }
      return [...changes, ...grantChanges(parts, membersLacking(await kms.getIamPolicy(parts.key), ENCRYPTER_DECRYPTER, users(setup)))];
    }),
  async apply(setup, changes) {
    if (changes.length === 0) return;
    const parts = keyParts(setup);
    const planned = (action: PlannedChange['action'], resource: string) =>
      changes.some((change) => change.action === action && change.resource === resource);
    await withKms(setup, async (kms) => {
      // Creates tolerate ALREADY_EXISTS (the adapter's), so a rerun after a half-applied setup goes on.
      if (planned('create', parts.ring)) await kms.createKeyRing(parts.location, parts.ringId);
      if (planned('create', parts.key)) await kms.createCryptoKey(parts.ring, parts.keyId, rotation(setup));
      if (planned('update', parts.key)) await kms.updateRotation(parts.key, rotation(setup));
      if (changes.some((change) => change.action === 'grant')) {
        await grantRole(
          { read: () => kms.getIamPolicy(parts.key), write: (policy) => kms.setIamPolicy(parts.key, policy) },
          ENCRYPTER_DECRYPTER,
          users(setup),
        );
      }
    });
  },
};
