import path from 'node:path';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { StageReporter } from '../../lib/stages.ts';
import type { DeployTarget } from './common.ts';
import type { DeployPlan } from './plan.ts';

/** planDeploy lists the build first, when there is one. */
const BUILD_STAGE = 0;

/**
 * The image the new revision runs: plan.image, or the one built from plan.source (not built on a
 * dry run, which names the source instead).
 */
export async function imageToShip(plan: DeployPlan, target: DeployTarget, stages: StageReporter | undefined): Promise<string> {
  if (!plan.source) return plan.image!;
  stages?.start(BUILD_STAGE);
  if (plan.dryRun) {
    stages?.finish(BUILD_STAGE, { status: 'skipped', message: 'dry run: not built' });
    return `${plan.source} (built at deploy time)`;
  }
  const image = await buildImage(plan, target);
  stages?.finish(BUILD_STAGE, { status: 'ok', title: `Built ${image}` });
  return image;
}

/** `gcloud builds submit` of the source directory; returns the image it pushed. */
async function buildImage(plan: DeployPlan, target: DeployTarget): Promise<string> {
  const base = (target.settings.image ?? `${plan.region}-docker.pkg.dev/${plan.project}/convergence/${plan.service}`).replace(
    /[:@][^/]*$/,
    '',
  );
  const image = `${base}:${plan.revision.slice(plan.service.length + 1)}`;
  const { execa } = await import('execa');
  const dir = path.resolve(plan.source!);
  const result = await execa('gcloud', ['builds', 'submit', dir, '--tag', image, '--project', plan.project, '--quiet'], {
    reject: false,
    stdin: 'ignore',
  });
  if (result.failed) {
    throw new ConvergenceError('BUILD_FAILED', ExitCode.unexpected, `gcloud builds submit failed: ${buildFailure(result)}`, {
      suggestion: 'install the Google Cloud SDK and run `gcloud auth login`, or pass --image with a built image',
    });
  }
  return image;
}

/** Why gcloud failed, in one line: not installed, or the last lines it printed. */
function buildFailure(result: { stderr?: unknown; message?: string }): string {
  if ((result as { code?: string }).code === 'ENOENT') return 'gcloud is not on PATH';
  return String(result.stderr || result.message)
    .trim()
    .split('\n')
    .slice(-3)
    .join(' ');
}
