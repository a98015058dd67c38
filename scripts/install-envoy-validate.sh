#!/usr/bin/env bash
# Builds tools/envoy-validate (a CI tool: validates examples/envoy/*.yaml against Envoy's v3
# Bootstrap API from go-control-plane, since Envoy itself cannot be installed on our machines)
# into the git-ignored .tools/bin. Rebuilds only when its sources or the Go version change.
#
#   scripts/install-envoy-validate.sh
#   .tools/bin/envoy-validate examples/envoy/envoy-grpc.yaml examples/envoy/envoy-http.yaml
#
# Like install-opa.sh: if Go's checksum database cannot be reached, the build is retried once
# with GOSUMDB=off (go.sum still pins every module's hash), and that is printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/tools/envoy-validate"
bin="$root/.tools/bin"
out="$bin/envoy-validate"
stamp="$bin/.envoy-validate.sources"

if ! command -v go >/dev/null 2>&1; then
  echo "install-envoy-validate: Go is required (https://go.dev/dl/)" >&2
  exit 1
fi

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. sha256sum reads all of its input.
sources="$( { go version; cat "$src/go.mod" "$src/go.sum" "$src"/*.go; } | sha256sum)"
sources="${sources%% *}"

if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sources" ]; then
  echo "envoy-validate up to date at $out"
  exit 0
fi

mkdir -p "$bin"
echo "building envoy-validate into $bin (go build over go-control-plane; the first build takes a minute or two)"
build() { (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .); }
if ! build; then
  echo "install-envoy-validate: go build failed; retrying with GOSUMDB=off for this build only (checksum database unreachable?)" >&2
  GOSUMDB=off build
fi
mv "$out.tmp" "$out"
echo "$sources" > "$stamp"
echo "envoy-validate built at $out"
