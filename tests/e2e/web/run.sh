#!/usr/bin/env bash
# Runs one of the web console's end-to-end test files against a built aird.
#   run.sh <aird binary> <work dir> <test file...>
# Copies the test files into <work dir> (the build tree, so the source tree
# stays clean), installs playwright-core there with `npm ci` from the
# committed lockfile (again only when the lockfile changes), installs
# Debian's chromium if it is missing, and runs the files with Node's test
# runner. Screenshots and aird's log go to <work dir>/artifacts.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
aird="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
mkdir -p "$2/lib" "$2/artifacts"
work="$(cd "$2" && pwd)"
shift 2

cp "$src"/package.json "$src"/package-lock.json "$src"/*.mjs "$work/"
cp "$src"/lib/*.mjs "$work/lib/"

needs_browser=0
for f in "$@"; do
  if grep -q playwright-core "$src/$f"; then needs_browser=1; fi
done

if [ "$needs_browser" = 1 ]; then
  missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! cmp -s "$src/package-lock.json" "$work/node_modules/.installed-lock.json"; then
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$work/node_modules/.installed-lock.json"
  fi
fi

cd "$work"
export AIRD="$aird" ARTIFACTS="$work/artifacts" CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
exec node --test --test-reporter=spec "$@"
