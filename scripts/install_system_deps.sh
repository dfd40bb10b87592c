#!/usr/bin/env bash
# System packages the test suite needs that PyPI cannot provide:
#   chromium  - headless browser for the notebook browser test (Playwright drives it; no browser download).
# Idempotent and quiet when everything is present. Needs root (or sudo) to install.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_system_deps: missing ${need[*]} and not root; the browser test will be skipped" >&2; exit 0; fi
fi
echo "install_system_deps: installing ${need[*]} (Debian packages)" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
