import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 256 bits need 43 base62 digits; keys are padded to that fixed length. */
export const KEY_BODY_LENGTH = 43;
const TENANT_KEY_PATTERN = /^([a-z][a-z0-9_]{2,49})_api_([0-9A-Za-z]{43})$/;
export const ADMIN_KEY_PATTERN = /^admin_[0-9A-Za-z]{43}$/;

export function base62(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out.padStart(KEY_BODY_LENGTH, '0');
}

/** A fresh key body: 256 random bits in base62. */
export const randomKeyBody = () => base62(randomBytes(32));
export const newTenantKey = (tenantId: string) => `${tenantId}_api_${randomKeyBody()}`;
export const newAdminKey = () => `admin_${randomKeyBody()}`;

export const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

/** Compares two hex digests in time independent of where they differ. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/** The tenant id a well-formed key claims, or undefined for anything malformed. */
export function tenantOfKey(key: string): string | undefined {
  return TENANT_KEY_PATTERN.exec(key)?.[1];
}
