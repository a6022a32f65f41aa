import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';

interface DocsServeResult {
  url: string;
  tenantId: string;
}

const DEFAULT_PORT = 8090;

export default class DocsServe extends BaseCommand<typeof DocsServe> {
  static override summary = "Serve a tenant's site on 127.0.0.1, generated again when its configs change.";
  static override description = `The site of \`docs generate\`, kept in memory (nothing is written to disk or the warehouse). A change under configs/<tenant>/ regenerates it on the next request, and so does a site older than --refresh, so new runs show on reload. Listens on 127.0.0.1 only and answers only requests for 127.0.0.1 or localhost.

\`convergence serve\` offers the same site to operators at /docs/<tenant>/ behind the admin key.`;
  static override examples = [
    '<%= config.bin %> docs serve --tenant acme_corp',
    '<%= config.bin %> docs serve --tenant acme_corp --port 9000 --env staging',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    port: Flags.integer({ description: `Port on 127.0.0.1 (0 picks a free one)`, default: DEFAULT_PORT, min: 0, max: 65_535 }),
    refresh: Flags.string({ description: 'Generate again on a request once the site is older than this', default: '10s' }),
  };

  public async run(): Promise<DocsServeResult> {
    const maxAgeMs = parseDuration(this.flags.refresh, '--refresh');
    const ctx = await this.context();
    const { serveSite } = await import('../../services/docs/serve.ts');
    const server = await serveSite(ctx, {
      tenantId: this.flags.tenant,
      port: this.flags.port,
      maxAgeMs,
      onGenerated: (site, ms) =>
        process.stderr.write(`docs serve: site of ${site.model.tenantId} generated in ${ms} ms (${site.files.size} files)\n`),
      onError: (err) => process.stderr.write(`docs serve: ${err instanceof Error ? err.message : String(err)}\n`),
    });
    process.stderr.write(
      `docs serve: listening on ${server.url} (site of ${this.flags.tenant}, environment ${ctx.env.name}); Ctrl-C stops\n`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await server.close();
    return { url: server.url, tenantId: this.flags.tenant };
  }
}
