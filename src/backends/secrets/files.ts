import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertName, assertTenantId, NAME_PATTERN } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { isInside } from '../../lib/paths.ts';
import type { SecretStore } from './port.ts';

/**
 * Secrets as files, the layout operators already use: `configs/<tenant>/secrets/<name>.txt` for
 * tenants and `<systemDir>/<name>.txt` for system secrets. Tenant and name are validated, so
 * neither can climb out of its folder.
 */
export class FileSecretStore implements SecretStore {
  readonly describe: string;
  readonly #root: string;
  readonly #systemDir: string;

  constructor(options: { workspaceRoot: string; systemDir: string }) {
    this.#root = path.resolve(options.workspaceRoot);
    this.#systemDir = path.resolve(options.systemDir);
    this.describe = `files under ${path.join(this.#root, 'configs')} and ${this.#systemDir}`;
  }

  #dir(tenant: string | null): string {
    if (tenant === null) return this.#systemDir;
    return path.join(this.#root, 'configs', assertTenantId(tenant), 'secrets');
  }

  #file(tenant: string | null, name: string): string {
    return path.join(this.#dir(tenant), `${assertName('secret name', name)}.txt`);
  }

  async get(tenant: string | null, name: string): Promise<string | undefined> {
    const file = this.#file(tenant, name);
    try {
      const resolved = await this.#confined(tenant, file);
      // Hand-edited files usually end in a newline that is not part of the secret.
      return (await readFile(resolved, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * The file a secret name resolves to, links followed, provided it lies in the secrets folder it
   * was asked of: a link in one tenant's secrets/ must not hand over another tenant's secret (or
   * the admin key), and neither may a linked secrets/ or tenant folder. The message names the link,
   * never its target.
   */
  async #confined(tenant: string | null, file: string): Promise<string> {
    const dir = this.#dir(tenant);
    const owner = tenant === null ? this.#systemDir : path.dirname(dir);
    const [resolved, realDir, realOwner] = await Promise.all([realpath(file), realpath(dir), realpath(owner)]);
    const expectedDir = tenant === null ? realOwner : path.join(realOwner, 'secrets');
    const ownerIsLink = tenant !== null && (await lstat(owner)).isSymbolicLink();
    if (ownerIsLink || realDir !== expectedDir || !isInside(resolved, realDir)) {
      throw new ConvergenceError(
        'SECRET_PATH',
        ExitCode.usage,
        `secret file ${path.relative(this.#root, file)} leads outside ${path.relative(this.#root, dir)}/`,
        {
          suggestion: 'keep secret files (not links to other folders) in the secrets folder they belong to',
        },
      );
    }
    return resolved;
  }

  async put(tenant: string | null, name: string, value: string): Promise<void> {
    const file = this.#file(tenant, name);
    const dir = path.dirname(file);
    await mkdir(path.dirname(dir), { recursive: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Temp names start with "." so list() never mistakes one for a secret.
    const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temp, value, { flag: 'wx', mode: 0o600 });
      await rename(temp, file);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  async delete(tenant: string | null, name: string): Promise<boolean> {
    try {
      await unlink(this.#file(tenant, name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async list(tenant: string | null): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.#dir(tenant));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((entry) => entry.endsWith('.txt'))
      .map((entry) => entry.slice(0, -'.txt'.length))
      .filter((name) => NAME_PATTERN.test(name))
      .sort();
  }
}
