#!/usr/bin/env bash
# The main job end to end on the embedded default (DuckDB, local keyring, file secrets):
# workspace with the demo tenant -> metadata bootstrap -> tenant -> API key -> pipeline runs
# (usage export files, then the usage API) -> run history, quota, the tenant's site, checks. No cloud account needed.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
DEMO="${1:-$ROOT/demo}"
cv() { echo "+ convergence $*" >&2; node "$ROOT/bin/run.js" "$@"; }

# A demo folder made by an earlier quickstart is rebuilt from scratch; any other folder is left alone.
if [ -e "$DEMO" ]; then
  if [ -f "$DEMO/.quickstart" ]; then rm -rf "$DEMO"; else echo "quickstart: $DEMO exists and was not made by quickstart; pass another folder" >&2; exit 2; fi
fi
cv init "$DEMO" --example
touch "$DEMO/.quickstart"
cd "$DEMO"
cv bootstrap
cv tenant create acme_corp --name "ACME Corp" --plan starter
# The key is kept for the API step below (and shown here once, as `keys create` always does).
API_KEY="$(cv keys create --tenant acme_corp --description quickstart --json | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>process.stdout.write(JSON.parse(s).result.apiKey))')"
echo "API key for acme_corp: $API_KEY (shown once)" >&2
cv pipeline validate --tenant acme_corp
cv pipeline run p_usage_daily --tenant acme_corp --dry-run
cv pipeline run p_usage_daily --tenant acme_corp
cv pipeline run p_usage_daily --tenant acme_corp   # incremental: nothing new since the last run
# The analytics model it built: dimensions, fct_usage_daily and views for dashboards; one of the views.
echo "+ node scripts/show-view.mjs .convergence/warehouse.duckdb acme_corp.v_daily_cost_by_provider" >&2
node "$ROOT/scripts/show-view.mjs" .convergence/warehouse.duckdb acme_corp.v_daily_cost_by_provider 9

# The usage API pipeline reads from a local demo API (bearer token, cursor pages, an occasional 429).
API_LOG="$(mktemp)"
node "$ROOT/scripts/demo-usage-api.mjs" 8787 >"$API_LOG" 2>&1 &
API_PID=$!
SERVE_PID=""
SERVE_LOG="$(mktemp)"
trap 'kill $API_PID 2>/dev/null || true; [ -n "$SERVE_PID" ] && kill $SERVE_PID 2>/dev/null || true; rm -f "$API_LOG" "$SERVE_LOG"' EXIT
for _ in $(seq 50); do grep -q listening "$API_LOG" && break; sleep 0.1; done
cv pipeline run p_usage_api --tenant acme_corp

# The HTTP API: `convergence serve` runs the same pipelines for tenants holding a key.
echo "+ convergence serve --port 0 --log-level warn &" >&2
node "$ROOT/bin/run.js" serve --port 0 --log-level warn 2>"$SERVE_LOG" &
SERVE_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$SERVE_LOG" && break; sleep 0.1; done
SERVE_URL="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$SERVE_LOG" | head -1)"
[ -n "$SERVE_URL" ] || { cat "$SERVE_LOG" >&2; echo "quickstart: serve did not start" >&2; exit 1; }
CONVERGENCE_API_KEY="$API_KEY" node "$ROOT/scripts/demo-api-client.mjs" "$SERVE_URL" p_usage_daily
kill -TERM $SERVE_PID && wait $SERVE_PID
SERVE_PID=""

cv pipeline runs --tenant acme_corp
cv quota show --tenant acme_corp
# The tenant's site: lineage graph, a page per table and pipeline, run and data-quality charts.
cv docs generate --tenant acme_corp
cv doctor
echo >&2
echo "Done. The workspace is in $DEMO; run the CLI there with $ROOT/bin/convergence (e.g. pipeline logs <run_id>)." >&2
echo "The demo tenant's site: open $DEMO/docs/acme_corp/index.html in a browser." >&2
