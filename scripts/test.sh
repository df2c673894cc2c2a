#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and contract tests, and the integration tests
# (real HTTP, SQLite and Postgres), then the contract smoke check against the release binary.
#
# Needs Postgres on 127.0.0.1:5432 (trust auth, user postgres) or LATCHKEY_TEST_POSTGRES_URL
# pointing at a server where the user may create databases. Without it the run fails: the
# Postgres half of the suite is not optional.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! psql "$admin_url" -Atqc 'select 1' >/dev/null 2>&1; then
    echo "error: Postgres is not reachable at $admin_url; the test suite needs it" >&2
    exit 1
fi
# Each test makes its own database (and SQLite directory) and leaves it behind: a test
# process has no hook at exit. Drop them before the run (leftovers of an interrupted one) and
# after it, so repeated runs do not fill the disk. Databases in use are left alone.
drop_test_databases() {
    psql "$admin_url" -Atqc "select datname from pg_database where datname like 'latchkey_test_%'" \
        | while read -r db; do psql "$admin_url" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true; done
    find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'latchkey_test_*' -mmin +5 -exec rm -rf {} + 2>/dev/null || true
}
drop_test_databases
trap drop_test_databases EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== npm packages of tests/upstream (node-oidc-provider, a real upstream for tests/it)"
bash tests/upstream/install.sh
echo "== unit, contract and integration tests"
cargo test --all-targets -- --test-threads="${LATCHKEY_TEST_THREADS:-4}"
echo "== fuzz targets (bounded run on the committed seed corpus; fails on any crash)"
bash fuzz/run.sh "${LATCHKEY_FUZZ_SECONDS:-15}"
echo "== contract smoke check (release binary, SQLite then Postgres)"
cargo build --release --quiet
smoke="${LATCHKEY_SMOKE:-../shared/contract_smoke.py}"
python3 "$smoke" target/release/latchkey
smoke_db="latchkey_test_smoke_$$"
psql "$admin_url" -qc "create database $smoke_db" >/dev/null
LATCHKEY_DATABASE_URL="${admin_url%/*}/$smoke_db" python3 "$smoke" target/release/latchkey
echo "== admin API against its OpenAPI document (schemathesis, SQLite then Postgres)"
bash scripts/openapi_fuzz.sh target/release/latchkey
bash tests/interop/run.sh
echo "== benchmark smoke (every bench/ scenario runs briefly and reports; targets are not checked)"
bash bench/run.sh --smoke
