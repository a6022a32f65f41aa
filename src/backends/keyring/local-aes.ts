import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { keyringError } from '../../lib/errors.ts';
import type { KeyRing } from './port.ts';

/**
 * AES-256-GCM with one 32-byte key kept base64 in a 0600 file. Ciphertext layout:
 * version (1) | IV (12) | tag (16) | ciphertext, so the format can change without guessing.
 */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;

export class LocalKeyRing implements KeyRing {
  readonly describe: string;
  readonly #keyFile: string;

  constructor(options: { keyFile: string }) {
    this.#keyFile = path.resolve(options.keyFile);
    this.describe = `local AES-256-GCM key ${this.#keyFile}`;
  }

  async encrypt(plaintext: Buffer): Promise<Buffer> {
    const key = (await this.#readKey()) ?? (await this.#createKey());
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
  }

  async decrypt(ciphertext: Buffer): Promise<Buffer> {
    const key = await this.#readKey();
    if (!key) throw this.#missing();
    if (ciphertext.length < HEADER_BYTES || ciphertext[0] !== VERSION) {
      throw keyringError('ciphertext is not in the local keyring format (wrong version or truncated)');
    }
    const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(1, 1 + IV_BYTES));
    decipher.setAuthTag(ciphertext.subarray(1 + IV_BYTES, HEADER_BYTES));
    try {
      return Buffer.concat([decipher.update(ciphertext.subarray(HEADER_BYTES)), decipher.final()]);
    } catch (err) {
      throw keyringError(`ciphertext failed authentication with ${this.#keyFile}: it was altered or encrypted with another key`, {
        cause: err,
      });
    }
  }

  async check(): Promise<void> {
    const key = await this.#readKey();
    if (!key) {
      throw keyringError(`keyring file ${this.#keyFile} does not exist yet`, {
        suggestion: 'it is created on first use; if values were encrypted before, restore the file from a backup',
        data: { missing: true },
      });
    }
    const mode = (await stat(this.#keyFile)).mode & 0o777;
    if (mode & 0o077) {
      throw keyringError(`keyring file ${this.#keyFile} has mode ${mode.toString(8).padStart(4, '0')}; only its owner may read it`, {
        suggestion: `chmod 600 ${this.#keyFile}`,
      });
    }
    const probe = randomBytes(16);
    if (!(await this.decrypt(await this.encrypt(probe))).equals(probe)) {
      throw keyringError(`keyring ${this.#keyFile} failed an encrypt/decrypt round trip`);
    }
  }

  #missing() {
    return keyringError(`keyring file ${this.#keyFile} is missing; values encrypted with it cannot be decrypted`, {
      suggestion: 'restore the file from a backup, or re-create the encrypted values (e.g. rotate API keys)',
    });
  }

  async #readKey(): Promise<Buffer | undefined> {
    let text: string;
    try {
      text = (await readFile(this.#keyFile, 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw keyringError(`cannot read keyring file ${this.#keyFile}: ${(err as Error).message}`, { cause: err });
    }
    if (!KEY_TEXT.test(text)) {
      throw keyringError(`keyring file ${this.#keyFile} is corrupted (expected 32 bytes, base64)`, {
        suggestion: 'restore the file from a backup',
      });
    }
    return Buffer.from(text, 'base64');
  }

  /**
   * The key is written in full to a private temp file and then linked into place: link fails
   * when the file exists, so of two racing processes one key wins and neither can read a
   * half-written file.
   */
  async #createKey(): Promise<Buffer> {
    await mkdir(path.dirname(this.#keyFile), { recursive: true, mode: 0o700 });
    const temp = `${this.#keyFile}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    try {
      await link(temp, this.#keyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    const key = await this.#readKey();
    if (!key) throw this.#missing();
    return key;
  }
}
