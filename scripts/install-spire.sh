#!/usr/bin/env bash
# Builds SPIRE's spire-server and spire-agent (test tools: the Workload API integration tests run
# a real SPIRE on loopback/Unix sockets; never a runtime dependency of Portcullis) from the tools
# module tools/spire (go.mod/go.sum pin github.com/spiffe/spire at SPIRE_VERSION) into the
# git-ignored .tools/bin. Reuses an existing build of the right version.
#
#   scripts/install-spire.sh
#   .tools/bin/spire-server --version
#
# CGO is required: SPIRE's sqlite datastore (used by the tests) is go-sqlite3. Like install-opa.sh:
# if Go's checksum database cannot be reached, the build is retried once with GOSUMDB=off (go.sum
# still pins every module's hash), and that is printed.
set -euo pipefail

SPIRE_VERSION="${SPIRE_VERSION:-v1.13.3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
src="$root/tools/spire"
bin="$root/.tools/bin"

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script. The output is captured first, then inspected.
installed_version() {
  local out
  out="$("$bin/$1" --version 2>&1 || true)"
  printf '%s' "${out%%$'\n'*}"
}

go_require spire
pinned="$(cd "$src" && go list -m -f '{{.Version}}' github.com/spiffe/spire)"
if [ "$pinned" != "$SPIRE_VERSION" ]; then
  echo "install-spire: tools/spire/go.mod pins spire $pinned, expected $SPIRE_VERSION" >&2
  exit 1
fi

# A `go install` build reports "<version>-dev-unk" (no release ldflags): the version is what counts.
version_ok() {
  case "$(installed_version "$1")" in
    "${SPIRE_VERSION#v}" | "${SPIRE_VERSION#v}"-*) return 0 ;;
    *) return 1 ;;
  esac
}

if [ -x "$bin/spire-server" ] && [ -x "$bin/spire-agent" ] && version_ok spire-server && version_ok spire-agent; then
  echo "spire ${SPIRE_VERSION} already installed in $bin"
  exit 0
fi

if ! command -v gcc >/dev/null 2>&1; then
  echo "install-spire: gcc is required (SPIRE's sqlite datastore needs CGO)" >&2
  exit 1
fi

mkdir -p "$bin"
echo "building spire-server and spire-agent ${SPIRE_VERSION} into $bin (go install with CGO; takes several minutes)"
go_retry spire env -C "$src" GOBIN="$bin" CGO_ENABLED=1 go install \
  github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
echo "spire-server $(installed_version spire-server), spire-agent $(installed_version spire-agent)"
