#!/usr/bin/env bash
# Installs the opa CLI (a build/test tool for Portcullis, never a runtime dependency)
# into the git-ignored .tools/bin. Reuses an existing install of the right version.
#
#   scripts/install-opa.sh            # install if missing
#   OPA_VERSION=v1.22.2 scripts/install-opa.sh
#
# If Go's checksum database (sum.golang.org) cannot be reached, the install is retried
# once with GOSUMDB=off for that single `go install` only; the module proxy still serves
# the exact tagged version. This is printed when it happens.
set -euo pipefail

OPA_VERSION="${OPA_VERSION:-v1.22.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
bin="$root/.tools/bin"
opa="$bin/opa"

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. The output is captured first, then inspected.
installed_version() { "$opa" version 2>/dev/null | sed -n 's/^Version: //p'; }

if [ -x "$opa" ] && [ "$(installed_version)" = "${OPA_VERSION#v}" ]; then
  echo "opa ${OPA_VERSION} already installed at $opa"
  exit 0
fi

go_require opa

mkdir -p "$bin"
echo "installing opa ${OPA_VERSION} into $bin (go install; this compiles OPA and takes a few minutes)"
go_retry opa env GOBIN="$bin" CGO_ENABLED=0 go install "github.com/open-policy-agent/opa@${OPA_VERSION}"
echo "Version: $(installed_version)"
