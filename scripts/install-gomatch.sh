#!/usr/bin/env bash
# Builds test/bundles/gomatch (a test tool: Go's path/filepath.Match as a command, the function
# OPA applies to signing.exclude_files; the port in src/bundle-files.ts is checked against it)
# into the git-ignored .tools/bin. Rebuilds only when its sources or the Go version change.
#
#   scripts/install-gomatch.sh
#
# The build, its cache check and its GOSUMDB=off retry are scripts/lib-go.sh's go_build_tool.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
go_build_tool gomatch "$root/test/bundles/gomatch" "$root/.tools/bin/gomatch" "go build over the standard library only"
