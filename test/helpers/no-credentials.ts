/**
 * A cloud environment as an operator has just written it, and a machine that holds no Google
 * credentials for it: no gcloud login, no key file, no project variables, no metadata server and
 * no endpoint overrides. Without the overrides the clients would talk to Google, so a test that
 * uses these proves the clients are never built.
 */
import { ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { makeTempDir } from './tmp.ts';

/** Variables to set, or (undefined) to remove. */
export type EnvChanges = Record<string, string | undefined>;

export const STAGING_PROJECT = 'my-project-stage';

/** The `environments.staging` entry of convergence.yaml, with `extra` settings after the required ones. */
export function stagingEnvironment(extra: Record<string, string> = {}): string {
  return [
    '  staging:',
    `    project: ${STAGING_PROJECT}`,
    '    region: us-central1',
    '    location: US',
    `    kms_key: projects/${STAGING_PROJECT}/locations/us-central1/keyRings/convergence/cryptoKeys/api-key-encryption`,
    `    state_bucket: ${STAGING_PROJECT}-convergence-state`,
    '    service: convergence-api-staging',
    ...Object.entries(extra).map(([key, value]) => `    ${key}: ${value}`),
    '',
  ].join('\n');
}

/**
 * The variables of a machine without Google credentials. HOME and CLOUDSDK_CONFIG are fresh empty
 * folders, because the well-known ADC file of a gcloud login lives under them.
 */
export async function noCredentialsEnv(): Promise<EnvChanges> {
  return {
    HOME: await makeTempDir('home'),
    CLOUDSDK_CONFIG: await makeTempDir('gcloud'),
    GOOGLE_APPLICATION_CREDENTIALS: undefined,
    GOOGLE_CLOUD_PROJECT: undefined,
    GCLOUD_PROJECT: undefined,
    METADATA_SERVER_DETECTION: 'none',
    GCE_METADATA_HOST: '127.0.0.1:1',
    GCE_METADATA_IP: '127.0.0.1:1',
    ...Object.fromEntries(Object.values(ENDPOINT_VARS).map((name) => [name, undefined])),
  };
}

/** Applies `changes` to process.env (for in-process tests); returns what puts the previous values back. */
export function applyToProcessEnv(changes: EnvChanges): () => void {
  const previous = new Map(Object.keys(changes).map((name) => [name, process.env[name]]));
  const set = (name: string, value: string | undefined) => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  for (const [name, value] of Object.entries(changes)) set(name, value);
  return () => {
    for (const [name, value] of previous) set(name, value);
  };
}
