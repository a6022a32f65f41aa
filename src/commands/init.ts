import { Args } from '@oclif/core';
import { BaseCommand } from '../lib/base-command.ts';
import { initWorkspace, type InitResult } from '../services/init.ts';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a convergence workspace (convergence.yaml, configs/, .gitignore entries).';
  static override description =
    'Never overwrites an existing file: files already there are kept and reported. Safe to run again in an existing workspace to add missing .gitignore entries.';
  static override examples = ['<%= config.bin %> init demo', '<%= config.bin %> init . --json'];
  static override args = { dir: Args.string({ description: 'Directory of the workspace (created if missing)', default: '.' }) };

  public async run(): Promise<InitResult> {
    const result = await initWorkspace(this.args.dir);
    for (const file of result.created) this.log(`created  ${file}`);
    for (const file of result.updated) this.log(`updated  ${file}`);
    for (const file of result.kept) this.log(`kept     ${file} (already exists)`);
    this.log(`\nWorkspace ready in ${result.root}. Next: cd into it and run \`convergence bootstrap\`.`);
    return result;
  }
}
