// Quickstart's API step: starts a pipeline run through `convergence serve` and follows it to its
// end, as a tenant's client would. Usage: CONVERGENCE_API_KEY=<key> node demo-api-client.mjs <url> <pipeline_id>
// (the key comes from the environment, never from argv).
const [base, pipelineId] = process.argv.slice(2);
const key = process.env.CONVERGENCE_API_KEY;
if (!base || !pipelineId || !key) {
  console.error('usage: CONVERGENCE_API_KEY=<key> node demo-api-client.mjs <url> <pipeline_id>');
  process.exit(2);
}
const headers = { 'x-api-key': key, 'content-type': 'application/json' };
const show = (label, value) => console.error(`${label} ${JSON.stringify(value)}`);

const health = await (await fetch(`${base}/health`)).json();
show('GET  /health ->', health);
const startRes = await fetch(`${base}/api/v1/pipelines/run/${pipelineId}`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ trigger_by: 'quickstart' }),
});
const started = await startRes.json();
show(`POST /api/v1/pipelines/run/${pipelineId} -> ${startRes.status}`, started);
if (startRes.status !== 202) process.exit(1);

const deadline = Date.now() + 120_000;
for (;;) {
  const res = await fetch(`${base}/api/v1/pipelines/runs/${started.pipeline_logging_id}`, { headers });
  const run = await res.json();
  if (!['PENDING', 'RUNNING'].includes(run.status)) {
    show(`GET  /api/v1/pipelines/runs/${run.pipeline_logging_id} ->`, {
      status: run.status,
      rows_processed: run.rows_processed,
      duration_ms: run.duration_ms,
      steps: run.steps.map((s) => `${s.step_name}:${s.status}`),
    });
    process.exit(run.status === 'COMPLETE' ? 0 : 1);
  }
  if (Date.now() > deadline) {
    console.error(`run ${run.pipeline_logging_id} still ${run.status} after 120 s`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
