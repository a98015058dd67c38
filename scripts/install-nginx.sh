#!/usr/bin/env bash
# Installs nginx from Debian's packages: a test tool (the real HTTP server the bundle-service
# tests download bundles from, test/helpers/nginx.ts), never a runtime dependency. Tests start
# it themselves as an unprivileged foreground process on a loopback port; the service the
# package may register is not used.
#
#   scripts/install-nginx.sh          # install if missing (needs root for apt-get)
#
# Skips the install when an nginx binary is already on PATH or in /usr/sbin.
set -euo pipefail

# No pipes into early-exiting readers (head, grep -q): under pipefail the writer's SIGPIPE
# (exit 141) would fail the script.
for candidate in "${NGINX:-}" "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    version="$("$candidate" -v 2>&1)"
    echo "nginx already installed at $candidate ($version)"
    exit 0
  fi
done

. "$(dirname "$0")/lib-apt.sh"
apt_install_tool nginx nginx-light nginx
version="$(/usr/sbin/nginx -v 2>&1)"
echo "installed: $version"
