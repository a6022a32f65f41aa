import { BaseCommand } from '../cli/base-command.ts';
import { doctorFailure, runDoctor, type DoctorReport } from '../services/doctor/index.ts';

const MARK = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Check the workspace, configuration, warehouse, schema version, keyring and secret permissions.';
  static override description =
    'Every failing check comes with the fix. Exits 7 when the Google credentials fail (the checks that need them are listed as skipped), else 2 when any check fails.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  public async run(): Promise<DoctorReport> {
    const report = await runDoctor(process.cwd(), this.flags.env);
    for (const check of report.checks) {
      this.log(`[${MARK[check.status]}] ${check.name.padEnd(11)} ${check.detail}`);
      if (check.fix && check.status !== 'pass') this.log(`       ${''.padEnd(11)} fix: ${check.fix}`);
    }
    if (!report.ok) throw doctorFailure(report);
    this.log('\nAll checks passed.');
    return report;
  }
}
