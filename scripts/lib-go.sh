# Shared by the install scripts of test and benchmark tools built with Go (install-opa.sh,
# install-ghz.sh, install-spire.sh, install-opa-envoy-plugin.sh and the tools module builds
# install-tlogcheck.sh, install-envoy-validate.sh, install-k8s-validate.sh, install-gomatch.sh):
# source it, then call
#   go_require NAME                       fail with a clear message when Go is missing
#   go_retry NAME COMMAND...              run a go command; if it fails, retry it once with
#                                         GOSUMDB=off (Go's checksum database unreachable: the
#                                         module proxy / go.sum still pin every module), saying so
#   go_build_tool NAME SRC_DIR OUT NOTE   build the Go main package in SRC_DIR into OUT, only when
#                                         its sources (go.mod, go.sum, *.go) or the Go version changed
#
# No pipes into early-exiting readers (head, grep -q) here or in the scripts that use it: under
# pipefail the writer's SIGPIPE (exit 141) would fail the script. sha256sum reads all its input.

go_require() {
  if ! command -v go >/dev/null 2>&1; then
    echo "install-$1: Go is required (https://go.dev/dl/)" >&2
    return 1
  fi
}

go_retry() {
  local name="$1"
  shift
  if "$@"; then return 0; fi
  echo "install-$name: the go command failed; retrying with GOSUMDB=off for this run only (checksum database unreachable?)" >&2
  GOSUMDB=off "$@"
}

go_build_tool() {
  local name="$1" src="$2" out="$3" note="$4"
  local stamp sources f
  stamp="$(dirname "$out")/.$name.sources"
  go_require "$name"
  local files=("$src/go.mod")
  if [ -f "$src/go.sum" ]; then files+=("$src/go.sum"); fi
  for f in "$src"/*.go; do files+=("$f"); done
  sources="$( { go version; cat "${files[@]}"; } | sha256sum)"
  sources="${sources%% *}"
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sources" ]; then
    echo "$name up to date at $out"
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  echo "building $name into $(dirname "$out") ($note)"
  go_retry "$name" env -C "$src" CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .
  mv "$out.tmp" "$out"
  echo "$sources" > "$stamp"
  echo "$name built at $out"
}
