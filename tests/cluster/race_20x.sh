#!/usr/bin/env bash
# Runs the cluster race scenarios (tests/it/cluster.rs, `cluster::race_*`: 100 concurrent
# redemptions of one code, 50 concurrent refreshes of one refresh token, each spread over three
# `latchkey serve` processes on one Postgres database) N times in a row (default 20), and stops
# at the first failure with its output.
#
#   tests/cluster/race_20x.sh [N]
#
# Needs what scripts/test.sh needs: Postgres on 127.0.0.1:5432 (trust auth, user postgres) or
# LATCHKEY_TEST_POSTGRES_URL.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs="${1:-20}"
echo "== building the integration tests"
cargo test --test it --no-run --quiet
log="$(mktemp -t latchkey-race-XXXXXX.log)"
started=$(date +%s)
for i in $(seq 1 "$runs"); do
    if ! cargo test --quiet --test it cluster::race -- --test-threads=1 >"$log" 2>&1; then
        echo "run $i/$runs FAILED; its output:" >&2
        cat "$log" >&2
        exit 1
    fi
    passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -1)
    if [ "${passed%% *}" -lt 2 ]; then
        echo "run $i/$runs ran fewer race tests than expected ($passed):" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "run $i/$runs ok ($passed)"
done
rm -f "$log"
echo "$runs passed, 0 failed ($(( $(date +%s) - started )) s)"
