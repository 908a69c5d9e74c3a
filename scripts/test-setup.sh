#!/usr/bin/env bash
# Makes sure the real parts the tests start are installed: Debian's redis-server and
# redis-sentinel (the Redis session store is tested against a real server, Sentinel and Cluster), nginx (the shipped nginx files, forward-auth)
# and chromium (the browser journey, driven by playwright-core; no browser download). Installs
# what is missing when we are root; otherwise fails naming the packages to install.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
# The TLS Redis test makes its certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi

echo "test setup: missing ${need[*]}: install the Debian package(s) with: sudo apt-get install ${need[*]}" >&2
exit 1
