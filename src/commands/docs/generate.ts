import { Flags } from '@oclif/core';
import { pathToFileURL } from 'node:url';
import { BaseCommand } from '../../cli/base-command.ts';
import { runStages } from '../../cli/progress.ts';
import type { PublishedSite } from '../../services/docs/site.ts';

export default class DocsGenerate extends BaseCommand<typeof DocsGenerate> {
  static override summary = "Write a tenant's static site: lineage graph, a page per table and pipeline, run and data-quality charts.";
  static override description = `Reads the tenant's configs (workspace files, else the configs pushed to --env) and the metadata of --env: columns from the warehouse, runs from tenant_pipeline_runs, rule results from tenant_dq_results. Nothing is written to the warehouse.

The site is one folder of HTML, scripts and styles with nothing fetched at view time: open index.html from disk or put the folder on any static host. The lineage graph runs sources → ingest tables → checks → transforms → tables and views, each node linking to its page; pipeline pages chart duration, rows, status and the pass rate of each rule per day.

The folder is replaced whole (a failed generation leaves the old site); a folder that is not a site made by this command is never replaced.`;
  static override examples = [
    '<%= config.bin %> docs generate --tenant acme_corp',
    '<%= config.bin %> docs generate --tenant acme_corp --env prod --out public/acme_corp',
    '<%= config.bin %> docs generate --tenant acme_corp --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    out: Flags.string({ description: 'Folder to write the site to (default: docs/<tenant> in the workspace)' }),
  };

  public async run(): Promise<PublishedSite> {
    const ctx = await this.context();
    const { publishSite } = await import('../../services/docs/site.ts');
    const state = { site: undefined as PublishedSite | undefined };
    await runStages(
      [
        {
          title: `Generate the site of ${this.flags.tenant} (${ctx.env.name})`,
          task: async (c, task) => {
            c.site = await publishSite(ctx, this.flags.tenant, {
              ...(this.flags.out ? { outDir: this.flags.out } : {}),
              onProgress: (message) => (task.output = message),
            });
            task.title = `Generate the site of ${this.flags.tenant} (${ctx.env.name}): ${c.site.files} files in ${(c.site.ms / 1000).toFixed(1)} s`;
          },
        },
      ],
      state,
      { json: this.jsonEnabled() },
    );
    const site = state.site!;
    for (const problem of site.problems) this.warn(problem);
    this.log(
      `${site.pipelines} pipelines, ${site.tables} tables and views, lineage of ${site.lineageNodes} nodes and ${site.lineageEdges} edges, ${site.runsCharted} runs charted.`,
    );
    this.log(`Open ${site.index}\n  (${pathToFileURL(site.index).href}), or serve it: convergence docs serve --tenant ${site.tenantId}`);
    return site;
  }
}
