#!/usr/bin/env bash
# Builds tools/envoy-validate (a CI tool: validates examples/envoy/*.yaml against Envoy's v3
# Bootstrap API from go-control-plane, since Envoy itself cannot be installed on our machines)
# into the git-ignored .tools/bin. Rebuilds only when its sources or the Go version change.
#
#   scripts/install-envoy-validate.sh
#   .tools/bin/envoy-validate examples/envoy/envoy-grpc.yaml examples/envoy/envoy-http.yaml
#
# The build, its cache check and its GOSUMDB=off retry are scripts/lib-go.sh's go_build_tool.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
go_build_tool envoy-validate "$root/tools/envoy-validate" "$root/.tools/bin/envoy-validate" "go build over go-control-plane; the first build takes a minute or two"
