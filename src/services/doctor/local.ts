import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GITIGNORE_ENTRIES } from '../init.ts';
import type { Check } from './check.ts';

/** Checks of the local environment: secret files only their owner reads, local state kept out of git. */

export async function secretPermissionsCheck(root: string, stateDir: string, add: (c: Check) => void) {
  const dirs = [path.join(stateDir, 'secrets')];
  const tenants = await readdir(path.join(root, 'configs'), { withFileTypes: true }).catch(() => []);
  for (const t of tenants) if (t.isDirectory()) dirs.push(path.join(root, 'configs', t.name, 'secrets'));
  const loose: string[] = [];
  let count = 0;
  for (const dir of dirs) {
    const files = await readdir(dir).catch(() => []);
    for (const file of files) {
      const full = path.join(dir, file);
      const info = await stat(full).catch(() => undefined);
      if (!info?.isFile()) continue;
      count++;
      if ((info.mode & 0o077) !== 0) loose.push(`${path.relative(root, full)} (${(info.mode & 0o777).toString(8)})`);
    }
  }
  if (loose.length)
    add({
      name: 'secrets',
      status: 'fail',
      detail: `readable by others: ${loose.join(', ')}`,
      fix: `chmod 600 ${loose.map((l) => l.split(' ')[0]).join(' ')}`,
    });
  else add({ name: 'secrets', status: 'pass', detail: `${count} secret file(s), all 0600` });
}

export async function gitignoreCheck(root: string, add: (c: Check) => void) {
  const text = await readFile(path.join(root, '.gitignore'), 'utf8').catch(() => '');
  const lines = new Set(text.split(/\r?\n/).map((l) => l.trim()));
  const missing = GITIGNORE_ENTRIES.filter((e) => !lines.has(e));
  if (missing.length)
    add({
      name: 'gitignore',
      status: 'warn',
      detail: `.gitignore lacks ${missing.join(', ')}`,
      fix: 'run `convergence init` again (it only adds what is missing)',
    });
  else add({ name: 'gitignore', status: 'pass', detail: 'secrets and local state are git-ignored' });
}
