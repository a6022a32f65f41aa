import { runDoctor, type DoctorReport } from '../../doctor/index.ts';
import type { SetupContext } from '../step.ts';

/**
 * The closing `doctor --env`: it reads convergence.yaml again, so it checks the names setup wrote
 * there. It is not a SetupStep: it plans nothing and runs on every setup, changed or not.
 */
export async function closingDoctor(setup: SetupContext): Promise<DoctorReport> {
  return runDoctor(setup.ctx.workspace.root, setup.env.name);
}
