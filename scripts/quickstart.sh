#!/usr/bin/env bash
# The main job end to end on the embedded default (DuckDB, local keyring, file secrets):
# workspace with the demo tenant -> metadata bootstrap -> tenant -> API key -> pipeline runs
# (usage export files, then the usage API) -> run history, quota, checks. No cloud account needed.
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
cv keys create --tenant acme_corp --description quickstart
cv pipeline validate --tenant acme_corp
cv pipeline run p_usage_daily --tenant acme_corp --dry-run
cv pipeline run p_usage_daily --tenant acme_corp
cv pipeline run p_usage_daily --tenant acme_corp   # incremental: nothing new since the last run

# The usage API pipeline reads from a local demo API (bearer token, cursor pages, an occasional 429).
API_LOG="$(mktemp)"
node "$ROOT/scripts/demo-usage-api.mjs" 8787 >"$API_LOG" 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null || true; rm -f "$API_LOG"' EXIT
for _ in $(seq 50); do grep -q listening "$API_LOG" && break; sleep 0.1; done
cv pipeline run p_usage_api --tenant acme_corp

cv pipeline runs --tenant acme_corp
cv quota show --tenant acme_corp
cv doctor
echo >&2
echo "Done. The workspace is in $DEMO; run the CLI there with $ROOT/bin/convergence (e.g. pipeline logs <run_id>)." >&2
