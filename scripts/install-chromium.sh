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

. "$(dirname "$0")/lib-apt.sh"
# The fonts package gives the screenshots readable glyphs.
apt_install_tool chromium chromium - fonts-dejavu-core
version="$(/usr/bin/chromium --version 2>&1 || true)"
echo "installed: $version"
