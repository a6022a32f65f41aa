import { createAdminKey } from '../../keys.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** How the operator reads the key setup made: it is never printed, in the plan or after apply. */
function adminKeyReadCommand(setup: SetupContext): string {
  return `gcloud secrets versions access latest --secret ${setup.names.adminKeySecret} --project ${setup.project}`;
}

async function adminKeyExists(setup: SetupContext): Promise<boolean> {
  const secrets = await setup.ctx.backends.secrets();
  return (await secrets.get(null, setup.names.adminKeySecret)) !== undefined;
}

/**
 * The environment's admin key (the serve API's X-Admin-Key), made by the keys service once and
 * kept: an existing key is never replaced, since replacing it would lock out whoever holds it.
 *
 * Nothing is granted on the secret itself: the SecretStore port reads and writes values but does
 * not edit IAM, and the API service reads it through the project-level
 * roles/secretmanager.secretAccessor the project_iam step grants.
 */
export const adminKeyStep: SetupStep = {
  id: 'admin_key',
  title: 'Create the admin API key',
  async plan(setup): Promise<PlannedChange[]> {
    if (await adminKeyExists(setup)) return [];
    return [
      {
        action: 'create',
        resource: `projects/${setup.project}/secrets/${setup.names.adminKeySecret}`,
        detail: `a new admin key (read it with: ${adminKeyReadCommand(setup)})`,
      },
    ];
  },
  async apply(setup, changes) {
    if (!changes.some((change) => change.action === 'create')) return;
    // Checked again: a key made since the plan (another setup, `keys admin create`) is kept.
    if (await adminKeyExists(setup)) return;
    await createAdminKey(setup.ctx);
  },
};
