import { BaseCommand } from '../cli/base-command.ts';
import { ConvergenceError, ExitCode } from '../lib/errors.ts';
import { runDoctor, type DoctorReport } from '../services/doctor/index.ts';

const MARK = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Check the workspace, configuration, warehouse, schema version, keyring and secret permissions.';
  static override description = 'Every failing check comes with the fix. Exits 2 when any check fails.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  public async run(): Promise<DoctorReport> {
    const report = await runDoctor(process.cwd(), this.flags.env);
    for (const check of report.checks) {
      this.log(`[${MARK[check.status]}] ${check.name.padEnd(11)} ${check.detail}`);
      if (check.fix && check.status !== 'pass') this.log(`       ${''.padEnd(11)} fix: ${check.fix}`);
    }
    if (!report.ok) {
      const failed = report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
      throw new ConvergenceError('DOCTOR_FAILED', ExitCode.usage, `${failed.length} check(s) failed: ${failed.join(', ')}`, {
        suggestion: 'apply the fixes listed above and run `convergence doctor` again',
        data: { report },
      });
    }
    this.log('\nAll checks passed.');
    return report;
  }
}
