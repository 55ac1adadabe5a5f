#!/usr/bin/env bash
# install.sh -- install everything the sales-benchmark peers need. Idempotent.
#   apt: mawk, gawk, time (/usr/bin/time), a C compiler, nodejs + npm (only if missing)
#   npm: @duckdb/node-api, nodejs-polars (+ linux-x64-gnu native package) into ./node_modules
#   (newline_floor.c is compiled by bench/compare.sh itself, into a temp dir)
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v mawk >/dev/null || need+=(mawk)
command -v gawk >/dev/null || need+=(gawk)
[ -x /usr/bin/time ] || need+=(time)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "install.sh: apt-get install ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install.sh: warning: node $(node --version) is older than 20; nodejs-polars needs >= 20" >&2
fi

# npm: versions are pinned exactly in package.json. No package-lock.json is kept:
# a lock generated behind a registry mirror that lacks the other platforms' native
# packages breaks `npm ci` elsewhere. nodejs-polars-linux-x64-gnu declares
# node >= 22 but works on node 20 (N-API); it is a direct dependency, so npm only
# warns (EBADENGINE) instead of silently skipping it as an optional dependency.
if [ -d node_modules ] && npm ls --depth=0 >/dev/null 2>&1; then
  echo "install.sh: node_modules up to date" >&2
else
  npm install --no-package-lock --no-audit --no-fund
fi

node -e 'require("@duckdb/node-api"); require("nodejs-polars")' \
  && echo "install.sh: ok ($(node duckdb.mjs --version); $(node polars.mjs --version); node $(node --version))" >&2
