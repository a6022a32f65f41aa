#!/usr/bin/env bash
# The main job end to end on the embedded default (DuckDB, local keyring, file secrets):
# workspace -> metadata bootstrap -> tenant -> API key -> checks. No cloud account needed.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
DEMO="${1:-$ROOT/demo}"
cv() { echo "+ convergence $*" >&2; node "$ROOT/bin/run.js" "$@"; }

# A demo folder made by an earlier quickstart is rebuilt from scratch; any other folder is left alone.
if [ -e "$DEMO" ]; then
  if [ -f "$DEMO/.quickstart" ]; then rm -rf "$DEMO"; else echo "quickstart: $DEMO exists and was not made by quickstart; pass another folder" >&2; exit 2; fi
fi
cv init "$DEMO"
touch "$DEMO/.quickstart"
cd "$DEMO"
cv bootstrap
cv bootstrap
cv tenant create acme_corp --name "ACME Corp" --plan starter
cv keys create --tenant acme_corp --description quickstart
cv keys list --tenant acme_corp
cv tenant show acme_corp
cv doctor
echo >&2
echo "Done. The workspace is in $DEMO; run the CLI there with $ROOT/bin/convergence (e.g. tenant list)." >&2
