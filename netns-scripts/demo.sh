#!/usr/bin/env bash
# The whole gateway in one command: a client curls a VIP, the FULLNAT gateway (mod.ts lb) forwards it to a
# real server with the client's address in TOA, toa-proxy on the real server reads it from the saved SYN and
# announces it to nginx in a PROXY v1 header, and nginx answers with the address it was told. The answer
# must be the client's own address (198.18.1.2), not the gateway's local address (198.18.2.1):
#
#   client 198.18.1.2 ─▶ VIP 198.18.0.100:80 ══ gateway ══ 198.18.2.1 ─▶ rs1 198.18.3.10:80 toa-proxy
#                                                                          └─ PROXY v1 ─▶ nginx 127.0.0.1:8080
#
# Installs what it needs first (setup-host.sh), then builds the namespaces (up.sh); everything it starts is
# torn down on every exit path (trap EXIT), Ctrl-C included.
#
# Usage: netns-scripts/demo.sh        (as root; `deno task demo` from the repo root)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
deno="${DENO:-$repo/node_modules/.bin/deno}"
vip=198.18.0.100
local_addr=198.18.2.1

bash "$here/setup-host.sh"

work="$(mktemp -d -t toa-demo.XXXXXX)"
pids=()
prefix=""
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [[ -n "$prefix" ]] && "$here/down.sh" "$prefix"
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded) until FILE has a line matching PATTERN; fails with the log if PID dies first.
wait_for() {
  local file="$1" pattern="$2" pid="$3" what="$4"
  for _ in $(seq 200); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; echo "demo: $what exited" >&2; return 1; }
    sleep 0.1
  done
  cat "$file" >&2
  echo "demo: $what not ready after 20 s" >&2
  return 1
}

env_out="$("$here/up.sh" --rs 1)"
eval "$env_out"
prefix="$LB_PREFIX"
echo "== topology $prefix: client $CLI_IP4 -> gateway -> rs1 $RS1_IP4"

# nginx on rs1, behind toa-proxy: it takes the client from the PROXY header and answers with it on /ip.
mkdir -p "$work/nginx/tmp" "$work/nginx/www"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  log_format pp '\$proxy_protocol_addr:\$proxy_protocol_port via \$realip_remote_addr "\$request" \$status';
  access_log $work/nginx/access.log pp;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:8080 proxy_protocol;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    location / {
      default_type text/plain;
      return 200 "\$proxy_protocol_addr:\$proxy_protocol_port\n";
    }
  }
}
EOF
ip netns exec "$NS_RS1" nginx -p "$work/nginx/" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
  >"$work/nginx.out" 2>&1 &
pids+=($!)
for i in $(seq 101); do
  ip netns exec "$NS_RS1" ss -Hltn | grep -q '127.0.0.1:8080 ' && break
  kill -0 "${pids[-1]}" 2>/dev/null && ((i < 101)) || { cat "$work/nginx.out" >&2; echo "demo: nginx not up" >&2; exit 1; }
  sleep 0.1
done

# `ip netns exec` execs its command in place, so $! is the command's own pid and SIGTERM reaches it.
ip netns exec "$NS_RS1" "$deno" run -A "$repo/mod.ts" toa-proxy --listen "$RS1_IP4:80" \
  --backend 127.0.0.1:8080 --proxy-protocol v1 --trust 198.18.2.0/24 >"$work/toa-proxy.log" 2>&1 &
pids+=($!)
wait_for "$work/toa-proxy.log" "toa-proxy ready" "${pids[-1]}" toa-proxy
echo "== rs1: $(grep 'toa-proxy ready' "$work/toa-proxy.log")"

tun="tdemo$(printf '%04x' "$RANDOM")"
cat >"$work/gw.json" <<EOF
{
  "tun": "$tun",
  "control": "$work/gw.sock",
  "localAddresses": ["$local_addr"],
  "services": [
    { "vip": "$vip", "port": 80, "protocol": "tcp", "scheduler": "rr", "toa": true,
      "realServers": [ { "address": "$RS1_IP4", "port": 80, "weight": 1 } ] }
  ]
}
EOF
ip netns exec "$NS_GW" "$deno" run -A "$repo/mod.ts" lb --config "$work/gw.json" >"$work/gw.log" 2>&1 &
pids+=($!)
wait_for "$work/gw.log" "fnat-lb ready" "${pids[-1]}" gateway
echo "== gateway: $(grep 'fnat-lb ready' "$work/gw.log")"

echo "== client $CLI_IP4: curl http://$vip/"
seen="$(ip netns exec "$NS_CLI" curl -sS --max-time 10 "http://$vip/")"
echo "   the server saw the client as: $seen"
echo "== nginx access log on rs1:"
sed 's/^/   /' "$work/nginx/access.log"
if [[ "$seen" != "$CLI_IP4:"* ]]; then
  echo "demo: FAILED: the server saw $seen, not the client $CLI_IP4" >&2
  exit 1
fi
echo "== demo OK: the real server saw the client's own address ($CLI_IP4), not the gateway's ($local_addr)"
