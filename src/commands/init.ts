import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { initWorkspace, type InitResult } from '../services/init.ts';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a convergence workspace (convergence.yaml, configs/, .gitignore entries).';
  static override description =
    'Never overwrites an existing file: files already there are kept and reported. Safe to run again in an existing workspace to add missing .gitignore entries.';
  static override examples = ['<%= config.bin %> init demo', '<%= config.bin %> init demo --example', '<%= config.bin %> init . --json'];
  static override flags = {
    example: Flags.boolean({
      description: 'Also add the demo tenant acme_corp: an AI usage analytics pipeline with a week of sample usage data',
    }),
  };
  static override args = { dir: Args.string({ description: 'Directory of the workspace (created if missing)', default: '.' }) };

  public async run(): Promise<InitResult> {
    const result = await initWorkspace(this.args.dir);
    if (this.flags.example) {
      const { installExample } = await import('../services/example.ts');
      const example = await installExample(result.root);
      result.created.push(...example.created);
      result.kept.push(...example.kept);
    }
    for (const file of result.created) this.log(`created  ${file}`);
    for (const file of result.updated) this.log(`updated  ${file}`);
    for (const file of result.kept) this.log(`kept     ${file} (already exists)`);
    this.log(`\nWorkspace ready in ${result.root}. Next: cd into it and run \`convergence bootstrap\`.`);
    if (this.flags.example) {
      this.log(
        'Then: `convergence tenant create acme_corp --name "ACME Corp"` and `convergence pipeline run p_usage_daily --tenant acme_corp`.',
      );
    }
    return result;
  }
}
