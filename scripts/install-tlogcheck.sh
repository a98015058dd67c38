#!/usr/bin/env bash
# Builds test/audit/tlogcheck (a test tool: Go's golang.org/x/mod/sumdb/tlog answering tree
# hashes and inclusion/consistency proofs, the independent implementation the audit log's
# Merkle tree is checked against) into the git-ignored .tools/bin. Rebuilds only when its
# sources or the Go version change.
#
#   scripts/install-tlogcheck.sh
#
# Like install-opa.sh: if Go's checksum database cannot be reached, the build is retried once
# with GOSUMDB=off (go.sum still pins every module's hash), and that is printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/test/audit/tlogcheck"
bin="$root/.tools/bin"
out="$bin/tlogcheck"
stamp="$bin/.tlogcheck.sources"

if ! command -v go >/dev/null 2>&1; then
  echo "install-tlogcheck: Go is required (https://go.dev/dl/)" >&2
  exit 1
fi

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. sha256sum reads all of its input.
sources="$( { go version; cat "$src/go.mod" "$src/go.sum" "$src"/*.go; } | sha256sum)"
sources="${sources%% *}"

if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sources" ]; then
  echo "tlogcheck up to date at $out"
  exit 0
fi

mkdir -p "$bin"
echo "building tlogcheck into $bin (go build over golang.org/x/mod/sumdb/tlog)"
build() { (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .); }
if ! build; then
  echo "install-tlogcheck: go build failed; retrying with GOSUMDB=off for this build only (checksum database unreachable?)" >&2
  GOSUMDB=off build
fi
mv "$out.tmp" "$out"
echo "$sources" > "$stamp"
echo "tlogcheck built at $out"
