#!/usr/bin/env bash
# Removes every network namespace named PREFIX-*: first the processes still running in it (TERM, then
# KILL after 3 s), since a process holding the namespace (or a TUN fd in it) would keep its links alive,
# then the namespace itself, which deletes its veths, bridges and TUNs. Idempotent: nothing left is fine.
#
# Usage: down.sh PREFIX
set -uo pipefail

prefix="${1:-}"
# A strict prefix keeps a typo (or an empty variable) from matching namespaces this run did not create.
if [[ ! "$prefix" =~ ^[A-Za-z0-9]{1,16}$ ]]; then
  echo "down.sh: usage: down.sh PREFIX (1-16 letters or digits), got '$prefix'" >&2
  exit 2
fi

mapfile -t namespaces < <(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}-" || true)
[[ ${#namespaces[@]} -eq 0 ]] && exit 0

pids_in() {
  ip netns pids "$1" 2>/dev/null || true
}

for ns in "${namespaces[@]}"; do
  mapfile -t pids < <(pids_in "$ns")
  [[ ${#pids[@]} -gt 0 ]] && kill -TERM "${pids[@]}" 2>/dev/null
done
for ((i = 0; i < 30; i++)); do
  left=0
  for ns in "${namespaces[@]}"; do
    [[ -n "$(pids_in "$ns")" ]] && left=1
  done
  [[ $left -eq 0 ]] && break
  sleep 0.1
done
for ns in "${namespaces[@]}"; do
  mapfile -t pids < <(pids_in "$ns")
  [[ ${#pids[@]} -gt 0 ]] && kill -KILL "${pids[@]}" 2>/dev/null
done

rc=0
for ns in "${namespaces[@]}"; do
  ip netns del "$ns" 2>/dev/null || { ip netns list | awk '{print $1}' | grep -qx "$ns" && rc=1; }
done
if [[ $rc -ne 0 ]]; then
  echo "down.sh: some ${prefix}-* namespaces could not be removed" >&2
fi
exit $rc
