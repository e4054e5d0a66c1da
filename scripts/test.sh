#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs
# every test once, and ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp /tmp/vpf-vitest.XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$out" "$@"
rc=$?
node scripts/summary.mjs "$out" || rc=1
rm -f "$out"
exit $rc
