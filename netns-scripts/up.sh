#!/usr/bin/env bash
# Builds a client -- gateway -- real-server topology in fresh network namespaces, joined by veth pairs.
#
#   ${P}-cli  eth0 198.18.1.2/24  fd00:1::2/64      default via 198.18.1.1 / fd00:1::1
#        |
#   ${P}-gw   c0   198.18.1.1/24  fd00:1::1/64      ip_forward=1 (v4, v6), rp_filter=0
#             br0  198.18.3.1/24  fd00:3::1/64      bridge with ports r1..rN
#        |
#   ${P}-rsI  eth0 198.18.3.(9+I)/24  fd00:3::(9+I)/64   198.18.0.0/15 and fd00::/8 via the gateway
#
# Later the gateway's VIPs (198.18.0.x) and local addresses (198.18.2.x) are routed into a TUN in ${P}-gw.
# Every veth end has rx checksum offload off, so the kernels check every checksum our datapath writes.
# Every link is created directly inside its namespace, so nothing (no link, address or route) touches the
# root namespace, and only 198.18.0.0/15 and fd00::/8 are used (RFC 2544 benchmarking / ULA space).
#
# Usage: up.sh [--prefix P] [--rs N] [--env-file FILE]
#   --prefix  name prefix (letters/digits, <= 16 chars); default lbt<pid-hex><random-hex>, unique per run
#   --rs      number of real-server namespaces, 1..50; default 2
#   --env-file also write the export lines to FILE
# Prints `export NAME=value` lines on stdout (eval them); progress and errors go to stderr.
# On any failure everything already created is removed again (down.sh) before exiting non-zero.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# "lbt" marks test/demo namespaces: tests/run.sh fails the run if any "lbt*" namespace outlives it.
prefix="$(printf 'lbt%x%04x' "$$" "$RANDOM")"
rs_count=2
env_file=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --rs) rs_count="$2"; shift 2 ;;
    --env-file) env_file="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "up.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ ! "$prefix" =~ ^[A-Za-z0-9]{1,16}$ ]]; then
  echo "up.sh: --prefix must be 1-16 letters or digits, got '$prefix'" >&2; exit 2
fi
if [[ ! "$rs_count" =~ ^[0-9]+$ ]] || (( rs_count < 1 || rs_count > 50 )); then
  echo "up.sh: --rs must be 1..50, got '$rs_count'" >&2; exit 2
fi
for cmd in ip ethtool; do
  command -v "$cmd" >/dev/null || { echo "up.sh: '$cmd' not found (apt-get install iproute2 ethtool)" >&2; exit 1; }
done
if [[ $EUID -ne 0 ]]; then
  echo "up.sh: must run as root (creates network namespaces)" >&2; exit 1
fi
if ip netns list | awk '{print $1}' | grep -q "^${prefix}-"; then
  echo "up.sh: namespaces with prefix ${prefix}- already exist; run down.sh ${prefix} first" >&2; exit 1
fi

trap 'rc=$?; echo "up.sh: failed (line $LINENO), removing ${prefix}-*" >&2; "$here/down.sh" "$prefix" >&2; exit $rc' ERR

ns_cli="${prefix}-cli"
ns_gw="${prefix}-gw"

# Writes a sysctl inside a namespace through /proc (per-netns for net.*), so procps is not needed.
nsysctl() {
  ip netns exec "$1" sh -c "echo $3 > /proc/sys/${2//.//}"
}

# Fresh namespace: loopback up, IPv6 DAD off (addresses usable at once), rp_filter off, ping unprivileged.
new_ns() {
  local ns="$1"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  nsysctl "$ns" net.ipv6.conf.all.accept_dad 0
  nsysctl "$ns" net.ipv6.conf.default.accept_dad 0
  nsysctl "$ns" net.ipv4.conf.all.rp_filter 0
  nsysctl "$ns" net.ipv4.conf.default.rp_filter 0
  # ping then uses ICMP datagram sockets, which see only replies the kernel checksum-verified; on a raw
  # socket (the fallback) iputils counts a reply with a wrong ICMP checksum as received.
  nsysctl "$ns" net.ipv4.ping_group_range "0 2147483647"
}

new_ns "$ns_cli"
new_ns "$ns_gw"
nsysctl "$ns_gw" net.ipv4.ip_forward 1
nsysctl "$ns_gw" net.ipv6.conf.all.forwarding 1

# veth marks every packet it delivers CHECKSUM_UNNECESSARY when the receiving end has rx checksum offload,
# so the receiving kernel would accept a packet with a wrong IP/ICMP/UDP/TCP checksum. Turning rx offload
# off on every veth end makes each namespace's kernel verify what our userspace datapath wrote.
verify_rx_csum() {
  ip netns exec "$1" ethtool -K "$2" rx off >/dev/null
}

# client <-> gateway
ip -n "$ns_cli" link add eth0 type veth peer name c0 netns "$ns_gw"
verify_rx_csum "$ns_cli" eth0
verify_rx_csum "$ns_gw" c0
ip -n "$ns_cli" addr add 198.18.1.2/24 dev eth0
ip -n "$ns_cli" -6 addr add fd00:1::2/64 dev eth0 nodad
ip -n "$ns_cli" link set eth0 up
ip -n "$ns_gw" addr add 198.18.1.1/24 dev c0
ip -n "$ns_gw" -6 addr add fd00:1::1/64 dev c0 nodad
ip -n "$ns_gw" link set c0 up
ip -n "$ns_cli" route add default via 198.18.1.1
ip -n "$ns_cli" -6 route add default via fd00:1::1

# gateway bridge for the real-server network (no STP, no snooping: ports forward at once, NDP floods)
ip -n "$ns_gw" link add br0 type bridge stp_state 0 mcast_snooping 0
ip -n "$ns_gw" addr add 198.18.3.1/24 dev br0
ip -n "$ns_gw" -6 addr add fd00:3::1/64 dev br0 nodad
ip -n "$ns_gw" link set br0 up

rs_names=()
env_lines=(
  "export LB_PREFIX=$prefix"
  "export NS_CLI=$ns_cli"
  "export NS_GW=$ns_gw"
  "export CLI_IP4=198.18.1.2"
  "export CLI_IP6=fd00:1::2"
  "export GW_CLI_IP4=198.18.1.1"
  "export GW_CLI_IP6=fd00:1::1"
  "export GW_RS_IP4=198.18.3.1"
  "export GW_RS_IP6=fd00:3::1"
  "export RS_COUNT=$rs_count"
)
for ((i = 1; i <= rs_count; i++)); do
  ns="${prefix}-rs$i"
  host=$((9 + i))
  new_ns "$ns"
  ip -n "$ns" link add eth0 type veth peer name "r$i" netns "$ns_gw"
  verify_rx_csum "$ns" eth0
  verify_rx_csum "$ns_gw" "r$i"
  ip -n "$ns_gw" link set "r$i" master br0 up
  ip -n "$ns" addr add "198.18.3.$host/24" dev eth0
  ip -n "$ns" -6 addr add "fd00:3::$host/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add 198.18.0.0/15 via 198.18.3.1
  ip -n "$ns" -6 route add fd00::/8 via fd00:3::1
  rs_names+=("$ns")
  env_lines+=("export NS_RS$i=$ns" "export RS${i}_IP4=198.18.3.$host" "export RS${i}_IP6=fd00:3::$host")
done
env_lines+=("export NS_RS='${rs_names[*]}'")

# veth carrier reaches operstate UP asynchronously (linkwatch, up to ~1 s); packets sent before that are
# lost and IPv6 neighbour discovery then waits a full retransmit second. Wait, bounded, until all are UP.
links=("$ns_cli eth0" "$ns_gw c0" "$ns_gw br0")
for ((i = 1; i <= rs_count; i++)); do links+=("${prefix}-rs$i eth0" "$ns_gw r$i"); done
for ((try = 0; ; try++)); do
  down=""
  for l in "${links[@]}"; do
    read -r ns dev <<<"$l"
    ip -n "$ns" -o link show dev "$dev" | grep -q "state UP" || down="$ns/$dev"
  done
  [[ -z "$down" ]] && break
  if ((try >= 50)); then
    echo "up.sh: $down did not reach operstate UP within 5 s" >&2
    false
  fi
  sleep 0.1
done

trap - ERR
printf '%s\n' "${env_lines[@]}"
if [[ -n "$env_file" ]]; then
  printf '%s\n' "${env_lines[@]}" >"$env_file"
fi
echo "up.sh: topology ${prefix} ready (cli, gw, ${rs_count} real servers)" >&2
