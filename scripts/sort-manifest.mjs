// oclif writes commands in the order the file system lists them, which differs between machines;
// sorting them keeps oclif.manifest.json identical wherever it is built (CI compares it).
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../oclif.manifest.json', import.meta.url);
const manifest = JSON.parse(readFileSync(file, 'utf8'));
manifest.commands = Object.fromEntries(
  Object.keys(manifest.commands)
    .sort()
    .map((id) => [id, manifest.commands[id]]),
);
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
