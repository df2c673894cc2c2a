"""bench/run.sh --scale: every scenario on an empty database, then on the same database
preloaded to operator scale, in one invocation, and the ratios between the two.

Postgres is preloaded with generate_series (1,000,000 users, 1,000,000 live refresh-token
families with their grants, 5,000,000 audit events); SQLite, through its own SQL, with
100,000 users, 100,000 families and 500,000 events. The scenarios are bench.py's plus the
admin API's lists (users, clients) and audit-event queries (newest, by kind, by user). The
"empty" twin gets one page of each of those lists (PAGE_SEED), so that both answer alike, and
before each scenario both twins' tables are vacuumed and analyzed where autovacuum would
(`keep_statistics`).

Then, on Postgres, every statement the scenarios run is explained: auto_explain (loaded for
the bench database only, for one short pass at low load) logs each plan to the server log,
and any sequential scan of a large table is reported and fails the run. Last, the bytes per
user, per live family and per audit event (pg_total_relation_size / rows), and the run's
report goes to bench/RESULTS-scale.md (or --out).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import time
import urllib.parse

import bench as b
import latchkey_flow as lf

ADMIN_SCENARIOS = ["admin_users", "admin_clients", "admin_events", "admin_events_by_kind",
                   "admin_events_by_user"]
# Rows preloaded per backend: (users, live families, audit events).
PRELOAD = {"pg": (1_000_000, 1_000_000, 5_000_000), "sqlite": (100_000, 100_000, 500_000)}
# What the empty twin is given by the same preload: one page (the admin scenarios ask for 50
# items) of every list the admin scenarios read, so that both twins answer the same number
# of items and the ratio measures the size of the data, not the length of the answer (an
# empty database has no `login_failed` event to list).
PAGE_SEED = (100, 100, 400)
# A sequential scan of a table with at least this many rows (planner's estimate) on a hot
# path fails the run; on smaller tables it is the planner's right choice.
BIG_ROWS = 10_000
PG_LOG = os.environ.get("LATCHKEY_BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log")
RPS_TARGET, P99_TARGET = 0.8, 1.25


def preload_sql(users: int, families: int, events: int, client_id: str, phc: str, now: int,
                series, pad) -> list[str]:
    """The preload as SQL; `series(n)` is the dialect's `SELECT n FROM <1..=n>` source,
    `pad(expr)` its seven-digit zero-padded text of an integer expression."""
    q = lambda s: s.replace("'", "''")  # noqa: E731
    sub = f"'scale-' || {pad('n')}"
    kinds = ["login_succeeded", "login_failed", "consent_granted", "logout"]
    kind = "CASE n % 4 " + " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(kinds)) + " END"
    ev_sub = f"'scale-' || {pad(f'1 + n % {users}')}"
    return [
        f"INSERT INTO app_user (sub, username, password_hash, claims, disabled, created_at, "
        f"updated_at, password_reset_required) SELECT {sub}, 'scale-user-' || CAST(n AS TEXT), "
        f"'{q(phc)}', '{{}}', FALSE, {now}, {now}, FALSE FROM ({series(users)}) AS s",
        f"INSERT INTO auth_grant (grant_id, client_id, user_sub, scope, created_at, expires_at, "
        f"revoked_at) SELECT 'scale-grant-' || CAST(n AS TEXT), '{client_id}', {sub}, "
        f"'openid offline_access', {now}, {now + 2592000}, NULL FROM ({series(families)}) AS s",
        f"INSERT INTO refresh_family (grant_id, generation, token_hash, client_id, user_sub, "
        f"scope, sid, auth_time, amr, resource, created_at, idle_expires_at, expires_at) "
        f"SELECT 'scale-grant-' || CAST(n AS TEXT), 3, {{HASH}}, '{client_id}', {sub}, "
        f"'openid offline_access', 'scale-sid-' || CAST(n AS TEXT), {now}, 'pwd', NULL, {now}, "
        f"{now + 1209600}, {now + 2592000} FROM ({series(families)}) AS s",
        f"INSERT INTO audit_event (occurred_at, kind, user_sub, client_id, ip, detail) "
        f"SELECT {now} - n % 6912000, {kind}, {ev_sub}, '{client_id}', '127.0.0.1', '{{}}' "
        f"FROM ({series(events)}) AS s",
    ]


SCALE_SUFFIX = "-scale"


class ScaleBench(b.Bench):
    """bench.Bench with two servers per backend, one on an empty and one on a preloaded
    database (the "empty" and "scale" phases), admin scenarios, and the checks.

    Both twins run side by side and every scenario is measured on one and then the other
    (in turn first), run after run: the ratios compare measurements taken a few seconds apart,
    so a machine whose load changes during the run (other work beside the benchmark) moves both
    sides of a ratio alike instead of favouring whichever phase ran when it was quieter."""

    def __init__(self, args):
        super().__init__(args)
        self.pairs: list[tuple[b.Target, b.Target]] = []  # (empty, preloaded) per backend
        self.explained: dict[str, dict] = {}
        self.big_tables: set[str] = set()
        self.explain_note = ""
        self.sizes: dict[str, dict] = {}
        self.preload_s: dict[str, float] = {}
        self.argon2_ms = 0.0  # not measured here: bench.py's full run reports it

    def scenario_env(self, t, scenario, run):
        if scenario not in ADMIN_SCENARIOS:
            return super().scenario_env(t, scenario, run)
        admin = {"BENCH_AUTH": "Bearer " + b.ADMIN_TOKEN}
        sub = urllib.parse.quote(self.latchkey_state[t.name]["sub"], safe="")
        path = {
            "admin_users": "/admin/users?limit=50",
            "admin_clients": "/admin/clients?limit=50",
            "admin_events": "/admin/events?limit=50",
            "admin_events_by_kind": "/admin/events?kind=login_failed&limit=50",
            "admin_events_by_user": f"/admin/events?sub={sub}&limit=50",
        }[scenario]
        return "static.lua", t.base + path, admin

    def measure(self, t, scenario, run, warmup=False):
        row = super().measure(t, scenario, run, warmup)
        if row is not None:
            row["phase"] = "scale" if t.name.endswith(SCALE_SUFFIX) else "empty"
            row["base"] = t.name.removesuffix(SCALE_SUFFIX)
        return row

    # -------------------------------------------------------- preload

    def bench_sub(self, t) -> str:
        if t.pg_db:
            return b.psql("select sub from app_user where username = 'bench-user'", self.pg_url(t))
        with sqlite3.connect(self.sqlite_path(t)) as db:
            return db.execute("select sub from app_user where username = 'bench-user'").fetchone()[0]

    def preloaded(self, t) -> tuple[int, int, int]:
        """Rows to preload for `t`: PRELOAD, times --scale-rows (a fraction, for trying the
        harness out; the report says what was loaded); PAGE_SEED for the empty twin."""
        if not t.name.endswith(SCALE_SUFFIX):
            return PAGE_SEED
        return tuple(max(1, int(n * self.args.scale_rows)) for n in PRELOAD["pg" if t.pg_db else "sqlite"])

    def keep_statistics(self) -> None:
        """Before each scenario, what autovacuum does for a running database, done at the
        same point for both twins: VACUUM ANALYZE of every table past autovacuum's default
        thresholds (dead rows over 50 + 20 % of the table's rows, or changes since the last
        analyze over 50 + 10 %). Without it the statistics of small, busy tables (`throttle`)
        stay those of the moment the preload analyzed them, and the planner reads them by
        sequential scan; and the Postgres this benchmark runs on in CI has autovacuum off.
        SQLite has no autovacuum: its statistics are those of the preload's ANALYZE."""
        due = ("SELECT string_agg(quote_ident(s.relname), ',') FROM pg_stat_user_tables s "
               "JOIN pg_class c ON c.oid = s.relid "
               "WHERE s.n_dead_tup > 50 + 0.2 * GREATEST(c.reltuples, 0) "
               "OR s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0)")
        for empty, full in self.pairs:
            for t in (empty, full):
                if not t.pg_db:
                    continue
                tables = b.psql(due, self.pg_url(t))
                if tables:
                    subprocess.run(["psql", self.pg_url(t), "-v", "ON_ERROR_STOP=1", "-qc",
                                    f"VACUUM ANALYZE {tables}"],
                                   check=True, capture_output=True, text=True, timeout=600)

    def pg_url(self, t) -> str:
        return b.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + t.pg_db

    def sqlite_path(self, t) -> str:
        return t.env["LATCHKEY_DATABASE_URL"].removeprefix("sqlite://")

    def preload(self, t) -> None:
        users, families, events = self.preloaded(t)
        client_id = self.latchkey_state[t.name]["creds"]["client_id"]
        now = int(time.time())
        self.procs.stop(t.proc)
        t0 = time.monotonic()
        if t.pg_db:
            url = self.pg_url(t)
            phc = b.psql("select password_hash from app_user where username = 'bench-user'", url)
            statements = preload_sql(users, families, events, client_id, phc, now,
                                     lambda n: f"SELECT generate_series(1, {n}) AS n",
                                     lambda e: f"lpad(CAST({e} AS TEXT), 7, '0')")
            statements = [s.replace("{HASH}", "decode(md5('a' || n) || md5('b' || n), 'hex')")
                          for s in statements]
            for s in statements + ["VACUUM ANALYZE"]:
                subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc",
                                "SET synchronous_commit = off; " + s if s != "VACUUM ANALYZE" else s],
                               check=True, capture_output=True, text=True, timeout=3600)
        else:
            with sqlite3.connect(self.sqlite_path(t)) as db:
                phc = db.execute("select password_hash from app_user where username = 'bench-user'").fetchone()[0]
                series = lambda n: (f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 "  # noqa: E731
                                    f"FROM c WHERE n < {n}) SELECT n FROM c")
                pad = lambda e: f"substr('0000000' || CAST({e} AS TEXT), -7, 7)"  # noqa: E731
                for s in preload_sql(users, families, events, client_id, phc, now, series, pad):
                    db.execute(s.replace("{HASH}", "randomblob(32)"))
                db.commit()
                db.execute("ANALYZE")
        self.preload_s[t.name] = time.monotonic() - t0
        b.log(f"{t.name}: preloaded {users} users, {families} families, {events} events "
              f"in {self.preload_s[t.name]:.0f} s")
        t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))

    # -------------------------------------------------------- checks

    def explain_hot_statements(self, t, scenarios) -> None:
        """One short pass of every scenario with auto_explain logging every plan of the bench
        database to the server log; records each distinct statement's scans."""
        if not os.access(PG_LOG, os.R_OK):
            self.explain_note = f"not checked: cannot read the Postgres log {PG_LOG} (LATCHKEY_BENCH_PG_LOG)"
            b.log(self.explain_note)
            return
        db = t.pg_db
        settings = {"session_preload_libraries": "'auto_explain'", "auto_explain.log_min_duration": "0",
                    "auto_explain.log_format": "'json'", "auto_explain.log_nested_statements": "on"}
        for k, v in settings.items():
            b.psql(f'ALTER DATABASE "{db}" SET {k} = {v}')
        self.procs.stop(t.proc)
        offset = os.path.getsize(PG_LOG)
        t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))
        quiet = type(self.args)(**vars(self.args))
        quiet.connections, quiet.threads = 2, 1
        saved, self.args = self.args, quiet
        try:
            for s in scenarios:
                script, url, env = self.scenario_env(t, s, 99)
                b.run_wrk(script, url, env, 1, self.args)
        finally:
            self.args = saved
            for k in settings:
                b.psql(f'ALTER DATABASE "{db}" RESET {k}')
            self.procs.stop(t.proc)
            t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))
        with open(PG_LOG, errors="replace") as f:
            f.seek(offset)
            lines = f.read().splitlines()
        marker = f"@{db} LOG:  duration:"
        i = 0
        while i < len(lines):
            if marker in lines[i] and lines[i].rstrip().endswith("plan:"):
                j = i + 1
                body = []
                while j < len(lines) and lines[j].startswith("\t"):
                    body.append(lines[j])
                    j += 1
                i = j
                try:
                    plan = json.loads("\n".join(body))
                except ValueError:
                    continue
                self.record_plan(plan)
            else:
                i += 1
        if not self.explained:
            self.explain_note = "no plan found in the Postgres log (is auto_explain installed?)"
        big = b.psql(f"select relname from pg_class where relkind = 'r' and reltuples >= {BIG_ROWS} "
                     f"and relnamespace = 'public'::regnamespace", self.pg_url(t))
        self.big_tables = set(big.split())

    def record_plan(self, plan: dict) -> None:
        text = " ".join(plan.get("Query Text", "").split())
        scans = set()

        def walk(node):
            kind = node.get("Node Type", "")
            if "Scan" in kind and node.get("Relation Name"):
                scans.add((kind, node["Relation Name"], node.get("Index Name", "")))
            for child in node.get("Plans", []):
                walk(child)
        walk(plan.get("Plan", {}))
        entry = self.explained.setdefault(text, {"scans": set(), "count": 0})
        entry["scans"] |= scans
        entry["count"] += 1

    def seq_scans(self) -> list[tuple[str, str]]:
        return [(rel, text) for text, e in self.explained.items() for (kind, rel, _) in e["scans"]
                if kind == "Seq Scan" and rel in self.big_tables]

    def measure_sizes(self, t) -> None:
        url = self.pg_url(t)
        for table in ("app_user", "auth_grant", "refresh_family", "audit_event"):
            rows = int(b.psql(f"select count(*) from {table}", url))
            size = int(b.psql(f"select pg_total_relation_size('{table}')", url))
            heap = int(b.psql(f"select pg_relation_size('{table}')", url))
            self.sizes[table] = {"rows": rows, "bytes": size, "heap": heap,
                                 "per_row": size / rows if rows else 0}

    # -------------------------------------------------------- main

    def run(self) -> int:
        a = self.args
        scenarios = [s for s in b.SCENARIOS + ADMIN_SCENARIOS if not a.only or s in a.only.split(",")]
        backends = [x for x in a.backends.split(",") if x]
        try:
            for x in backends:
                b.log(f"starting Latchkey on {x}, twice (empty and preloaded)")
                empty, full = self.setup_latchkey(x), self.setup_latchkey(x, SCALE_SUFFIX)
                for t in (empty, full):
                    self.latchkey_state[t.name]["sub"] = self.bench_sub(t)
                    self.targets.append(t)
                    self.preload(t)
                self.pairs.append((empty, full))
            if a.warmup > 0:
                for t in self.targets:
                    for s in scenarios:
                        if s in b.STATIC or s in ADMIN_SCENARIOS:
                            self.measure(t, s, 0, warmup=True)
            for run in range(1, a.runs + 1):
                for s in scenarios:
                    self.keep_statistics()
                    for empty, full in self.pairs:
                        for t in ((empty, full) if run % 2 else (full, empty)):
                            self.measure(t, s, run)
            pg = next((full for _, full in self.pairs if full.pg_db), None)
            if pg:
                self.explain_hot_statements(pg, scenarios)
                self.measure_sizes(pg)
        finally:
            self.procs.stop_all()
            for db in ([] if a.keep_work else self.dbs):
                try:
                    b.psql(f'drop database if exists "{db}"')
                except subprocess.SubprocessError:
                    pass
        text, failures = self.render()
        out = a.out or os.path.join(b.BENCH_DIR, "RESULTS-scale.md")
        with open(out, "w") as f:
            f.write(text)
        print(text)
        b.log(f"wrote {out}")
        if failures:
            b.log("FAILED: " + "; ".join(failures))
            return 1
        return 0

    # -------------------------------------------------------- report

    def median(self, target, scenario, phase, key):
        values = [r[key] for r in self.results
                  if r.get("base") == target and r["scenario"] == scenario and r.get("phase") == phase]
        return statistics.median(values) if values else None

    def render(self) -> tuple[str, list[str]]:
        a = self.args
        m = self.machine
        failures = []
        out = ["# Latchkey at scale: the same scenarios on an empty and a preloaded database", "",
               f"Command: `{a.command}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
               f"Machine: {m.get('cpu')}, {m.get('nproc')} cores, {m.get('mem_gib', 0):.1f} GiB, load "
               f"{' '.join(m.get('loadavg', []))} at the start; {m.get('rustc')}  ",
               f"Load: wrk, {a.connections} connections, {a.threads} threads, {a.duration:g} s per run, "
               f"{a.runs} run(s) per scenario and phase, medians. Targets: req/s at scale ≥ "
               f"{RPS_TARGET}× and p99 ≤ {P99_TARGET}× the empty database's.  ",
               "Method: two servers per backend run side by side, one on an empty and one on a "
               "preloaded database; each scenario is measured on one, then at once on the other "
               "(which one goes first alternates from run to run). The empty twin holds one page of "
               f"each list the admin scenarios read ({PAGE_SEED[0]} users, {PAGE_SEED[1]} families, "
               f"{PAGE_SEED[2]} events), so both answer the same number of items. Before each scenario "
               "the tables of both Postgres twins that autovacuum would vacuum and analyze (its default "
               "thresholds) are vacuumed and analyzed.", ""]
        for t, full in self.pairs:
            users, families, events = self.preloaded(full)
            out += [f"## {t.label}", "",
                    f"Preloaded {users:,} users, {families:,} live refresh-token families (and their "
                    f"grants) and {events:,} audit events in {self.preload_s.get(full.name, 0):.0f} s.", "",
                    "| scenario | req/s empty | req/s scale | ratio | p99 empty (ms) | p99 scale (ms) | ratio | errors | verdict |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
            seen = set()
            for s in [r["scenario"] for r in self.results if r.get("base") == t.name and r.get("phase") == "empty"]:
                if s in seen:
                    continue
                seen.add(s)
                e_rps, s_rps = self.median(t.name, s, "empty", "rps"), self.median(t.name, s, "scale", "rps")
                e_p99, s_p99 = self.median(t.name, s, "empty", "p99_ms"), self.median(t.name, s, "scale", "p99_ms")
                errors = sum(r["errors"] for r in self.results if r.get("base") == t.name and r["scenario"] == s)
                if None in (e_rps, s_rps, e_p99, s_p99):
                    continue
                r_rps = s_rps / e_rps if e_rps else 0
                r_p99 = s_p99 / e_p99 if e_p99 else 0
                ok = r_rps >= RPS_TARGET and r_p99 <= P99_TARGET and not errors
                if not ok:
                    failures.append(f"{t.name} {s}: req/s ×{r_rps:.2f}, p99 ×{r_p99:.2f}, errors {errors}")
                out.append(f"| {s} | {e_rps:,.0f} | {s_rps:,.0f} | {r_rps:.2f} | {e_p99:.2f} | {s_p99:.2f} "
                           f"| {r_p99:.2f} | {errors} | {'ok' if ok else 'MISSED'} |")
            out.append("")
        if self.sizes:
            out += ["## Disk per row (Postgres, at scale)", "",
                    "`pg_total_relation_size` (heap, indexes, TOAST) divided by the rows present.", "",
                    "| table | rows | total | heap | bytes per row |", "|---|---:|---:|---:|---:|"]
            for table, s in self.sizes.items():
                out.append(f"| {table} | {s['rows']:,} | {s['bytes'] / 2**20:,.1f} MiB | "
                           f"{s['heap'] / 2**20:,.1f} MiB | {s['per_row']:,.0f} |")
            fam = self.sizes.get("refresh_family", {}).get("per_row", 0)
            grant = self.sizes.get("auth_grant", {}).get("per_row", 0)
            out += ["", f"A live refresh-token family costs one `refresh_family` row and one "
                    f"`auth_grant` row: {fam + grant:,.0f} bytes, whatever the number of rotations. "
                    f"A user costs {self.sizes.get('app_user', {}).get('per_row', 0):,.0f} bytes.", ""]
        out += ["## Plans of the hot statements (Postgres, at scale)", ""]
        if self.explain_note:
            out += [self.explain_note, ""]
            failures.append("EXPLAIN: " + self.explain_note)
        if self.explained:
            seq = self.seq_scans()
            out += [f"{len(self.explained)} distinct statements ran during a short pass of every scenario "
                    f"with auto_explain; sequential scans of a table of {BIG_ROWS:,} rows or more "
                    f"({', '.join(sorted(self.big_tables))}): "
                    f"{len(seq)}.", "", "| statement | runs | scans |", "|---|---:|---|"]
            for text, e in sorted(self.explained.items(), key=lambda kv: -kv[1]["count"]):
                scans = ", ".join(sorted(f"{k} on {r}{' using ' + i if i else ''}" for k, r, i in e["scans"])) or "—"
                flag = " **SEQ SCAN**" if any(k == "Seq Scan" and r in self.big_tables
                                              for k, r, _ in e["scans"]) else ""
                short = text if len(text) <= 160 else text[:157] + "..."
                out.append(f"| `{short.replace('|', '¦')}` | {e['count']} | {scans}{flag} |")
            for rel, text in seq:
                failures.append(f"Seq Scan on {rel}: {text[:120]}")
            out.append("")
        out += ["## Verdict", "", "All targets met." if not failures else
                "Missed:\n\n" + "\n".join(f"- {f}" for f in failures), ""]
        return "\n".join(out), failures


def run(args) -> int:
    import report
    bench = ScaleBench(args)
    bench.machine = report.machine_info(args)
    return bench.run()
