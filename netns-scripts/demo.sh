#!/usr/bin/env bash
# End-to-end demo of the TUN layer: builds the namespaces (up.sh), runs the echo responder (lb/echo) on a
# TUN in the gateway namespace, then pings it (IPv4, IPv6) and sends it UDP datagrams from the client
# namespace. Everything is torn down on every exit path (trap EXIT), success or not.
#
# Usage: netns-scripts/demo.sh        (as root; `deno task demo` from the repo root)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
deno="${DENO:-$repo/node_modules/.bin/deno}"
python="${PYTHON:-/usr/bin/python3}"
echo_v4=198.18.0.100
echo_v6=fd00::100

log="$(mktemp -t echo-demo.XXXXXX)"
echo_pid=""
prefix=""
cleanup() {
  local rc=$?
  if [[ -n "$echo_pid" ]] && kill -0 "$echo_pid" 2>/dev/null; then
    kill -TERM "$echo_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$echo_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$echo_pid" 2>/dev/null || true
  fi
  [[ -n "$prefix" ]] && "$here/down.sh" "$prefix"
  rm -f "$log"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

env_out="$("$here/up.sh")"
eval "$env_out"
prefix="$LB_PREFIX"
echo "== topology $prefix: client $CLI_IP4 / $CLI_IP6 -> gateway $GW_CLI_IP4 / $GW_CLI_IP6"

# `ip netns exec` execs deno in place, so $! is deno's pid and SIGTERM reaches it directly.
ip netns exec "$NS_GW" "$deno" run -A "$repo/lb/echo/main.ts" --tun echo0 --addr "$echo_v4" --addr6 "$echo_v6" \
  >"$log" 2>&1 &
echo_pid=$!
for _ in $(seq 200); do
  grep -qx ready "$log" && break
  kill -0 "$echo_pid" 2>/dev/null || { cat "$log" >&2; echo "demo: echo responder exited" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$log" || { cat "$log" >&2; echo "demo: echo responder not ready after 20 s" >&2; exit 1; }
echo "== echo responder ready on $NS_GW/echo0 for $echo_v4 and $echo_v6"

in_cli() { ip netns exec "$NS_CLI" "$@"; }
echo "== ping $echo_v4";  in_cli ping -c 3 -i 0.2 -W 2 "$echo_v4"
echo "== ping $echo_v6";  in_cli ping -6 -c 3 -i 0.2 -W 2 "$echo_v6"
echo "== UDP $echo_v4 port 7";   in_cli "$python" "$here/udp_echo_client.py" "$echo_v4" 7 --text "hello over IPv4" 2>&1
echo "== UDP [$echo_v6] port 9000"; in_cli "$python" "$here/udp_echo_client.py" "$echo_v6" 9000 --text "hello over IPv6" 2>&1

kill -TERM "$echo_pid"
wait "$echo_pid" || true
echo_pid=""
echo "== echo responder log"
cat "$log"
echo "== demo OK; tearing down $prefix"
