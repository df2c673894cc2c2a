#!/usr/bin/env bash
# Postgres failover under load: two Postgres instances with synchronous streaming replication
# managed by Patroni (etcd as its store), HAProxy in front routing to the primary by Patroni's
# REST health check, three `latchkey serve` nodes (the release binary) on HAProxy, and a load
# driver (driver.py) that records every answer. Two scenarios:
#
#   1. crash: the primary's Patroni is killed (SIGKILL) and its Postgres shut down
#      immediately (SIGQUIT: no checkpoint, like a crash); the replica takes over when the
#      leader key expires;
#   2. switchover: the crashed member rejoins as a replica, then `patronictl switchover`.
#
# Everything runs on 127.0.0.1 under a temporary directory, on ports the kernel picks; the
# shared Postgres on 5432 is not touched. Everything started here is stopped on exit, failure
# included. Exits non-zero on any violation (driver.py lists what it checks).
#
#   bash tests/failover/run.sh              # both scenarios
#   bash tests/failover/run.sh crash        # one of them (crash, switchover)
#   FAILOVER_KEEP=1 bash tests/failover/run.sh   # keep the temporary directory (logs)
#   LATCHKEY_BIN=/path/to/latchkey bash tests/failover/run.sh   # another release binary
#
# Needs root to install missing packages (patroni etcd-server etcd-client haproxy) with
# apt-get; Postgres' own server programs come from Debian's `postgresql` package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The release binary of this checkout, or LATCHKEY_BIN (for example one built from the same
# commit in another checkout).
bin="${LATCHKEY_BIN:-$root/target/release/latchkey}"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(crash switchover)

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
log() { echo "failover: $(date -u +%H:%M:%S) $*"; }
die() { echo "failover: error: $*" >&2; exit 1; }
started_at=$(date +%s)

# --- packages --------------------------------------------------------------------------------
need_apt=()
command -v patroni >/dev/null 2>&1 || need_apt+=(patroni)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages (${need_apt[*]}); install them or run as root"
    log "installing ${need_apt[*]}"
    # Debian starts no services in containers (policy-rc.d); elsewhere the packaged etcd and
    # haproxy services may start, on their default ports, which this script does not use.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
pg_bin="${LATCHKEY_TEST_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)}"
[ -x "$pg_bin/postgres" ] || die "no Postgres server programs in $pg_bin"
if [ ! -x "$bin" ]; then
    [ -z "${LATCHKEY_BIN:-}" ] || die "LATCHKEY_BIN=$LATCHKEY_BIN is not an executable"
    log "building the release binary"
    (cd "$root" && cargo build --release --quiet --bin latchkey)
fi

# Postgres refuses to run as root: as root, Postgres, Patroni, etcd and HAProxy run as
# `postgres` (the Debian package creates that user).
as_pg=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the postgres user (Debian's postgresql package creates it)"
    as_pg=(runuser -u postgres --)
fi

# --- the temporary directory and teardown ----------------------------------------------------
work="$(mktemp -d -t latchkey-failover-XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
pids=()         # every process started here (each the leader of its own process group)
cleanup() {
    local rc=$?
    set +e
    # Last started first: the Latchkey nodes, HAProxy, Patroni (which stops its Postgres),
    # etcd; each given up to 10 s.
    local i pid
    for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
        pid="${pids[$i]}"
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM -- "-$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null
    done
    # Postgres instances whose Patroni was killed are not in a process group of ours any more.
    for data in "$work"/pg*/data; do
        [ -f "$data/postmaster.pid" ] || continue
        pm="$(head -n1 "$data/postmaster.pid")"
        kill -QUIT "$pm" 2>/dev/null
    done
    sleep 0.5
    if [ "$rc" -ne 0 ] || [ "${FAILOVER_KEEP:-}" = 1 ]; then
        log "logs kept in $work"
        for f in "$work"/*.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $f"; tail -n 15 "$f"
        done
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background in a new session (so teardown can signal its whole group),
# output to the log file $1.
spawn() {
    local out="$1"; shift
    setsid "$@" >"$out" 2>&1 < /dev/null &
    pids+=("$!")
    last_pid=$!
    disown "$last_pid"   # no "Killed" notices from bash when the crash scenario kills one
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {   # SECONDS DESCRIPTION COMMAND...
    local limit="$1" what="$2"; shift 2
    local deadline=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$what: not after ${limit} s"
        sleep 0.3
    done
}

# --- etcd ------------------------------------------------------------------------------------
etcd_port="$(free_port)"; etcd_peer="$(free_port)"
log "etcd on 127.0.0.1:$etcd_port; work directory $work"
spawn "$work/etcd.log" "${as_pg[@]}" etcd --name failover --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "failover=http://127.0.0.1:$etcd_peer" --initial-cluster-state new
wait_for 30 "etcd" etcdctl --endpoints "http://127.0.0.1:$etcd_port" endpoint health

# --- Patroni and Postgres --------------------------------------------------------------------
members=(pg1 pg2)
declare -A pg_port rest_port member_pid
for m in "${members[@]}"; do
    pg_port[$m]="$(free_port)"; rest_port[$m]="$(free_port)"
    mkdir -p "$work/$m"
    # ttl 20 s is Patroni's minimum: a crashed primary's leader key expires within it and the
    # synchronous standby takes over. synchronous_mode: a commit is acknowledged only once the
    # standby has flushed it, and only the synchronous standby may be promoted, so nothing
    # acknowledged is lost; with one member left Patroni lets the primary run alone.
    # fsync off: the crash here is a process crash, not a power loss, so the page cache
    # survives it; the test machine's disk is slow and shared.
    cat > "$work/$m/patroni.yml" <<YAML
scope: latchkey-failover
name: $m
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${rest_port[$m]}
  connect_address: 127.0.0.1:${rest_port[$m]}
etcd3:
  hosts: 127.0.0.1:$etcd_port
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    synchronous_mode: true
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      parameters:
        max_connections: 100
        max_wal_senders: 5
        max_replication_slots: 5
        wal_log_hints: "on"
        fsync: "off"
        full_page_writes: "on"
        shared_buffers: 32MB
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pg_port[$m]}
  connect_address: 127.0.0.1:${pg_port[$m]}
  data_dir: $work/$m/data
  bin_dir: $pg_bin
  pgpass: $work/$m/pgpass
  authentication:
    superuser:
      username: postgres
      password: failover
    replication:
      username: replicator
      password: failover
  parameters:
    unix_socket_directories: $work/$m
YAML
done
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

start_member() {   # NAME
    spawn "$work/$1.log" "${as_pg[@]}" patroni "$work/$1/patroni.yml"
    member_pid[$1]=$last_pid
}
patronictl_() { patronictl -c "$work/pg1/patroni.yml" "$@"; }
# True when the cluster has a leader and a streaming synchronous standby.
cluster_healthy() {
    patronictl_ list -f json 2>/dev/null | python3 -c '
import json, sys
ms = json.load(sys.stdin)
roles = sorted(m["Role"] for m in ms if m["State"] in ("running", "streaming"))
sys.exit(0 if roles == ["Leader", "Sync Standby"] else 1)'
}

log "Patroni: ${members[*]} (Postgres ports ${pg_port[pg1]}, ${pg_port[pg2]}; REST ${rest_port[pg1]}, ${rest_port[pg2]})"
start_member pg1
wait_for 60 "pg1 the leader" curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${rest_port[pg1]}/primary"
start_member pg2
wait_for 90 "a leader and a synchronous standby" cluster_healthy

# --- HAProxy ---------------------------------------------------------------------------------
haproxy_port="$(free_port)"
# Routes to whichever member answers 200 on Patroni's /primary. When a member is marked down
# its open sessions are cut, so no node keeps talking to a demoted primary.
cat > "$work/haproxy.cfg" <<CFG
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 2s
listen primary
    bind 127.0.0.1:$haproxy_port
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fastinter 500ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server pg1 127.0.0.1:${pg_port[pg1]} check port ${rest_port[pg1]}
    server pg2 127.0.0.1:${pg_port[pg2]} check port ${rest_port[pg2]}
CFG
[ "$(id -u)" = 0 ] && chown postgres: "$work/haproxy.cfg"
log "HAProxy on 127.0.0.1:$haproxy_port"
spawn "$work/haproxy.log" "${as_pg[@]}" haproxy -db -f "$work/haproxy.cfg"
# HAProxy starts with every server up until its checks say otherwise: wait until five
# connections in a row (round robin) reach the primary, not the standby.
primary_only() {
    local i
    for i in 1 2 3 4 5; do
        [ "$(psql -h 127.0.0.1 -p "$haproxy_port" -U postgres -d postgres -Atqc 'select pg_is_in_recovery()')" = f ] || return 1
    done
}
wait_for 30 "HAProxy routing to the primary only" primary_only
psql -h 127.0.0.1 -p "$haproxy_port" -U postgres -d postgres -qc 'create database latchkey' >/dev/null
database_url="postgres://postgres@127.0.0.1:$haproxy_port/latchkey"
# A check of the check: FAILOVER_SYNCHRONOUS_COMMIT=off makes every commit of the database
# relaxed (what the login flow's writes used to be), and the crash scenario must then report
# lost codes, consents or rotations.
if [ -n "${FAILOVER_SYNCHRONOUS_COMMIT:-}" ]; then
    log "synchronous_commit = $FAILOVER_SYNCHRONOUS_COMMIT for the whole database (a self-check: expect losses)"
    psql -h 127.0.0.1 -p "$haproxy_port" -U postgres -d postgres -qc \
        "alter database latchkey set synchronous_commit = '$FAILOVER_SYNCHRONOUS_COMMIT'" >/dev/null
fi

# --- three Latchkey nodes ----------------------------------------------------------------------
issuer="http://localhost:8443"
admin_token="failover-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
master_key="$(head -c 32 /dev/urandom | base64)"
node_urls=()
start_node() {   # INDEX
    local port; port="$(free_port)"
    mkdir -p "$work/node$1"
    # An empty directory, so no config/latchkey.toml of the work tree is picked up.
    spawn "$work/node$1.log" env -C "$work/node$1" \
        LATCHKEY_ISSUER="$issuer" LATCHKEY_LISTEN="127.0.0.1:$port" \
        LATCHKEY_DATABASE_URL="$database_url" LATCHKEY_MASTER_KEY="$master_key" \
        LATCHKEY_ADMIN_TOKEN="$admin_token" LATCHKEY_DATABASE_MAX_CONNECTIONS=8 \
        LATCHKEY_CODE_TTL=600 LATCHKEY_LOG_FORMAT=json LATCHKEY_LOG=info NO_COLOR=1 \
        "$bin" serve
    node_urls+=("http://127.0.0.1:$port")
    wait_for 60 "latchkey node $1 ready" curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz"
}
start_node 1   # applies the migrations and creates the signing keys
start_node 2
start_node 3
log "latchkey nodes: ${node_urls[*]}"

# --- the scenarios ---------------------------------------------------------------------------
write_topology() {
    python3 - "$work/topology.json" <<PY
import json, sys
json.dump({
    "issuer": "$issuer",
    "admin_token": "$admin_token",
    "nodes": "${node_urls[*]}".split(),
    "database_url": "$database_url",
    "patronictl": ["patronictl", "-c", "$work/pg1/patroni.yml"],
    "members": {
        "pg1": {"rest": ${rest_port[pg1]}, "data": "$work/pg1/data", "patroni_pid": ${member_pid[pg1]}},
        "pg2": {"rest": ${rest_port[pg2]}, "data": "$work/pg2/data", "patroni_pid": ${member_pid[pg2]}},
    },
}, open(sys.argv[1], "w"), indent=1)
PY
}

results=()
failed=0
for scenario in "${scenarios[@]}"; do
    case "$scenario" in crash|switchover) ;; *) die "unknown scenario '$scenario' (crash, switchover)" ;; esac
    if ! cluster_healthy; then
        # The member crashed by the previous scenario rejoins as a replica (pg_rewind).
        for m in "${members[@]}"; do
            curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${rest_port[$m]}/health" 2>/dev/null \
                || kill -0 "${member_pid[$m]}" 2>/dev/null || { log "restarting $m"; start_member "$m"; }
        done
        wait_for 120 "the cluster healthy again (leader and synchronous standby)" cluster_healthy
    fi
    write_topology
    log "== scenario $scenario"
    rc=0
    # The driver bounds every request (10 s) and phase; the limit here is a last resort.
    timeout -k 10 300 python3 "$here/driver.py" --topology "$work/topology.json" --scenario "$scenario" \
        --report "$work/$scenario.json" || rc=$?
    if [ "$rc" -eq 0 ]; then results+=("$scenario: passed"); else results+=("$scenario: FAILED"); failed=1; fi
done

echo
echo "failover summary ($(( $(date +%s) - started_at )) s in all):"
for r in "${results[@]}"; do echo "  $r"; done
[ "$failed" -eq 0 ]
