#!/usr/bin/env bash
# Builds test/audit/tlogcheck (a test tool: Go's golang.org/x/mod/sumdb/tlog answering tree
# hashes and inclusion/consistency proofs, the independent implementation the audit log's
# Merkle tree is checked against) into the git-ignored .tools/bin. Rebuilds only when its
# sources or the Go version change.
#
#   scripts/install-tlogcheck.sh
#
# The build, its cache check and its GOSUMDB=off retry are scripts/lib-go.sh's go_build_tool.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
go_build_tool tlogcheck "$root/test/audit/tlogcheck" "$root/.tools/bin/tlogcheck" "go build over golang.org/x/mod/sumdb/tlog"
