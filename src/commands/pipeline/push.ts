import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import type { PushedPipeline } from '../../services/pipelines/push.ts';

export default class PipelinePush extends BaseCommand<typeof PipelinePush> {
  static override summary = "Upload a tenant's pipelines to tenant_pipeline_configs, versioned by content hash.";
  static override description =
    'Each pipeline goes up with the sources, schema files and SQL it references, so a remote run (Cloud Run Jobs) executes exactly what was pushed. Every pipeline is checked before anything is written, and the changed ones are written in one transaction; pushing an unchanged pipeline changes nothing. For a Google Cloud environment, file sources must read gs:// paths under the file_roots of the tenant (a local path is refused with exit 2: upload the data to Cloud Storage first).';
  static override examples = [
    '<%= config.bin %> pipeline push --tenant acme_corp --env staging',
    '<%= config.bin %> pipeline push --tenant acme_corp --pipeline p_usage_daily --env prod --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant whose configs/<tenant>/ pipelines are pushed', required: true }),
    pipeline: Flags.string({ description: 'Push only this pipeline' }),
  };

  public async run(): Promise<PushedPipeline[]> {
    const ctx = await this.context();
    const { pushPipelines } = await import('../../services/pipelines/push.ts');
    const pushed = await pushPipelines(ctx, {
      tenantId: this.flags.tenant,
      ...(this.flags.pipeline ? { pipelineId: this.flags.pipeline } : {}),
    });
    this.log(
      formatTable(pushed, [
        { header: 'pipeline', get: (p) => p.pipelineId },
        { header: 'version', get: (p) => p.version },
        { header: 'state', get: (p) => (p.changed ? (p.previousVersion ? `replaced ${p.previousVersion}` : 'new') : 'unchanged') },
        { header: 'files', get: (p) => p.files.length },
      ]),
    );
    this.log(
      `\n${pushed.filter((p) => p.changed).length} pushed, ${pushed.filter((p) => !p.changed).length} unchanged in ${ctx.env.name}.`,
    );
    return pushed;
  }
}
