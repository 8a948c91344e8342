#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine, as root: the Debian packages
# (only those missing; apt-get update only when something is missing) and Deno from the npm package
# pinned in package.json (npm ci). Idempotent: a second run does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers of the tests, the demo and the benchmarks: nginx, HAProxy, curl, ab, iperf3, wrk, tcpdump, scapy;
# headless Chromium loads the status page (tests/status_page_test.ts).
PACKAGES=(iproute2 iputils-ping procps util-linux ethtool python3 python3-scapy nftables tcpdump
  nginx-light haproxy curl apache2-utils iperf3 wrk chromium)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run as root (network namespaces and TUN devices need CAP_NET_ADMIN)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-host: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The packages' services (nginx, haproxy) must not start in the root namespace: the tests run their
  # own copies inside namespaces. A policy-rc.d that refuses every start does that during the install.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi

# Deno comes from the npm package `deno`; npm ci installs exactly the locked version.
want=$(node -p 'require("./package.json").devDependencies.deno')
have=$(node -p 'try { require("./node_modules/deno/package.json").version } catch { "" }')
if [ "$want" != "$have" ] || ! node_modules/.bin/deno --version >/dev/null 2>&1; then
  echo "setup-host: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/deno --version | head -n 1
