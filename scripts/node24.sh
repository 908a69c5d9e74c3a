#!/usr/bin/env bash
# Prints a directory whose `node` is Node 24 LTS, for `PATH="$(scripts/node24.sh):$PATH"`.
# The machine's own Node when it is already 22.12 or newer; otherwise Node 24 from the npm
# registry (the `node` package ships the binaries), installed once into .ci/node/.
set -euo pipefail
cd "$(dirname "$0")/.."
want=24.21.0
if command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'; then
  dirname "$(command -v node)"
  exit 0
fi
dir=.ci/node
if [ ! -x "$dir/node_modules/.bin/node" ] || [ "$("$dir/node_modules/.bin/node" -v)" != "v$want" ]; then
  mkdir -p "$dir"
  # A package.json of its own, or npm would walk up and install into the project.
  echo '{"private":true}' > "$dir/package.json"
  # npm 11 does not run the package's install script (it only links the binary it already has).
  (cd "$dir" && npm install --no-save --no-audit --no-fund --no-package-lock "node@$want" >&2)
fi
echo "$PWD/$dir/node_modules/.bin"
