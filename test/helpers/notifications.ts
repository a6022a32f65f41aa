/** Workspace set-up of the notification tests: a pipeline that fails its data-quality step, and the environment's targets. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A pipeline of the demo's files whose data-quality step fails (exit 4), or passes with `passing`. */
export function notifyPipeline(options: { passing?: boolean; notifications?: string } = {}): string {
  return [
    'pipeline_id: p_notify',
    'timeout: 10m',
    ...(options.notifications ? [options.notifications] : []),
    'steps:',
    '  - name: ingest_usage',
    '    type: ingest',
    '    source_config: sources/usage_files.yml',
    '    destination: { table: raw_notify, write_mode: replace }',
    '  - name: check_usage',
    '    type: dq',
    '    table: raw_notify',
    '    rules:',
    `      - { check: accepted_values, column: provider, values: [${options.passing ? 'anthropic, openai, cursor' : 'nobody'}] }`,
    '',
  ].join('\n');
}

/** The `notifications:` of the local environment in convergence.yaml. */
export async function setEnvironmentNotifications(root: string, lines: string[]): Promise<void> {
  const file = path.join(root, 'convergence.yaml');
  const text = await readFile(file, 'utf8');
  const block = ['    notifications:', ...lines.map((line) => `      - ${line}`)].join('\n');
  await writeFile(file, text.replace(/^( {4}backend: local\n)/m, `$1${block}\n`));
}
