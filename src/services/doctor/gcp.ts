import type { Backends } from '../../backends/factory.ts';
import type { GcpClients } from '../../backends/gcp/clients.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import { fixOf, message, type Check } from './check.ts';
import { cloudRunJobCheck } from './cloud-run.ts';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** The checks that call Google and so need credentials, in the order doctor runs them. */
export const CHECKS_NEEDING_CREDENTIALS = [
  'warehouse',
  'schema',
  'keyring',
  'cloud run',
  'cloud run job',
  'secret manager',
  'locks',
] as const;

/**
 * Application Default Credentials, checked first: loaded and a token minted, so a missing login,
 * an expired or revoked one and a key the token endpoint refuses all fail here with the fix,
 * instead of once per service. Returns whether the checks that call Google can run.
 */
export async function credentialsCheck(settings: GcpEnvironment, add: (c: Check) => void): Promise<boolean> {
  const { ENDPOINT_VARS, gcpTarget } = await import('../../backends/gcp/clients.ts');
  const endpoints = Object.values(ENDPOINT_VARS)
    .filter((name) => process.env[name])
    .map((name) => `${name}=${process.env[name]}`);
  if (endpoints.length > 0) {
    add({ name: 'credentials', status: 'pass', detail: `endpoint overrides, no Google credentials used (${endpoints.join(', ')})` });
    return true;
  }
  const project = gcpTarget(settings).project;
  const [{ applicationDefaultAuth }, { credentialsError }, { UserRefreshClient }] = await Promise.all([
    import('../../backends/gcp/credentials.ts'),
    import('../../backends/gcp/errors.ts'),
    import('google-auth-library'),
  ]);
  try {
    const auth = await applicationDefaultAuth([CLOUD_PLATFORM]);
    const client = await auth.getClient();
    await client.getAccessToken();
    const credentials = await auth.getCredentials();
    const who = credentials.client_email ? ` of ${credentials.client_email}` : '';
    if (client instanceof UserRefreshClient && !client.quotaProjectId) {
      add({
        name: 'credentials',
        status: 'warn',
        detail: `Application Default Credentials${who} are user credentials without a quota project; some APIs refuse them`,
        fix: `run \`gcloud auth application-default set-quota-project ${project}\``,
      });
    } else add({ name: 'credentials', status: 'pass', detail: `Application Default Credentials${who}` });
    return true;
  } catch (err) {
    const mapped = credentialsError(err, { what: `project ${project}`, project });
    add({
      name: 'credentials',
      status: 'fail',
      detail: mapped?.message ?? message(err),
      fix:
        mapped?.suggestion ??
        'run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file',
    });
    return false;
  }
}

/**
 * The seeds' troubleshooting list as checks of a cloud environment, once credentials passed:
 * each service the CLI uses. The adapters map Google errors to the exact remedy (the role to
 * grant, the API to enable), so a failing check says what to run.
 */
export async function gcpChecks(envName: string, settings: GcpEnvironment, backends: Backends, add: (c: Check) => void): Promise<void> {
  const { createGcpClients, gcpTarget } = await import('../../backends/gcp/clients.ts');
  const clients = createGcpClients(gcpTarget(settings));
  try {
    await cloudRunCheck(envName, settings, clients, add);
    await cloudRunJobCheck(envName, settings, backends, add);
  } finally {
    await clients.close();
  }

  try {
    const secrets = await backends.secrets();
    const names = await secrets.list(null);
    const admin = `admin-api-key-${envName}`;
    add({
      name: 'secret manager',
      status: names.includes(admin) ? 'pass' : 'warn',
      detail: names.includes(admin) ? `${secrets.describe}: ${admin} present` : `${secrets.describe}: reachable, but ${admin} is missing`,
      ...(names.includes(admin) ? {} : { fix: `run \`convergence keys admin create --env ${envName}\`` }),
    });
  } catch (err) {
    add({ name: 'secret manager', status: 'fail', detail: message(err), fix: fixOf(err, 'grant roles/secretmanager.secretAccessor') });
  }

  try {
    const lock = await backends.lock();
    await lock.inspect('doctor/probe');
    add({ name: 'locks', status: 'pass', detail: `${lock.describe} readable` });
  } catch (err) {
    add({
      name: 'locks',
      status: 'fail',
      detail: message(err),
      fix: fixOf(err, `grant roles/storage.objectAdmin on gs://${settings.state_bucket}`),
    });
  }
}

/** The service `deploy` ships: visible, serving, and updatable by this caller. */
async function cloudRunCheck(envName: string, settings: GcpEnvironment, clients: GcpClients, add: (c: Check) => void): Promise<void> {
  if (!settings.service) {
    add({
      name: 'cloud run',
      status: 'skip',
      detail: 'no service configured',
      fix: `set environments.${envName}.service in convergence.yaml`,
    });
    return;
  }
  const name = `projects/${clients.target.project}/locations/${clients.target.region}/services/${settings.service}`;
  const { toConvergenceError, googleErrorFacts, GrpcCode } = await import('../../backends/gcp/errors.ts');
  try {
    const services = await clients.runServices();
    const [service] = await services.getService({ name });
    const [iam] = await services.testIamPermissions({ resource: name, permissions: ['run.services.get', 'run.services.update'] });
    const granted = new Set(iam.permissions ?? []);
    const serving = `${settings.service}: ${service.latestReadyRevision?.split('/').pop() ?? 'no ready revision'} at ${service.uri ?? '(no URL)'}`;
    if (!granted.has('run.services.update')) {
      add({
        name: 'cloud run',
        status: 'warn',
        detail: `${serving}; this caller cannot deploy (run.services.update missing)`,
        fix: `grant roles/run.developer on the service to the deploying account`,
      });
    } else add({ name: 'cloud run', status: 'pass', detail: serving });
  } catch (err) {
    if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) {
      add({
        name: 'cloud run',
        status: 'warn',
        detail: `service ${settings.service} is not deployed yet`,
        fix: `run \`convergence deploy --env ${envName}\``,
      });
      return;
    }
    const mapped = toConvergenceError(err, { what: `Cloud Run service ${name}`, permission: 'run.services.get', role: 'roles/run.viewer' });
    add({ name: 'cloud run', status: 'fail', detail: mapped.message, fix: mapped.suggestion ?? 'grant roles/run.viewer' });
  }
}
