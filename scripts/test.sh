#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs
# every test once, and ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
# The offload tier's second kernel (CONFIG_NET_TC_SKB_EXT, for recirculation),
# built once from Debian's source (~16 min on 2 cores) before any test runs, so
# that the build does not compete with them.
bash scripts/kernelvm/deps.sh skbext >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp /tmp/vpf-vitest.XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$out" "$@"
rc=$?
node scripts/summary.mjs "$out" || rc=1
rm -f "$out"
exit $rc
