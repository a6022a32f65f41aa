import type { IamAdmin } from '../../../backends/iam-admin/port.ts';
import { usageError } from '../../../lib/errors.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** The accounts setup creates, and the convergence.yaml key that may name each one instead. */
interface WantedAccount {
  email: string;
  key: 'service_account' | 'job_service_account' | 'scheduler_service_account';
  displayName: string;
  description: string;
}

/** <id>@<project>.iam.gserviceaccount.com: the accounts a project's owner creates (not Google-managed ones). */
const USER_MANAGED = /^([^@]+)@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/;
/** What Google accepts before the @: 6-30 characters, a lowercase letter first, no "-" last. */
const ACCOUNT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

function wantedAccounts(setup: SetupContext): WantedAccount[] {
  const { names, env } = setup;
  const wanted: WantedAccount[] = [
    {
      email: names.apiAccount,
      key: 'service_account',
      displayName: `Convergence API (${env.name})`,
      description: `Runs the convergence API service of environment ${env.name}.`,
    },
    {
      email: names.jobAccount,
      key: 'job_service_account',
      displayName: `Convergence pipeline job (${env.name})`,
      description: `Runs the convergence pipeline job of environment ${env.name}.`,
    },
    {
      email: names.schedulerAccount,
      key: 'scheduler_service_account',
      displayName: `Convergence scheduler (${env.name})`,
      description: `Cloud Scheduler starts the pipeline job of environment ${env.name} as this account.`,
    },
  ];
  // One account may serve two roles when convergence.yaml says so: it is created once.
  return wanted.filter((account, index) => wanted.findIndex((other) => other.email === account.email) === index);
}

const resourceOf = (project: string, email: string) => `projects/${project}/serviceAccounts/${email}`;

/** An account in another project cannot be created here; one Google manages cannot be created at all. */
function refuseElsewhere(setup: SetupContext, account: WantedAccount): never {
  const match = USER_MANAGED.exec(account.email);
  const where = match ? `project ${match[2]}` : 'no project setup can create accounts in';
  throw usageError(
    `environments.${setup.env.name}.${account.key} is ${account.email}, an account of ${where}; setup creates accounts only in project ${setup.project}`,
    {
      suggestion: match
        ? `create ${account.email} in project ${match[2]} yourself (and let project ${setup.project} use it), or remove ${account.key} from convergence.yaml so setup creates convergence's own account in ${setup.project}`
        : `remove ${account.key} from convergence.yaml so setup creates convergence's own account in ${setup.project}`,
      data: { key: `environments.${setup.env.name}.${account.key}`, account: account.email },
    },
  );
}

const SHORT_ROLE: Record<WantedAccount['key'], string> = {
  service_account: 'api',
  job_service_account: 'job',
  scheduler_service_account: 'sched',
};

/** convergence-<role>-<env>, cut to Google's 30 characters. */
const shorterId = (setup: SetupContext, account: WantedAccount) =>
  `convergence-${SHORT_ROLE[account.key]}-${setup.env.name}`.slice(0, 30).replace(/-+$/, '');

/** An id Google would refuse, found before anything is created (a long environment name makes one). */
function refuseInvalidId(setup: SetupContext, account: WantedAccount, id: string): never {
  throw usageError(
    `service account ${account.email} cannot be created: its id "${id}" (${id.length} characters) is not 6-30 lowercase letters, digits or "-" starting with a letter`,
    {
      suggestion: `set environments.${setup.env.name}.${account.key} in convergence.yaml to an account with a shorter id, e.g. ${shorterId(setup, account)}@${setup.project}.iam.gserviceaccount.com`,
      data: { key: `environments.${setup.env.name}.${account.key}`, account: account.email },
    },
  );
}

async function withIamAdmin<T>(setup: SetupContext, work: (iam: IamAdmin) => Promise<T>): Promise<T> {
  const iam = await setup.ctx.backends.iamAdmin!();
  try {
    return await work(iam);
  } finally {
    await iam.close();
  }
}

async function plan(setup: SetupContext): Promise<PlannedChange[]> {
  return withIamAdmin(setup, async (iam) => {
    const changes: PlannedChange[] = [];
    for (const account of wantedAccounts(setup)) {
      const match = USER_MANAGED.exec(account.email);
      if (match && match[2] !== setup.project) refuseElsewhere(setup, account);
      if (match && !ACCOUNT_ID.test(match[1]!)) refuseInvalidId(setup, account, match[1]!);
      if (await iam.getServiceAccount(account.email)) continue;
      // A Google-managed account (Compute's default, ...) that is missing: nothing here can make it.
      if (!match) refuseElsewhere(setup, account);
      changes.push({
        action: 'create',
        resource: resourceOf(setup.project, account.email),
        detail: `service account ${account.email} ("${account.displayName}")`,
      });
    }
    return changes;
  });
}

async function apply(setup: SetupContext, changes: PlannedChange[]): Promise<void> {
  const planned = new Set(changes.map((change) => change.resource));
  const accounts = wantedAccounts(setup).filter((account) => planned.has(resourceOf(setup.project, account.email)));
  if (accounts.length === 0) return;
  await withIamAdmin(setup, async (iam) => {
    for (const account of accounts) {
      // An account created by a concurrent setup (ALREADY_EXISTS) is there, which is what the plan wanted.
      await iam.createServiceAccount({
        accountId: account.email.slice(0, account.email.indexOf('@')),
        displayName: account.displayName,
        description: account.description,
      });
    }
  });
}

/** The runtime accounts of the API service, the pipeline job and the scheduler. */
export const serviceAccountsStep: SetupStep = {
  id: 'service_accounts',
  title: 'Create service accounts',
  plan,
  apply,
};
