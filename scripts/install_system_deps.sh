#!/usr/bin/env bash
# System packages the test suite can use that PyPI cannot provide:
#   chromium  - headless browser for the notebook browser test (Playwright drives it; no browser download).
# Never blocks the tests: where the browser cannot be installed (no apt-get, not root, Ubuntu's snap-only
# chromium, no network), it says why and the browser test skips with that reason; everything else runs.
# The reason is left in build/system-deps.txt for the test to quote. Idempotent and quiet when present.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
REASON_FILE=build/system-deps.txt
CHROMIUM=/usr/bin/chromium

skip() {  # the browser test will skip; say why, here and in the reason file
  echo "install_system_deps: $*; the browser test will be skipped (everything else runs)" >&2
  echo "$*" > "$REASON_FILE"
  exit 0
}

if [ -x "$CHROMIUM" ]; then rm -f "$REASON_FILE"; exit 0; fi
command -v apt-get >/dev/null 2>&1 || skip "no apt-get on this machine: install Debian's chromium at $CHROMIUM by hand"
if [ -r /etc/os-release ] && grep -qi '^ID=ubuntu' /etc/os-release; then
  skip "Ubuntu ships chromium only as a snap (the apt package is a transitional stub): install a Chromium at $CHROMIUM by hand"
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    skip "chromium is missing and this user cannot install packages (not root, no password-less sudo)"; fi
fi
echo "install_system_deps: installing chromium (Debian package)" >&2
if ! { $SUDO apt-get update -qq >/dev/null 2>&1 &&
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; then
  skip "apt-get could not install chromium (no package source reachable?)"
fi
[ -x "$CHROMIUM" ] || skip "the chromium package installed no browser at $CHROMIUM"
rm -f "$REASON_FILE"
