#!/usr/bin/env bash
# Installs Chromium from Debian's packages: a test tool (the real headless browser the console's
# end-to-end tests drive with playwright-core, test/console/browser.test.ts), never a runtime
# dependency. Playwright's own browser download is not used: the system browser is.
#
#   scripts/install-chromium.sh          # install if missing (needs root for apt-get)
#
# Skips the install when /usr/bin/chromium (or $CHROMIUM) is already there.
set -euo pipefail

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script.
for candidate in "${CHROMIUM:-}" /usr/bin/chromium; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    version="$("$candidate" --version 2>&1 || true)"
    echo "chromium already installed at $candidate ($version)"
    exit 0
  fi
done

if [ "$(id -u)" != "0" ]; then
  echo "install-chromium: chromium is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get not found; install chromium with your package manager" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=300 "$@"; }
# Package lists may be missing on a fresh machine: update once, then install. The fonts package
# gives the screenshots readable glyphs.
if ! apt_get install -y --no-install-recommends chromium fonts-dejavu-core; then
  apt_get update
  apt_get install -y --no-install-recommends chromium fonts-dejavu-core
fi
version="$(/usr/bin/chromium --version 2>&1 || true)"
echo "installed: $version"
