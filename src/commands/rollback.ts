import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { runStages } from '../cli/progress.ts';
import { confirm } from '../cli/prompt.ts';
import { formatTable } from '../cli/render.ts';
import { jobChangeLines } from '../cli/setting-changes.ts';

export default class Rollback extends BaseCommand<typeof Rollback> {
  static override summary = 'Send all traffic of the Cloud Run service back to an earlier revision.';
  static override description =
    'Without --to, the ready revision created before the one serving most traffic. No canary steps; the revision is health-checked after and the rollback is recorded in deployment_history. --list shows the revisions with their traffic.';
  static override examples = [
    '<%= config.bin %> rollback --env staging --list',
    '<%= config.bin %> rollback --env prod --yes',
    '<%= config.bin %> rollback --env staging --to convergence-api-staging-00003-abc --json',
  ];
  static override flags = {
    to: Flags.string({ description: 'Revision to roll back to (default: the previous ready revision)' }),
    list: Flags.boolean({ description: 'List the revisions with their traffic; change nothing' }),
    'dry-run': Flags.boolean({ description: 'Show what would change and validate it with validateOnly' }),
    yes: Flags.boolean({ char: 'y', description: 'Roll back a production environment without a prompt' }),
  };

  public async run() {
    const ctx = await this.context();
    const { flags } = this;
    const { listRevisions, rollback } = await import('../services/deploy/rollback.ts');
    const { rollbackPrompt } = await import('../services/deploy/production.ts');
    if (flags.list) {
      const revisions = await listRevisions(ctx);
      this.log(
        formatTable(revisions, [
          { header: 'revision', get: (r) => r.revision },
          { header: 'created', get: (r) => r.created },
          { header: 'ready', get: (r) => (r.ready ? 'yes' : 'no') },
          { header: 'traffic', get: (r) => `${r.percent}%` },
          { header: 'tags', get: (r) => r.tags.join(',') },
        ]),
      );
      return { revisions };
    }
    const request = { to: flags.to, dryRun: flags['dry-run'] };
    const prompt = rollbackPrompt(ctx, request);
    if (prompt) await confirm(prompt.question, { yes: flags.yes, action: prompt.action });
    const state = { result: undefined as Awaited<ReturnType<typeof rollback>> | undefined };
    await runStages(
      [
        {
          title: flags['dry-run'] ? 'Validate the rollback (dry run)' : 'Roll back, then health-check',
          task: async (c, task) => {
            c.result = await rollback(ctx, request);
            task.title = `${c.result.dryRun ? 'Would roll back' : 'Rolled back'} ${c.result.service} from ${c.result.from ?? '(none)'} to ${c.result.to}${c.result.healthy ? ' (healthy)' : ''}`;
          },
        },
      ],
      state,
      { json: this.jsonEnabled() },
    );
    const result = state.result!;
    this.log(`${result.dryRun ? 'Would route' : 'Routed'} 100% of ${result.service} to ${result.to} (was ${result.from ?? 'none'})`);
    if (result.job) for (const line of jobChangeLines(result.job, !result.dryRun)) this.log(line);
    return result;
  }
}
