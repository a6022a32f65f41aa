/**
 * BigQuery REST fake for tests. Start one per test (or suite), give the official client its URL:
 *
 *   const fake = await FakeBigQuery.start();
 *   const client = await fakeClient(fake);   // new BigQuery({ apiEndpoint, authClient: PassThroughClient })
 *   ...
 *   await fake.stop();
 *
 * Routes: datasets.insert/get/list/patch/delete(deleteContents), tables.insert/get/list/patch/
 * delete, tabledata.list, tabledata.insertAll, jobs.insert (query and load jobs; loads through
 * POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart, Parquet only), jobs.get,
 * jobs.list, jobs.cancel, jobs.query, jobs.getQueryResults (f/v rows, paging).
 *
 * Test hooks: `fake.requests` / `fake.requestsTo('jobs.insert')` (every request, with its parsed
 * body and status), `fake.queriesSent()` (query text, parameters and labels of jobs.insert query
 * jobs and jobs.query requests alike), `fake.jobs` and `fake.executions` (how often each job id ran),
 * `fake.inject({ route, when, status, reason, message, times, after })` for HTTP faults (`after`:
 * the request is processed and its response lost), `fake.failJobs({ match, reason })` for jobs
 * that end DONE with an errorResult, `fake.engine` for the stored metadata.
 */
import type { BigQuery, BigQueryOptions } from '@google-cloud/bigquery';
import type { FakeBigQuery } from './server.ts';

export {
  FakeBigQuery,
  type Fault,
  type FakeBigQueryOptions,
  type JobFault,
  type JobRecord,
  type LoggedRequest,
  type SentQuery,
} from './server.ts';

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
