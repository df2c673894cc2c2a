#!/usr/bin/env bash
# The admin API against its own OpenAPI document: starts `latchkey serve` (SQLite, then
# Postgres), reads GET /admin/openapi.json with the admin token, and lets schemathesis
# generate requests for every operation from it. It fails on any 5xx, on an answer whose
# status the document does not list, on a wrong Content-Type, and on a body that does not
# match its schema. Bounded: a fixed number of cases per operation, a fixed seed (the same
# cases every run), and a time limit per backend.
#
#   bash scripts/openapi_fuzz.sh --install        # install the pinned schemathesis only
#   bash scripts/openapi_fuzz.sh [BINARY]         # default target/release/latchkey
#
# Environment: LATCHKEY_TEST_POSTGRES_URL (as scripts/test.sh), LATCHKEY_OPENAPI_EXAMPLES
# (cases per operation, default 25), LATCHKEY_SCHEMATHESIS_VENV (where it is installed).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: a newer schemathesis may generate other cases or add checks.
SCHEMATHESIS_VERSION=4.32.5
venv="${LATCHKEY_SCHEMATHESIS_VENV:-target/schemathesis-$SCHEMATHESIS_VERSION}"

install() {
    if [ ! -x "$venv/bin/schemathesis" ]; then
        echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
    fi
}

if [ "${1:-}" = "--install" ]; then
    install
    exit 0
fi
install

binary="${1:-target/release/latchkey}"
admin_url="${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
examples="${LATCHKEY_OPENAPI_EXAMPLES:-25}"
work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-openapi-XXXXXX")"
server_pid=""

stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fuzz NAME DATABASE_URL
fuzz() {
    local name="$1" database="$2"
    local port token base
    port="$(free_port)"
    token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    base="http://127.0.0.1:$port"
    LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_ISSUER="$base" LATCHKEY_ADMIN_TOKEN="$token" \
        LATCHKEY_MASTER_KEY="$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')" \
        LATCHKEY_DATABASE_URL="$database" \
        "$binary" serve >"$work/$name-server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.05
    done
    curl -fs -H "Authorization: Bearer $token" "$base/admin/openapi.json" >"$work/openapi.json"
    echo "-- $name: $(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(len(d["paths"]), "paths, OpenAPI", d["openapi"])' "$work/openapi.json")"
    local status=0
    timeout 300 "$venv/bin/schemathesis" run "$work/openapi.json" \
        --url "$base" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples "$examples" \
        --seed 20261205 \
        --workers 2 \
        --request-timeout 10 \
        --suppress-health-check all \
        --no-color || status=$?
    stop_server
    if [ "$status" -ne 0 ]; then
        echo "error: schemathesis found problems on $name (server log: $work/$name-server.log)" >&2
        tail -n 20 "$work/$name-server.log" >&2
        trap - EXIT
        exit "$status"
    fi
}

fuzz sqlite "sqlite://$work/openapi.db"
database="latchkey_test_openapi_$$"
psql "$admin_url" -qc "create database $database" >/dev/null
fuzz postgres "${admin_url%/*}/$database"
psql "$admin_url" -qc "drop database if exists $database" >/dev/null 2>&1 || true
echo "OpenAPI fuzzing: no problems on SQLite and Postgres"
