// Fails CI when oclif.manifest.json or commands-docs/ (both generated) differ from what is
// committed. The build has just regenerated the manifest; the docs are regenerated here.
import { execFileSync } from 'node:child_process';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
run('npm', ['run', '--silent', 'docs']);

let insideGit = true;
try {
  run('git', ['rev-parse', '--is-inside-work-tree']);
} catch {
  insideGit = false;
}
if (!insideGit) process.exit(0);
const stale = run('git', ['status', '--porcelain', '--', 'oclif.manifest.json', 'commands-docs', 'README.md']).trim();
if (stale) {
  const message = `generated files are stale or uncommitted:\n${stale}\nRun \`npm run build && npm run docs\` and commit oclif.manifest.json, commands-docs/ and README.md.`;
  if (process.env.CI) {
    console.error(`check-generated: ${message}`);
    process.exit(1);
  }
  console.error(`check-generated (warning): ${message}`);
}
