# Sourced by the other scripts: puts a Node.js >= 22.13 first on PATH, fetching the version
# pinned in .node-version from the npm registry into .tools/ when the system Node is older,
# then installs dependencies and builds when they are missing or out of date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_PIN="$(tr -d '[:space:]' < "$ROOT/.node-version")"
TOOLS="$ROOT/.tools"

node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=13)?0:1)'
}

if [ -x "$TOOLS/node/node_modules/.bin/node" ]; then
  export PATH="$TOOLS/node/node_modules/.bin:$PATH"
fi
if ! node_ok; then
  echo "convergence: system Node is $(node --version 2>/dev/null || echo missing); fetching Node $NODE_PIN from the npm registry into .tools/" >&2
  mkdir -p "$TOOLS/node"
  npm install --prefix "$TOOLS/node" --no-save --no-audit --no-fund --loglevel=error "node@$NODE_PIN" >&2
  export PATH="$TOOLS/node/node_modules/.bin:$PATH"
  node_ok || { echo "convergence: could not provide Node >= 22.13" >&2; exit 1; }
fi

cd "$ROOT"
stamp="$ROOT/node_modules/.convergence-install"
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "convergence: installing dependencies" >&2
  # `npm ci`: exactly the lock file's versions (it holds every platform's native packages).
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi
if [ ! -f dist/commands/init.js ] || [ -n "$(find src -newer dist/.built -print -quit 2>/dev/null)" ] || [ ! -f dist/.built ]; then
  echo "convergence: building" >&2
  npm run --silent build >&2
  touch dist/.built
fi
