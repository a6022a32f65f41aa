import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { usageError, validationError } from '../../lib/errors.ts';
import { validateConfigs, type ValidationReport } from '../../services/pipelines/validate.ts';

export default class PipelineValidate extends BaseCommand<typeof PipelineValidate> {
  static override summary = "Validate a tenant's pipeline, source, schema and SQL files and the references between them.";
  static override description =
    'Every problem is listed with file, line, column and key. References are checked too: source_config, sql and schema files exist and are valid, and secrets named by sources resolve (secret files first, then tenant credentials). Exits 2 when anything is invalid.';
  static override examples = [
    '<%= config.bin %> pipeline validate --tenant acme_corp',
    '<%= config.bin %> pipeline validate configs/acme_corp/pipelines/p_usage_daily.yml',
    '<%= config.bin %> pipeline validate --tenant acme_corp --json',
  ];
  static override args = { file: Args.string({ description: 'One config file to check (its tenant is taken from the path)' }) };
  static override flags = { tenant: Flags.string({ description: 'Tenant whose configs/<tenant>/ files are checked' }) };

  public async run(): Promise<ValidationReport> {
    if (!this.flags.tenant && !this.args.file)
      throw usageError('give --tenant <id> or a FILE to validate', { suggestion: 'convergence pipeline validate --tenant acme_corp' });
    const ctx = await this.context();
    const report = await validateConfigs(ctx, {
      ...(this.flags.tenant ? { tenantId: this.flags.tenant } : {}),
      ...(this.args.file ? { file: this.args.file } : {}),
    });
    for (const f of report.files) {
      this.log(`${f.ok ? 'ok     ' : 'INVALID'} ${f.file}`);
      for (const e of f.errors) this.log(`        ${e.split('\n').join('\n        ')}`);
    }
    if (report.files.length === 0) this.log(`No config files in configs/${report.tenantId}/.`);
    if (!report.ok) {
      const bad = report.files.filter((f) => !f.ok).length;
      throw validationError(`${bad} of ${report.files.length} file(s) of ${report.tenantId} are invalid`, {
        suggestion: 'fix the positions listed above and validate again',
        data: { report },
      });
    }
    this.log(`\n${report.files.length} file(s) valid; pipelines: ${report.pipelines.join(', ') || 'none'}.`);
    return report;
  }
}
