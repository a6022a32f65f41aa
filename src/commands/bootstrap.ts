import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { confirm } from '../cli/prompt.ts';
import { runStages } from '../cli/progress.ts';
import { formatTable } from '../cli/render.ts';
import { bootstrap, type BootstrapResult } from '../services/bootstrap.ts';

export default class Bootstrap extends BaseCommand<typeof Bootstrap> {
  static override summary = 'Create the central "tenants" metadata dataset, its 11 tables and schema_migrations.';
  static override description =
    'Idempotent: a second run creates nothing and reports every table as present. Pending schema migrations are applied. The --force options drop data and ask for confirmation first.';
  static override examples = [
    '<%= config.bin %> bootstrap',
    '<%= config.bin %> bootstrap --env staging --json',
    '<%= config.bin %> bootstrap --force-recreate-tables --yes',
  ];
  static override flags = {
    'force-recreate-tables': Flags.boolean({ description: 'Drop and recreate the metadata tables (their rows are lost)' }),
    'force-recreate-dataset': Flags.boolean({ description: 'Drop and recreate the whole "tenants" dataset' }),
    yes: Flags.boolean({ char: 'y', description: 'Confirm destructive steps without a prompt' }),
  };

  public async run(): Promise<BootstrapResult> {
    const ctx = await this.context();
    const { flags } = this;
    if (flags['force-recreate-dataset'] || flags['force-recreate-tables']) {
      const what = flags['force-recreate-dataset'] ? 'the dataset "tenants"' : 'the metadata tables';
      await confirm(`This drops ${what} of environment "${ctx.env.name}" and every row in it. Continue?`, {
        yes: flags.yes,
        action: `drop ${what}`,
      });
    }
    const state = { result: undefined as BootstrapResult | undefined };
    await runStages(
      [
        {
          title: `Bootstrap metadata in ${ctx.env.name}`,
          task: async (c, task) => {
            c.result = await bootstrap(ctx, {
              forceRecreateDataset: flags['force-recreate-dataset'],
              forceRecreateTables: flags['force-recreate-tables'],
              onProgress: (m) => (task.output = m),
            });
            task.title = `Bootstrap metadata in ${ctx.env.name}: ${c.result.tablesCreated.length} created, ${c.result.tablesPresent.length} present`;
          },
        },
      ],
      state,
      { json: this.jsonEnabled() },
    );
    const result = state.result!;
    this.log(
      formatTable(result.tables, [
        { header: 'table', get: (t) => `${result.dataset}.${t.name}` },
        { header: 'state', get: (t) => t.state },
        { header: 'columns', get: (t) => t.columns },
      ]),
    );
    this.log(
      `\n${result.tablesCreated.length} created, ${result.tablesPresent.length} present${result.tablesRecreated.length ? `, ${result.tablesRecreated.length} recreated` : ''}; schema version ${result.schemaVersion} (${result.warehouse})`,
    );
    return result;
  }
}
