#!/usr/bin/env bash
# The one test command (README, CI): installs what it needs, runs the static gates (fmt, lint, check), then
# every test — unit, fixture, mutation and the end-to-end runs in network namespaces — and prints a
# closing "N passed, N failed" line. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
bash netns-scripts/setup-host.sh
D=node_modules/.bin/deno

echo "== deno fmt --check / lint / check"
"$D" fmt --check
"$D" lint
"$D" check mod.ts

echo "== deno test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# One module at a time (no --parallel: Deno reads `--parallel=false` as --parallel): the end-to-end tests
# load the 2 CPUs with floods and transfers, and the process environment (NOTIFY_SOCKET) is shared.
"$D" test -A "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1 || true)
passed=$(sed -nE 's/.*\| ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$summary")
ignored=$(sed -nE 's/.*\| ([0-9]+) ignored.*/\1/p' <<<"$summary")
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${ignored:-0} skipped"

# Nothing a test started may outlive it.
left_ns=$(ip netns list 2>/dev/null | grep -c '^lbt' || true)
if [ "$left_ns" -gt 0 ]; then
  echo "tests: $left_ns test network namespace(s) left behind" >&2
  rc=1
fi
exit "$rc"
