# Shared by the install scripts of test tools that come from Debian's packages
# (install-nginx.sh, install-chromium.sh): source it, then call
#   apt_install_tool NAME PACKAGE [FALLBACK_PACKAGE] [EXTRA_PACKAGE...]
# It fails with a clear message when not root or without apt-get, installs with a lock timeout
# (other apt runs on the machine wait instead of failing), and updates the package lists only
# when the first attempt fails (lists may be missing on a fresh machine). A FALLBACK_PACKAGE of
# "-" means none.
#
# No pipes into early-exiting readers (head, grep -q) in the scripts that use it: under pipefail
# the writer's SIGPIPE (exit 141) would fail the script.

apt_get() { apt-get -o DPkg::Lock::Timeout=300 "$@"; }

apt_install_tool() {
  local name="$1" package="$2" fallback="${3:--}"
  shift 3 || shift $#
  if [ "$(id -u)" != "0" ]; then
    echo "install-$name: $name is missing and installing it needs root (apt-get install $package)" >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-$name: apt-get not found; install $name with your package manager" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if apt_get install -y --no-install-recommends "$package" "$@"; then return 0; fi
  apt_get update
  if apt_get install -y --no-install-recommends "$package" "$@"; then return 0; fi
  if [ "$fallback" != "-" ]; then
    apt_get install -y --no-install-recommends "$fallback" "$@"
  else
    return 1
  fi
}
