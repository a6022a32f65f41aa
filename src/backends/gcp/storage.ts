import type { Storage } from '@google-cloud/storage';
import { ENDPOINT_VARS } from './clients.ts';
import { toConvergenceError } from './errors.ts';

type Vars = Record<string, string | undefined>;

/**
 * A Cloud Storage client for reading a tenant's `gs://` file sources from any environment, the
 * local one included: a bucket needs no project to be read, only credentials. Against Google it
 * uses Application Default Credentials; with CONVERGENCE_STORAGE_ENDPOINT set (tests, emulators)
 * it talks to that endpoint with a pass-through auth client, as the cloud adapters' client does.
 */
export async function storageForSources(vars: Vars = process.env, project?: string): Promise<Storage> {
  const { Storage } = await import('@google-cloud/storage');
  const endpoint = vars[ENDPOINT_VARS.storage];
  if (!endpoint) {
    // Credentials are looked up first: without them the client would send the request
    // anonymously and the user would read a 401 about an anonymous caller instead of the fix.
    const { GoogleAuth } = await import('google-auth-library');
    const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/devstorage.read_only'] });
    await auth.getClient().catch((err: unknown) => {
      throw toConvergenceError(err, { what: 'reading gs:// file sources', api: 'storage.googleapis.com' });
    });
    return new Storage({ ...(project ? { projectId: project } : {}), authClient: auth });
  }
  const { PassThroughClient } = await import('google-auth-library');
  return new Storage({
    ...(project ? { projectId: project } : {}),
    apiEndpoint: endpoint,
    useAuthWithCustomEndpoint: true,
    authClient: new PassThroughClient(),
  });
}
