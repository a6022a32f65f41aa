/**
 * BigQuery REST fake for tests. Start one per test (or suite), give the official client its URL:
 *
 *   const fake = await FakeBigQuery.start();
 *   const client = await fakeClient(fake);   // new BigQuery({ apiEndpoint, authClient: PassThroughClient })
 *   ...
 *   await fake.stop();
 */
import type { BigQuery, BigQueryOptions } from '@google-cloud/bigquery';
import type { FakeBigQuery } from './server.ts';

export { FakeBigQuery, type Fault, type FakeBigQueryOptions, type JobFault, type JobRecord, type LoggedRequest } from './server.ts';

/** A client wired to the fake: no credentials, no metadata server, quick client-side retries. */
export async function fakeClient(fake: FakeBigQuery, options: BigQueryOptions = {}): Promise<BigQuery> {
  const [{ BigQuery }, { PassThroughClient }] = await Promise.all([import('@google-cloud/bigquery'), import('google-auth-library')]);
  return new BigQuery({
    projectId: fake.projectId,
    apiEndpoint: fake.url,
    authClient: new PassThroughClient(),
    // The client waits 2^n s plus up to 1 s of jitter between retries; a tiny multiplier keeps tests quick.
    retryOptions: { retryDelayMultiplier: 0.001, maxRetries: 3 },
    ...options,
  });
}
