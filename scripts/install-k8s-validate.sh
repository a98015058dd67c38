#!/usr/bin/env bash
# Builds tools/k8s-validate (a CI tool: decodes deploy/kubernetes manifests strictly into the
# official Kubernetes API types from k8s.io/api and checks what can be checked without a
# cluster, since no cluster runs on our machines) into the git-ignored .tools/bin. Rebuilds
# only when its sources or the Go version change.
#
#   scripts/install-k8s-validate.sh
#   .tools/bin/k8s-validate deploy/kubernetes/central/kustomization.yaml
#
# The build, its cache check and its GOSUMDB=off retry are scripts/lib-go.sh's go_build_tool.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
go_build_tool k8s-validate "$root/tools/k8s-validate" "$root/.tools/bin/k8s-validate" "go build over k8s.io/api; the first build takes a minute"
