#!/usr/bin/env bash
# Latchkey's benchmark, in one command (see bench/README.md):
#
#   bash bench/run.sh            # full run: 3 x 10 s per scenario, 5-minute soak; writes bench/RESULTS.md
#   bash bench/run.sh --smoke    # CI smoke: 2 s per scenario, one run, no soak; fails on any error
#   bash bench/run.sh --scale    # empty vs preloaded database (1M users, 1M families, 5M events);
#                                # writes bench/RESULTS-scale.md, fails when a target is missed
#
# Any other flag goes to bench/lib/bench.py (--duration, --runs, --soak, --only, ...; --help).
#
# It builds Latchkey (release) and the axum ceiling (bench/ceiling, sharing target/), installs
# node-oidc-provider from bench/peers/package-lock.json, installs wrk from Debian when it is
# missing, then runs the harness. Needs Postgres on 127.0.0.1:5432 (user postgres, trust) or
# LATCHKEY_TEST_POSTGRES_URL, like scripts/test.sh. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { echo "[bench] $*"; }

# --- load generator: wrk (Debian package), with its LuaJIT scripting.
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
fi

# --- DPoP proofs for the client_credentials_dpop scenario are signed in Python
# (bench/lib/latchkey_flow.py) with the cryptography package (Debian package).
if ! python3 -c 'import cryptography' >/dev/null 2>&1; then
    say "installing python3-cryptography"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null
    fi
fi

# --- Postgres must answer, as for the test suite.
admin_url="${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! psql "$admin_url" -Atqc 'select 1' >/dev/null 2>&1; then
    echo "error: Postgres is not reachable at $admin_url; the benchmark needs it" >&2
    exit 1
fi

# --- builds. The ceiling shares target/ so that its dependencies (same versions as
# Latchkey's, see bench/ceiling/Cargo.lock) are compiled once.
say "building Latchkey (release)"
cargo build --release --quiet
# The ceiling binary also mints the client keys and assertions of the private_key_jwt
# scenarios, so every mode builds it.
say "building the ceiling (bench/ceiling)"
CARGO_TARGET_DIR="$root/target" cargo build --release --quiet --locked \
    --manifest-path bench/ceiling/Cargo.toml
# The scale run (--scale) compares Latchkey with itself: no ceiling server, no
# node-oidc-provider.
scale=false
for arg in "$@"; do [ "$arg" = "--scale" ] && scale=true; done
if ! $scale; then

    # --- node-oidc-provider, exactly as pinned by the lock file.
    node_bin=$(command -v node || true)
    if [ -z "$node_bin" ]; then
        echo "error: node is not installed; the benchmark runs node-oidc-provider beside Latchkey" >&2
        exit 1
    fi
    stamp=bench/peers/node_modules/.bench-lock-stamp
    if [ ! -f "$stamp" ] || ! cmp -s bench/peers/package-lock.json "$stamp"; then
        say "installing node-oidc-provider (npm ci)"
        (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
        cp bench/peers/package-lock.json "$stamp"
    fi
fi

say "running the harness"
exec python3 bench/lib/bench.py --command "bash bench/run.sh${*:+ $*}" "$@"
