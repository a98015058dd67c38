#!/usr/bin/env bash
# Installs ghz (the gRPC load generator of benchmarks/envoy.ts; a benchmark tool, never a
# runtime dependency) into the git-ignored .tools/bin. Reuses an existing install of the
# pinned version.
#
#   scripts/install-ghz.sh              # install if missing
#   GHZ_VERSION=v0.121.0 scripts/install-ghz.sh
#
# The version is pinned (not @latest) so runs recorded in benchmarks/README.md stay
# comparable. If Go's checksum database (sum.golang.org) cannot be reached, the install is
# retried once with GOSUMDB=off for that single `go install`; the module proxy still serves
# the exact tagged version. This is printed when it happens.
set -euo pipefail

GHZ_VERSION="${GHZ_VERSION:-v0.121.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
# TOOLS_BIN overrides the install directory (e.g. when .tools is shared with another checkout).
bin="${TOOLS_BIN:-$root/.tools/bin}"
ghz="$bin/ghz"

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. The output is captured first, then inspected.
installed_version() {
  local out
  # (kingpin prints the version on stderr)
  out="$("$ghz" --version 2>&1 || true)"
  printf '%s\n' "${out%%$'\n'*}"
}

if [ -x "$ghz" ] && [ "$(installed_version)" = "${GHZ_VERSION}" ]; then
  echo "ghz ${GHZ_VERSION} already installed at $ghz"
  exit 0
fi

go_require ghz

mkdir -p "$bin"
# ghz prints its version from main.version, which `go install` leaves at its default; set it
# so the cached-install check above can recognise the pinned version.
ldflags="-X main.version=${GHZ_VERSION}"
echo "installing ghz ${GHZ_VERSION} into $bin (go install)"
go_retry ghz env GOBIN="$bin" CGO_ENABLED=0 go install -ldflags "$ldflags" "github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}"
echo "ghz $(installed_version) at $ghz"
