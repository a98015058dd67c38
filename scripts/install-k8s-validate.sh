#!/usr/bin/env bash
# Builds tools/k8s-validate (a CI tool: decodes deploy/kubernetes manifests strictly into the
# official Kubernetes API types from k8s.io/api and checks what can be checked without a
# cluster, since no cluster runs on our machines) into the git-ignored .tools/bin. Rebuilds
# only when its sources or the Go version change.
#
#   scripts/install-k8s-validate.sh
#   .tools/bin/k8s-validate deploy/kubernetes/central/kustomization.yaml
#
# Like install-opa.sh: if Go's checksum database cannot be reached, the build is retried once
# with GOSUMDB=off (go.sum still pins every module's hash), and that is printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/tools/k8s-validate"
bin="$root/.tools/bin"
out="$bin/k8s-validate"
stamp="$bin/.k8s-validate.sources"

if ! command -v go >/dev/null 2>&1; then
  echo "install-k8s-validate: Go is required (https://go.dev/dl/)" >&2
  exit 1
fi

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. sha256sum reads all of its input.
sources="$( { go version; cat "$src/go.mod" "$src/go.sum" "$src"/*.go; } | sha256sum)"
sources="${sources%% *}"

if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sources" ]; then
  echo "k8s-validate up to date at $out"
  exit 0
fi

mkdir -p "$bin"
echo "building k8s-validate into $bin (go build over k8s.io/api; the first build takes a minute)"
build() { (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .); }
if ! build; then
  echo "install-k8s-validate: go build failed; retrying with GOSUMDB=off for this build only (checksum database unreachable?)" >&2
  GOSUMDB=off build
fi
mv "$out.tmp" "$out"
echo "$sources" > "$stamp"
echo "k8s-validate built at $out"
