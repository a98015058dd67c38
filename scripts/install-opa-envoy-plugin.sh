#!/usr/bin/env bash
# Builds opa-envoy-plugin (OPA with the Envoy ext_authz gRPC plugin: the reference server of
# benchmarks/envoy.ts; a benchmark tool, never a runtime dependency) from a source checkout
# into the git-ignored .tools/bin, and records the commit it was built from.
#
#   scripts/install-opa-envoy-plugin.sh /path/to/opa-envoy-plugin        # a git checkout or source tree
#   scripts/install-opa-envoy-plugin.sh /path/to/opa-envoy-plugin.git    # a bare git dir: HEAD is exported
#   OPA_ENVOY_PLUGIN_REF=<commit> scripts/install-opa-envoy-plugin.sh /path/to/bare.git
#
# opa-envoy-plugin is not served by the Go module proxy (its module is not meant to be
# installed with `go install`), so it is built from source. The build is what its Makefile's
# `build` target does (`go build ./cmd/opa-envoy-plugin/...` with the version in -ldflags),
# except with CGO off and without the `opa_wasm` tag: the benchmark serves Rego, which OPA
# evaluates with its Go evaluator either way, and the wasm engine needs CGO.
#
# Output: $TOOLS_BIN/opa-envoy-plugin (default .tools/bin) and, beside it,
# opa-envoy-plugin.commit holding the commit built. Benchmarks take the binary's path from
# OPA_ENVOY_PLUGIN. A binary already built from the same commit is reused.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 <opa-envoy-plugin source checkout, source tree or bare git dir>" >&2
  exit 2
fi
src="$(cd "$1" && pwd -P)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib-go.sh
. "$root/scripts/lib-go.sh"
# TOOLS_BIN overrides the install directory (e.g. when .tools is shared with another checkout).
bin="${TOOLS_BIN:-$root/.tools/bin}"
out="$bin/opa-envoy-plugin"
ref="${OPA_ENVOY_PLUGIN_REF:-HEAD}"

go_require opa-envoy-plugin

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Which kind of path: a bare git dir (fetched mirror), a work tree with git, or plain sources.
# (A git dir without a work tree is recognised by its layout: a fetched mirror may lack a
# config that says "bare".)
if [ ! -f "$src/go.mod" ] && [ -f "$src/HEAD" ] && [ -d "$src/objects" ]; then
  commit="$(git --git-dir="$src" rev-parse "$ref^{commit}")"
  tree="$work/src"
  mkdir -p "$tree"
  git --git-dir="$src" archive "$commit" | tar -x -C "$tree"
# (a git work tree only when the sources are its top level, not a folder inside another repository)
elif [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null || true)" = "$src" ]; then
  commit="$(git -C "$src" rev-parse "$ref^{commit}")"
  dirty="$(git -C "$src" status --porcelain --untracked-files=no)"
  if [ -n "$dirty" ]; then commit="$commit-dirty"; fi
  tree="$src"
else
  commit="unknown (source tree without git)"
  tree="$src"
fi

if [ ! -f "$tree/go.mod" ] || [ ! -d "$tree/cmd/opa-envoy-plugin" ]; then
  echo "install-opa-envoy-plugin: $1 does not hold opa-envoy-plugin's sources (go.mod, cmd/opa-envoy-plugin)" >&2
  exit 1
fi

if [ -x "$out" ] && [ -f "$out.commit" ] && [ "$(cat "$out.commit")" = "$commit" ] && [ "${commit#unknown}" = "$commit" ]; then
  echo "opa-envoy-plugin $commit already built at $out"
  exit 0
fi

# The OPA version it vendors, as the Makefile's build/get-opa-version.sh reads it from go.mod.
opa_version="$(sed -n 's/^[[:space:]]*github.com\/open-policy-agent\/opa v\([^[:space:]]*\).*/\1/p' "$tree/go.mod")"
short="${commit:0:12}"
# (OPA 1.x keeps its version variables in v1/version; the Makefile still names the old package)
ldflags="-X github.com/open-policy-agent/opa/v1/version.Version=${opa_version}-envoy -X github.com/open-policy-agent/opa/v1/version.Vcs=${commit}"

mkdir -p "$bin"
echo "building opa-envoy-plugin ${short} (OPA ${opa_version}) into $out (go build; this compiles OPA and takes a few minutes)"
go_retry opa-envoy-plugin env -C "$tree" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -ldflags "$ldflags" -o "$out" ./cmd/opa-envoy-plugin
printf '%s\n' "$commit" > "$out.commit"
echo "opa-envoy-plugin built from commit $commit"
"$out" version
