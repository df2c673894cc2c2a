#!/usr/bin/env bash
# Interop suites: real relying-party libraries (openid-client for Node, authlib for Python,
# oidc-client-ts in Chromium) against a Latchkey server on a fresh Postgres database.
#
#   bash tests/interop/run.sh              # all seven suites
#   bash tests/interop/run.sh node spa     # only some of them (node, python, spa, backchannel, passkey, pages, mail)
#
# The passkey suite (Chromium with a WebAuthn virtual authenticator) needs an issuer whose
# host is a domain name, so it gets a second server over the same database with the issuer
# http://localhost:PORT; its screenshots are also written to docs/screenshots/. The mail suite
# (password reset, sign-up and email verification in Chromium, back to the SPA) and the pages
# around mail in the pages suite get a third server that sends its mail to a real SMTP server
# (tests/mail/smtp_sink.py, aiosmtpd), allows sign-up and requires a verified address; their
# screenshots go there too.
#
# Expects target/release/latchkey (scripts/test.sh builds it) and the dependencies that
# tests/interop/install.sh installs. Needs Postgres (LATCHKEY_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/postgres). Every wait is bounded; all traffic stays on
# 127.0.0.1. Prints `interop: N passed, M failed` (test cases) last and exits non-zero when
# anything failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# INTEROP_BIN runs another build (a debug binary while developing).
bin="${INTEROP_BIN:-$root/target/release/latchkey}"
artifacts="$here/artifacts"
admin_url="${LATCHKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

suites=("$@")
# backchannel runs before passkey: once Ada has a passkey, her password alone no longer signs in.
[ ${#suites[@]} -gt 0 ] || suites=(node python spa backchannel passkey pages mail)

# Loopback traffic never goes through a proxy, whatever the environment says.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

log() { echo "interop: $*"; }
die() { echo "interop: error: $*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin is missing; build it with 'cargo build --release'"
mkdir -p "$artifacts"

# A free loopback port (the kernel picks one; the tiny race until the server binds is fine here).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- a fresh database --------------------------------------------------------------------
db="latchkey_test_interop_$$"
psql "$admin_url" -Atqc 'select 1' >/dev/null 2>&1 || die "Postgres is not reachable at $admin_url"
psql "$admin_url" -qc "create database $db" >/dev/null
database_url="${admin_url%/*}/$db"

server_pid=""
passkey_pid=""
mail_pid=""
sink_pid=""
workdir="$(mktemp -d)"
stop_server() {   # PID
    local pid="$1"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    local rc=$?
    stop_server "$passkey_pid"
    stop_server "$mail_pid"
    stop_server "$sink_pid"
    stop_server "$server_pid"
    timeout 60 psql "$admin_url" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    rm -rf "$workdir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the server ------------------------------------------------------------------------------
port="$(free_port)"
issuer="http://127.0.0.1:$port"
admin_token="interop-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
# Both servers (see the passkey suite) share the database, so they share the master key.
master_key="$(head -c 32 /dev/urandom | base64)"
server_log="$artifacts/server.log"
log "starting latchkey at $issuer (database $db, log $server_log)"
# Run from an empty directory so no config/latchkey.toml or data/ of the work tree is picked up.
(
    cd "$workdir"
    LATCHKEY_ISSUER="$issuer" \
    LATCHKEY_LISTEN="127.0.0.1:$port" \
    LATCHKEY_DATABASE_URL="$database_url" \
    LATCHKEY_MASTER_KEY="$master_key" \
    LATCHKEY_ADMIN_TOKEN="$admin_token" \
    LATCHKEY_REGISTRATION_TRUSTED_HOSTS=127.0.0.1 \
    LATCHKEY_LOG="${LATCHKEY_LOG:-info}" NO_COLOR=1 \
    exec "$bin" serve
) >"$server_log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 150); do   # at most ~30 s
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -n 20 "$server_log" >&2
        die "latchkey exited during start-up"
    fi
    if curl -fsS -o /dev/null --max-time 2 "$issuer/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.2
done
[ -n "$ready" ] || { tail -n 20 "$server_log" >&2; die "latchkey not ready after 30 s"; }

# --- clients and a user, through the admin API -------------------------------------------------
admin_post() {   # PATH JSON -> response body on stdout (fails unless 201)
    local out status
    out="$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST "$issuer/admin$1" \
        -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' -d "$2")"
    status="${out##*$'\n'}"
    out="${out%$'\n'*}"
    [ "$status" = 201 ] || die "POST /admin$1 answered $status: $out"
    printf '%s' "$out"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

spa_port="$(free_port)"
# Redirect URIs of the server-side suites are never dereferenced: the tests read the code
# from the Location header of the redirect. The SPA's backend stub (spa/backend.mjs) receives
# back-channel logouts on loopback, which LATCHKEY_REGISTRATION_TRUSTED_HOSTS allows.
rp_redirect="http://127.0.0.1:9/callback"
scope="openid profile email offline_access interop.read"

node_client="$(admin_post /clients "{
  \"client_name\": \"Interop openid-client (Node)\",
  \"redirect_uris\": [\"$rp_redirect\"],
  \"grant_types\": [\"authorization_code\", \"refresh_token\", \"client_credentials\"],
  \"response_types\": [\"code\"],
  \"token_endpoint_auth_method\": \"client_secret_basic\",
  \"scope\": \"$scope\"}")"
py_basic_client="$(admin_post /clients "{
  \"client_name\": \"Interop authlib basic (Python)\",
  \"redirect_uris\": [\"$rp_redirect\"],
  \"grant_types\": [\"authorization_code\", \"refresh_token\", \"client_credentials\"],
  \"response_types\": [\"code\"],
  \"token_endpoint_auth_method\": \"client_secret_basic\",
  \"scope\": \"$scope\"}")"
py_post_client="$(admin_post /clients "{
  \"client_name\": \"Interop authlib post (Python)\",
  \"redirect_uris\": [\"$rp_redirect\"],
  \"grant_types\": [\"authorization_code\", \"refresh_token\", \"client_credentials\"],
  \"response_types\": [\"code\"],
  \"token_endpoint_auth_method\": \"client_secret_post\",
  \"scope\": \"$scope\"}")"
spa_client="$(admin_post /clients "{
  \"client_name\": \"Interop SPA (oidc-client-ts)\",
  \"redirect_uris\": [\"http://127.0.0.1:$spa_port/callback.html\", \"http://127.0.0.1:$spa_port/form_post_callback\"],
  \"post_logout_redirect_uris\": [\"http://127.0.0.1:$spa_port/index.html\"],
  \"backchannel_logout_uri\": \"http://127.0.0.1:$spa_port/backchannel-logout\",
  \"backchannel_logout_session_required\": true,
  \"grant_types\": [\"authorization_code\", \"refresh_token\"],
  \"response_types\": [\"code\"],
  \"token_endpoint_auth_method\": \"none\",
  \"scope\": \"openid profile email offline_access\"}")"

username="ada"
password="interop $(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
user="$(admin_post /users "{
  \"username\": \"$username\", \"password\": \"$password\",
  \"email\": \"ada@example.test\", \"email_verified\": true,
  \"name\": \"Ada Lovelace\", \"given_name\": \"Ada\", \"family_name\": \"Lovelace\"}")"

export INTEROP_ISSUER="$issuer"
# The client-protocol tests register clients of their own (keys they generate, a device).
export INTEROP_ADMIN_TOKEN="$admin_token"
export INTEROP_USERNAME="$username" INTEROP_PASSWORD="$password"
export INTEROP_USER_SUB="$(json_field sub <<<"$user")"
export INTEROP_USER_NAME="Ada Lovelace" INTEROP_USER_EMAIL="ada@example.test"
export INTEROP_REDIRECT_URI="$rp_redirect"
export INTEROP_NODE_CLIENT_ID="$(json_field client_id <<<"$node_client")"
export INTEROP_NODE_CLIENT_SECRET="$(json_field client_secret <<<"$node_client")"
export INTEROP_PY_BASIC_CLIENT_ID="$(json_field client_id <<<"$py_basic_client")"
export INTEROP_PY_BASIC_CLIENT_SECRET="$(json_field client_secret <<<"$py_basic_client")"
export INTEROP_PY_POST_CLIENT_ID="$(json_field client_id <<<"$py_post_client")"
export INTEROP_PY_POST_CLIENT_SECRET="$(json_field client_secret <<<"$py_post_client")"
export INTEROP_SPA_CLIENT_ID="$(json_field client_id <<<"$spa_client")"
export INTEROP_SPA_PORT="$spa_port"
export INTEROP_ARTIFACTS="$artifacts"
# Hold the server for manual poking: INTEROP_HOLD=1 bash tests/interop/run.sh none
if [ "${INTEROP_HOLD:-}" = 1 ]; then
    export -p | grep ' INTEROP_' > "$artifacts/env.sh"
    log "holding; environment in $artifacts/env.sh; Ctrl-C to stop"
    wait "$server_pid"
fi

# A second server over the same database whose issuer is http://localhost:PORT: WebAuthn
# relying-party ids are domain names, so the passkey suite cannot use the 127.0.0.1 issuer.
passkey_issuer=""
start_passkey_server() {
    local port
    port="$(free_port)"
    passkey_issuer="http://localhost:$port"
    log "starting a second latchkey at $passkey_issuer for the passkey suite"
    (
        cd "$workdir"
        LATCHKEY_ISSUER="$passkey_issuer" \
        LATCHKEY_LISTEN="127.0.0.1:$port" \
        LATCHKEY_DATABASE_URL="$database_url" \
        LATCHKEY_MASTER_KEY="$master_key" \
        LATCHKEY_ADMIN_TOKEN="$admin_token" \
        LATCHKEY_LOG="${LATCHKEY_LOG:-info}" NO_COLOR=1 \
        exec "$bin" serve
    ) >"$artifacts/server-passkey.log" 2>&1 &
    passkey_pid=$!
    for _ in $(seq 150); do
        if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null; then return 0; fi
        kill -0 "$passkey_pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$artifacts/server-passkey.log" >&2
    die "the passkey suite's latchkey did not get ready"
}

# A third server over the same database for the mail suite and the pages around mail: mail
# goes to a real SMTP server on a loopback port (aiosmtpd; each message a JSON file in
# $workdir/mail), sign-up is on, and a login waits for a verified address. Started once.
mail_issuer=""
start_mail_server() {
    [ -z "$mail_issuer" ] || return 0
    local port smtp_port python=/usr/bin/python3
    "$python" -c 'import aiosmtpd' 2>/dev/null || python=python3
    mkdir -p "$workdir/mail"
    "$python" "$root/tests/mail/smtp_sink.py" "$workdir/mail" --forever >"$workdir/smtp.port" </dev/null &
    sink_pid=$!
    smtp_port=""
    for _ in $(seq 100); do
        smtp_port="$(head -n1 "$workdir/smtp.port" 2>/dev/null || true)"
        [ -n "$smtp_port" ] && break
        kill -0 "$sink_pid" 2>/dev/null || break
        sleep 0.2
    done
    [ -n "$smtp_port" ] || die "the SMTP sink did not start (python3-aiosmtpd installed?)"
    port="$(free_port)"
    mail_issuer="http://127.0.0.1:$port"
    log "starting a third latchkey at $mail_issuer for the mail suite (SMTP sink on port $smtp_port)"
    (
        cd "$workdir"
        LATCHKEY_ISSUER="$mail_issuer" \
        LATCHKEY_LISTEN="127.0.0.1:$port" \
        LATCHKEY_DATABASE_URL="$database_url" \
        LATCHKEY_MASTER_KEY="$master_key" \
        LATCHKEY_ADMIN_TOKEN="$admin_token" \
        LATCHKEY_SMTP_URL="smtp://127.0.0.1:$smtp_port" \
        LATCHKEY_EMAIL_FROM="Latchkey <login@latchkey.test>" \
        LATCHKEY_SIGNUP=true \
        LATCHKEY_REQUIRE_VERIFIED_EMAIL=true \
        LATCHKEY_LOG="${LATCHKEY_LOG:-info}" NO_COLOR=1 \
        exec "$bin" serve
    ) >"$artifacts/server-mail.log" 2>&1 &
    mail_pid=$!
    for _ in $(seq 150); do
        if curl -fsS -o /dev/null --max-time 2 "$mail_issuer/readyz" 2>/dev/null; then return 0; fi
        kill -0 "$mail_pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$artifacts/server-mail.log" >&2
    die "the mail suite's latchkey did not get ready"
}

# --- the suites --------------------------------------------------------------------------------
passed=0
failed=0
# Runs one suite with a time limit, tees its output, and adds its test-case counts.
run_suite() {   # NAME DIR LIMIT_SECONDS COMMAND...
    local name="$1" dir="$2" limit="$3"; shift 3
    local out="$artifacts/$name.log" rc=0 p f
    log "== suite $name"
    (cd "$dir" && timeout -k 10 "$limit" "$@") 2>&1 | tee "$out" || rc=$?   # pipefail: the suite's status
    # node --test (TAP or spec reporter) and pytest summaries.
    p="$(grep -aE '^(# |ℹ )pass [0-9]+$' "$out" | tail -n1 | grep -oE '[0-9]+$' || true)"
    f="$(grep -aE '^(# |ℹ )fail [0-9]+$' "$out" | tail -n1 | grep -oE '[0-9]+$' || true)"
    if [ -z "$p" ]; then
        p="$(grep -aoE '[0-9]+ passed' "$out" | tail -n1 | grep -oE '^[0-9]+' || true)"
        f="$(grep -aoE '[0-9]+ (failed|error)' "$out" | awk '{n += $1} END {print n + 0}' || true)"
    fi
    p="${p:-0}"; f="${f:-0}"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # crashed or timed out without reporting a failed test: count the suite itself
        log "suite $name exited with status $rc"
    fi
    log "suite $name: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}

for suite in "${suites[@]}"; do
    case "$suite" in
        node)
            run_suite node "$here/node" 120 node --test --test-concurrency=1 --test-reporter=tap test/ ;;
        python)
            run_suite python "$here/python" 120 .venv/bin/python -m pytest -p no:cacheprovider -q test_authlib.py ;;
        spa)
            run_suite spa "$here/spa" 180 node --test --test-concurrency=1 --test-reporter=tap drive.test.mjs ;;
        backchannel)
            run_suite backchannel "$here/spa" 120 node --test --test-concurrency=1 --test-reporter=tap backchannel.test.mjs ;;
        passkey)
            start_passkey_server
            export INTEROP_PASSKEY_ISSUER="$passkey_issuer" INTEROP_SCREENSHOTS="$root/docs/screenshots"
            run_suite passkey "$here/spa" 180 node --test --test-concurrency=1 --test-reporter=tap passkey.test.mjs ;;
        pages)
            # axe-core over every built-in page, both languages, light and dark (the pages
            # around mail on the mail server); screenshots to docs/screenshots/ too.
            start_mail_server
            run_suite pages "$here/spa" 300 env INTEROP_SCREENSHOTS="$root/docs/screenshots" \
                INTEROP_MAIL_ISSUER="$mail_issuer" INTEROP_MAIL_DIR="$workdir/mail" \
                node --test --test-concurrency=1 --test-reporter=tap pages.test.mjs ;;
        mail)
            start_mail_server
            export INTEROP_MAIL_ISSUER="$mail_issuer" INTEROP_MAIL_DIR="$workdir/mail" INTEROP_SCREENSHOTS="$root/docs/screenshots"
            run_suite mail "$here/spa" 180 node --test --test-concurrency=1 --test-reporter=tap mail.test.mjs ;;
        none) ;;
        *) die "unknown suite '$suite' (node, python, spa, backchannel, passkey, pages, mail)" ;;
    esac
done

if [ "$failed" -ne 0 ]; then
    log "server log (last 30 lines of $server_log):"
    tail -n 30 "$server_log" | sed 's/^/    /'
fi
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
