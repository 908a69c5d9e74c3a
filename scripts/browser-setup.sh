#!/usr/bin/env bash
# Makes sure the browser the real-browser tests drive is installed: Debian's `chromium`
# at /usr/bin/chromium (playwright-core never downloads a browser). Installs it with apt-get
# when missing and we are root; otherwise fails naming the package to install.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then exit 0; fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser setup: installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  if [ -x "$CHROMIUM" ]; then exit 0; fi
  echo "browser setup: apt-get installed chromium but $CHROMIUM is still missing" >&2
  exit 1
fi

echo "browser setup: $CHROMIUM is missing: install the Debian package with: sudo apt-get install chromium" >&2
exit 1
