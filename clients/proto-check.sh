#!/usr/bin/env bash
# Proto hygiene: buf lint (STANDARD + COMMENTS, see buf.yaml) and buf breaking
# against the previous commit of main. buf comes from npm (@bufbuild/buf),
# installed once into the build tree ($AIR_BUILD_DIR, default build/).
#   bash clients/proto-check.sh                 # lint + breaking vs HEAD~1
#   AIR_BUF_AGAINST=main bash clients/proto-check.sh   # on a branch: vs main
# Exit status: non-zero if lint or breaking fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${AIR_BUILD_DIR:-build}
buf_version=${AIR_BUF_VERSION:-1.75.0}
mkdir -p "$build/buf-cache"
cache=$(cd "$build/buf-cache" && pwd)
buf=$cache/node_modules/.bin/buf

if [ "$("$buf" --version 2>/dev/null)" != "$buf_version" ]; then
  command -v npm >/dev/null || { echo "proto-check: npm is needed to install buf" >&2; exit 1; }
  npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@$buf_version"
fi
echo "proto-check: buf $("$buf" --version)"

echo "proto-check: buf lint (module proto/, $(
  "$buf" ls-files | wc -l) files)"
"$buf" lint

# proto/air/upstream is excluded in buf.yaml while it is being written; say
# how it fares, without failing on it.
if [ -d proto/air/upstream ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r proto "$tmp/"
  # (Its error_reason.proto is exempt from ENUM_VALUE_PREFIX, as air/v1's is
  # in buf.yaml.)
  printf '%s\n' 'version: v2' 'modules:' '  - path: proto' 'lint:' \
    '  use: [STANDARD, COMMENTS]' '  ignore_only:' '    ENUM_VALUE_PREFIX:' \
    '      - proto/air/upstream/v1/error_reason.proto' > "$tmp/buf.yaml"
  if out=$(cd "$tmp" && "$buf" lint --path proto/air/upstream 2>&1); then
    echo "proto-check: proto/air/upstream (not enforced): lint clean"
  else
    echo "proto-check: proto/air/upstream (not enforced): $(echo "$out" | grep -c .) problems:"
    echo "$out" | sed 's/^/  /'
  fi
fi

against=${AIR_BUF_AGAINST:-HEAD~1}
if ! git rev-parse --verify -q "$against^{commit}" >/dev/null; then
  echo "proto-check: no $against (first commit or shallow clone): breaking check skipped"
elif ! git cat-file -e "$against:proto" 2>/dev/null; then
  echo "proto-check: $against has no proto/ directory: breaking check skipped"
else
  echo "proto-check: buf breaking against $against"
  # Today's buf.yaml for both sides: the old commit may have none, or other
  # excludes, and an excluded directory must not read as deleted files.
  "$buf" breaking --against ".git#ref=$against" --against-config buf.yaml
fi
echo "proto-check: OK"
