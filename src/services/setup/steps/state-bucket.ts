import type { Buckets } from '../../../backends/buckets/port.ts';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { grantRole, membersLacking, serviceAccountMember } from '../resource-iam.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

const OBJECT_ADMIN = 'roles/storage.objectAdmin';
const HARDENED = 'uniform bucket-level access, public access prevention, versioning';

/** The API and the job hold run locks and state objects here; nobody else is granted on the bucket. */
const users = (setup: SetupContext) => [serviceAccountMember(setup.names.apiAccount), serviceAccountMember(setup.names.jobAccount)];

/** Where the bucket lives: the environment's BigQuery location (US, EU, or a region). */
const location = (setup: SetupContext) => setup.env.settings.location || setup.env.settings.region;

async function withBuckets<T>(setup: SetupContext, use: (buckets: Buckets) => Promise<T>): Promise<T> {
  const buckets = await setup.ctx.backends.buckets!();
  try {
    return await use(buckets);
  } finally {
    await buckets.close();
  }
}

/** Storage answers 403 for a name this account cannot read: almost always another project's bucket. */
function unreadable(setup: SetupContext, detail: string): ConvergenceError {
  const bucket = setup.names.stateBucket;
  return new ConvergenceError(
    'BUCKET_NAME_TAKEN',
    ExitCode.usage,
    `the state bucket name ${bucket} answers 403 to this account: ${detail}`,
    {
      suggestion:
        `bucket names are global and this one is most likely another project's: set environments.${setup.env.name}.state_bucket ` +
        `in convergence.yaml to another name (e.g. ${setup.project}-convergence-state-${setup.env.name}); ` +
        `if the bucket is yours, grant roles/storage.admin on it to the account running setup`,
      data: { bucket },
    },
  );
}

const grantChanges = (bucket: string, members: readonly string[]): PlannedChange[] =>
  members.map((member) => ({ action: 'grant', resource: `projects/_/buckets/${bucket}`, detail: `${OBJECT_ADMIN} to ${member}` }));

/**
 * The state bucket (run locks, state objects): uniform bucket-level access, public access
 * prevention and versioning on, object admin for the API service and the job on this bucket only.
 */
export const stateBucketStep: SetupStep = {
  id: 'state_bucket',
  title: 'Create the state bucket',
  plan: (setup) =>
    withBuckets(setup, async (buckets): Promise<PlannedChange[]> => {
      const bucket = setup.names.stateBucket;
      const resource = `projects/_/buckets/${bucket}`;
      const state = await buckets.inspect(bucket);
      if (state.kind === 'unreadable') throw unreadable(setup, state.detail);
      if (state.kind === 'missing') {
        return [{ action: 'create', resource, detail: `in ${location(setup)}: ${HARDENED}` }, ...grantChanges(bucket, users(setup))];
      }
      const changes: PlannedChange[] = [];
      if (!state.uniformAccess || state.publicAccessPrevention !== 'enforced' || !state.versioning) {
        changes.push({ action: 'update', resource, detail: `turn on ${HARDENED}` });
      }
      if (state.location.toUpperCase() !== location(setup).toUpperCase()) {
        // A bucket cannot move; the locks work from anywhere, so it is only worth a word.
        setup.ctx.warn(`state bucket ${bucket} is in ${state.location}, not ${location(setup)}: a bucket cannot move, it is kept`);
      }
      return [...changes, ...grantChanges(bucket, membersLacking(await buckets.getIamPolicy(bucket), OBJECT_ADMIN, users(setup)))];
    }),
  async apply(setup, changes) {
    if (changes.length === 0) return;
    const bucket = setup.names.stateBucket;
    await withBuckets(setup, async (buckets) => {
      // create succeeds on a name that is ours already, so a rerun after a half-applied setup goes on.
      if (changes.some((change) => change.action === 'create')) await buckets.create(bucket, { location: location(setup) });
      if (changes.some((change) => change.action === 'update')) await buckets.harden(bucket);
      if (changes.some((change) => change.action === 'grant')) {
        await grantRole(
          { read: () => buckets.getIamPolicy(bucket), write: (policy) => buckets.setIamPolicy(bucket, policy) },
          OBJECT_ADMIN,
          users(setup),
        );
      }
    });
  },
};
