#!/usr/bin/env python3
"""Latchkey's benchmark harness; bench/run.sh builds everything, then runs this.

Starts Latchkey on Postgres and on SQLite, node-oidc-provider and the axum ceiling, all on
127.0.0.1; provisions Latchkey through its admin API; drives every scenario with wrk (one
Lua script per scenario, bench/wrk/) at fixed concurrency and duration; measures each
server's CPU time (/proc/PID/stat, and for Latchkey-on-Postgres the CPU of its Postgres
backends), its memory (VmRSS idle, sampled under load, VmHWM) and its start-up time; takes
medians over the runs and writes bench/RESULTS.md (or, with --smoke, a copy in the work
directory) with the table, the ratios and the targets.

Every loop is bounded: each wrk run by its duration (and a subprocess time-out), each poll
by a deadline. Every process started here is stopped here, by its own pid.
Exit status: 0, or 1 when any scenario had errors or no requests (the smoke's check).
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latchkey_flow as lf  # noqa: E402
import report  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH_DIR)
WRK_DIR = os.path.join(BENCH_DIR, "wrk")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_ADMIN_URL = os.environ.get("LATCHKEY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(8)
NODE_CLIENT_ID, NODE_CLIENT_SECRET = "bench-node", "bench-node-secret-" + secrets.token_hex(16)

# Scenarios in the order they run; which targets have them is decided per target below.
SCENARIOS = ["client_credentials", "client_credentials_pkjwt", "client_credentials_pkjwt_es256",
             "client_credentials_dpop",
             "code_exchange", "refresh", "introspection", "userinfo", "discovery", "jwks",
             "login", "login_totp"]
# The private_key_jwt scenarios and the algorithm their client signs assertions with: RS256,
# what most private_key_jwt clients use (the target row), and ES256, whose verification costs
# about three times as much CPU as an RS256 one (see bench/README.md).
PKJWT_ALGS = {"client_credentials_pkjwt": "RS256", "client_credentials_pkjwt_es256": "ES256"}
# The scenarios whose flows log in (argon2id-bound, run last, reported per finished flow).
LOGINS = ("login", "login_totp")
STATIC = {"client_credentials", "introspection", "userinfo", "discovery", "jwks"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- processes and /proc

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def mem_kib(pid: int) -> dict:
    """VmRSS and VmHWM of a process, KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def reset_hwm(pid: int) -> bool:
    """Resets VmHWM to the current RSS (writing 5 to clear_refs; Linux ≥ 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port: int, path: str, timeout: float = 0.5) -> int:
    """Status of one GET on 127.0.0.1:port, or 0 when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


class Procs:
    """Every process the harness starts, so that all are stopped (by pid) at the end."""

    def __init__(self):
        self.live: list[subprocess.Popen] = []

    def start(self, cmd, env=None, log_path=None, cwd=None) -> subprocess.Popen:
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen, grace: float = 10.0) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in list(self.live):
            self.stop(p)


def wait_ready(p: subprocess.Popen, port: int, path: str, deadline_s: float = 60.0) -> float:
    """Polls GET path every 2 ms until it answers 200; returns seconds since `p` started
    (measured from just before the spawn, see Target.start)."""
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if p.poll() is not None:
            raise RuntimeError(f"server exited with status {p.returncode} before it was ready")
        if http_status(port, path) == 200:
            return time.monotonic()
        time.sleep(0.002)
    raise RuntimeError(f"server on port {port} not ready after {deadline_s} s")


def psql(sql: str, url: str = PG_ADMIN_URL) -> str:
    return subprocess.run(["psql", url, "-Atqc", sql], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


# ---------------------------------------------------------------- targets

@dataclass
class Target:
    """One server under test."""
    name: str            # latchkey-pg, latchkey-sqlite, node-oidc-provider, ceiling
    label: str
    port: int
    cmd: list
    env: dict
    ready_path: str
    scenarios: list
    pg_db: str | None = None
    proc: subprocess.Popen | None = None
    startup_ms: list = field(default_factory=list)
    idle_rss_kib: int = 0
    idle_after_kib: int = 0
    hwm_end_kib: int = 0
    notes: list = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, procs: Procs, log_path: str) -> float:
        """Starts the server and waits for the first 200 from its ready path; returns ms."""
        t0 = time.monotonic()
        self.proc = procs.start(self.cmd, env=self.env, log_path=log_path)
        t1 = wait_ready(self.proc, self.port, self.ready_path)
        return (t1 - t0) * 1000.0

    def pg_backends(self) -> list[int]:
        if not self.pg_db:
            return []
        out = psql(f"select pid from pg_stat_activity where datname = '{self.pg_db}'")
        return [int(x) for x in out.split()]


class CpuMeter:
    """CPU seconds used by a target's server process (and its Postgres backends) between
    start() and stop()."""

    def __init__(self, target: Target):
        self.t = target

    def start(self):
        self.server0 = cpu_seconds(self.t.proc.pid)
        self.backends0 = {pid: cpu_seconds(pid) for pid in self.t.pg_backends()}

    def stop(self) -> tuple[float, float]:
        server = cpu_seconds(self.t.proc.pid) - self.server0
        pg = 0.0
        for pid in self.t.pg_backends():  # a backend born during the run counts whole
            pg += cpu_seconds(pid) - self.backends0.get(pid, 0.0)
        return server, pg


class RssSampler(threading.Thread):
    """Samples VmRSS of a pid every `every` seconds; keeps the maximum and the samples."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.max_kib, self.samples = 0, []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            rss = mem_kib(self.pid).get("VmRSS", 0)
            self.samples.append((time.monotonic(), rss))
            self.max_kib = max(self.max_kib, rss)
            self.halt.wait(self.every)

    def stop(self) -> int:
        self.halt.set()
        self.join(5)
        return self.max_kib


# ---------------------------------------------------------------- wrk

def hash_cpu(base: str) -> tuple[float, int] | None:
    """Latchkey's own account of its password hashing: (CPU seconds, hashes) so far, from
    the latchkey_password_hash_cpu_seconds histogram at /metrics."""
    import urllib.request
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        for suffix in ("sum", "count"):
            prefix = f"latchkey_password_hash_cpu_seconds_{suffix} "
            if line.startswith(prefix):
                values[suffix] = float(line[len(prefix):])
    if "sum" not in values or "count" not in values:
        return None
    return values["sum"], int(values["count"])


def run_wrk(script: str, url: str, env: dict, duration: float, args) -> dict:
    """One wrk run; returns the BENCH_JSON record the script printed."""
    # wrk takes whole seconds only.
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{math.ceil(duration)}s",
           "--timeout", "10s", "-s", os.path.join(WRK_DIR, script), url]
    full_env = dict(os.environ, BENCH_LUA_DIR=WRK_DIR, BENCH_THREADS=str(args.threads), **env)
    r = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=duration + 60)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk {script} printed no result (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")


# ---------------------------------------------------------------- the harness

class Bench:
    def __init__(self, args):
        self.args = args
        self.procs = Procs()
        self.work = tempfile.mkdtemp(prefix="latchkey-bench.")
        self.results: list[dict] = []
        self.targets: list[Target] = []
        self.latchkey_state: dict[str, dict] = {}
        self.argon2_ms: float | None = None
        self.soak: dict | None = None
        self.dbs: list[str] = []

    # -------------------------------------------------------- set-up

    def latchkey_target(self, backend: str, suffix: str = "") -> Target:
        """A Latchkey server on `backend` with its own database; `suffix` tells apart two
        servers on the same backend (the scale run's empty and preloaded twins)."""
        port = free_port()
        env = dict(os.environ)
        env.update({
            "LATCHKEY_ISSUER": f"http://127.0.0.1:{port}",
            "LATCHKEY_LISTEN": f"127.0.0.1:{port}",
            "LATCHKEY_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "LATCHKEY_ADMIN_TOKEN": ADMIN_TOKEN,
            "LATCHKEY_CODE_TTL": "600",
            "LATCHKEY_LOG": os.environ.get("LATCHKEY_LOG", "info"),
            # The login scenario plays many people behind a load balancer on 127.0.0.1: each
            # flow's X-Forwarded-For is another address (see bench/wrk/loginflow.lua).
            "LATCHKEY_TRUSTED_PROXIES": "127.0.0.1",
        })
        env.pop("DATABASE_URL", None)
        for kv in self.args.latchkey_env:  # experiments: --latchkey-env MALLOC_ARENA_MAX=2
            k, _, v = kv.partition("=")
            env[k] = v
        db = None
        if backend == "pg":
            db = f"latchkey_bench_{os.getpid()}{suffix.replace('-', '_')}"
            psql(f'drop database if exists "{db}"')
            psql(f'create database "{db}"')
            self.dbs.append(db)
            env["LATCHKEY_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db
        else:
            env["LATCHKEY_DATABASE_URL"] = "sqlite://" + os.path.join(self.work, f"latchkey{suffix}.db")
        return Target(
            name=f"latchkey-{backend}{suffix}", label=f"Latchkey ({'Postgres' if backend == 'pg' else 'SQLite'})",
            port=port, cmd=[self.args.latchkey, "serve"], env=env,
            ready_path="/.well-known/openid-configuration", scenarios=SCENARIOS, pg_db=db)

    def start_measured(self, t: Target) -> None:
        """Starts `t` args.starts times (keeping the last), recording each start-up time."""
        for i in range(self.args.starts):
            if t.proc is not None:
                self.procs.stop(t.proc)
            ms = t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))
            t.startup_ms.append(ms)
        log(f"{t.name}: ready in {', '.join(f'{m:.0f}' for m in t.startup_ms)} ms")
        time.sleep(1.0)  # settle before reading idle memory
        t.idle_rss_kib = mem_kib(t.proc.pid).get("VmRSS", 0)

    def setup_latchkey(self, backend: str, suffix: str = "") -> Target:
        t = self.latchkey_target(backend, suffix)
        # First start applies the migrations and provisions; it is not timed.
        t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))
        creds = lf.provision(t.base, ADMIN_TOKEN, self.args.id_token_alg)
        self.procs.stop(t.proc)
        t.proc = None
        self.start_measured(t)
        # A logged-in, consented browser session (scope covers every scenario's).
        browser, code = lf.login(t.base, creds, "openid profile email offline_access")
        api = lf.Client(t.base)
        tokens = lf.exchange(api, creds, code)
        api.close()
        lf.check(t.base, creds, tokens["access_token"])
        self.latchkey_state[t.name] = {"creds": creds, "browser": browser,
                                       "access_token": tokens["access_token"],
                                       "pkjwt": {alg: self.provision_pkjwt(t, alg)
                                                 for alg in PKJWT_ALGS.values()}}
        if backend == "pg" and self.argon2_ms is None:
            self.measure_argon2(t)
        return t

    def provision_pkjwt(self, t: Target, alg: str) -> dict:
        """A client that authenticates with private_key_jwt: a key for `alg` made by the
        ceiling (`keygen`), its public JWK registered as the client's `jwks`."""
        key_path = os.path.join(self.work, f"{t.name}-pkjwt-{alg}.pkcs8")
        jwk = json.loads(subprocess.run([self.args.ceiling, "keygen", key_path, alg], capture_output=True,
                                        text=True, timeout=30, check=True).stdout)
        client_id = lf.provision_pkjwt_client(t.base, ADMIN_TOKEN, jwk)
        return {"client_id": client_id, "key": key_path}

    def mint_assertions(self, t: Target, run: int, alg: str) -> str:
        """Client assertions for one run, each single use: as many as the bearer
        client_credentials scenario answered in the same time on this target (a private_key_jwt
        request costs more, so that is enough; the script reports a shortfall as `exhausted`),
        at least 2,000. Returns the files' prefix."""
        pk = self.latchkey_state[t.name]["pkjwt"][alg]
        prefix = os.path.join(self.work, f"{t.name}-assertions-{alg}-{run}.")
        bearer = [r["rps"] for r in self.results
                  if r["target"] == t.name and r["scenario"] == "client_credentials"]
        rate = max(bearer) if bearer else 25000.0
        n = max(2000, int(rate * self.args.duration))
        started = time.monotonic()
        subprocess.run([self.args.ceiling, "assertions", pk["key"], pk["client_id"], t.base, str(n),
                        prefix, str(self.args.threads), alg], timeout=600, check=True)
        log(f"{t.name}: minted {n} {alg} client assertions in {time.monotonic() - started:.1f} s")
        return prefix

    def measure_argon2(self, t: Target) -> None:
        """Time of one argon2id verification with the parameters of the hash Latchkey stored
        for the bench user (read from its database), on one core of this machine."""
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + t.pg_db
        phc = psql("select password_hash from app_user limit 1", url)
        n = 3 if self.args.smoke else 20
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([self.args.ceiling, "argon2", phc, lf.PASSWORD, str(n)],
                           capture_output=True, text=True, timeout=120, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time, not wall time: the machine is shared, and the login side is CPU time too.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.argon2_ms = 1000 * cpu / n
        self.argon2_wall_ms = json.loads(r.stdout)["argon2_verify_ms"]
        self.argon2_params = phc.split("$")[3]
        log(f"argon2id verify ({self.argon2_params}): {self.argon2_ms:.1f} ms CPU"
            f" ({self.argon2_wall_ms:.1f} ms wall)")

    def setup_node(self) -> Target:
        port = free_port()
        env = dict(os.environ, NODE_ENV="production")
        script = os.path.join(BENCH_DIR, "peers", "oidc-provider-server.mjs")
        t = Target(name="node-oidc-provider", label="node-oidc-provider " + self.node_version(),
                   port=port, cmd=[self.args.node, script, str(port), NODE_CLIENT_ID,
                                   NODE_CLIENT_SECRET, lf.RESOURCE],
                   env=env, ready_path="/.well-known/openid-configuration",
                   scenarios=["client_credentials", "discovery", "jwks"])
        self.start_measured(t)
        return t

    def node_version(self) -> str:
        try:
            with open(os.path.join(BENCH_DIR, "peers", "node_modules", "oidc-provider", "package.json")) as f:
                return json.load(f)["version"]
        except OSError:
            return "?"

    def setup_ceiling(self, source: Target) -> Target:
        """The ceiling serves Latchkey's own discovery and JWKS bytes as fixed bodies."""
        files = []
        for name, path in (("discovery", "/.well-known/openid-configuration"), ("jwks", "/jwks")):
            c = lf.Client(source.base)
            status, _, body = c.request("GET", path)
            c.close()
            fp = os.path.join(self.work, f"fixed-{name}.json")
            with open(fp, "w") as f:
                f.write(body)
            files.append(f"{name}={fp}")
        port = free_port()
        t = Target(name="ceiling", label="axum ceiling", port=port,
                   cmd=[self.args.ceiling, "serve", str(port), *files], env=dict(os.environ),
                   ready_path="/fixed/discovery",
                   scenarios=["client_credentials", "discovery", "jwks"])
        self.start_measured(t)
        return t

    # -------------------------------------------------------- scenarios

    def scenario_env(self, t: Target, scenario: str, run: int) -> tuple[str, str, dict]:
        """(script, url, env) for one run of a scenario on a target, minting what it uses."""
        q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        cc_body = f"grant_type=client_credentials&scope=api.read&resource={q(lf.RESOURCE)}"
        if t.name == "ceiling":
            if scenario == "client_credentials":
                return "static.lua", t.base + "/token", {
                    "BENCH_METHOD": "POST", "BENCH_AUTH": lf.basic("ceiling", "x"), "BENCH_BODY": cc_body}
            return "static.lua", f"{t.base}/fixed/{scenario}", {}
        if t.name == "node-oidc-provider":
            if scenario == "client_credentials":
                return "static.lua", t.base + "/token", {
                    "BENCH_METHOD": "POST", "BENCH_AUTH": lf.basic(NODE_CLIENT_ID, NODE_CLIENT_SECRET),
                    "BENCH_BODY": cc_body}
            path = "/.well-known/openid-configuration" if scenario == "discovery" else "/jwks"
            return "static.lua", t.base + path, {}
        st = self.latchkey_state[t.name]
        creds = st["creds"]
        common = {"BENCH_AUTH": creds["basic"], "BENCH_REDIRECT_URI_ENC": q(lf.REDIRECT_URI),
                  "BENCH_VERIFIER": lf.PKCE_VERIFIER}
        if scenario == "client_credentials":
            return "static.lua", t.base + "/token", dict(common, BENCH_METHOD="POST", BENCH_BODY=cc_body)
        if scenario in PKJWT_ALGS:
            alg = PKJWT_ALGS[scenario]
            return "client_credentials_pkjwt.lua", t.base, {
                "BENCH_ASSERTIONS": self.mint_assertions(t, run, alg),
                "BENCH_BODY": cc_body + "&client_id=" + q(st["pkjwt"][alg]["client_id"])}
        if scenario == "client_credentials_dpop":
            return "dpop.lua", t.base, dict(common, BENCH_BODY=cc_body, BENCH_PROOFS=self.mint_proofs(t, run))
        if scenario == "introspection":
            return "static.lua", t.base + "/introspect", dict(
                common, BENCH_METHOD="POST", BENCH_BODY="token=" + st["access_token"])
        if scenario == "userinfo":
            return "static.lua", t.base + "/userinfo", {"BENCH_AUTH": "Bearer " + st["access_token"]}
        if scenario == "discovery":
            return "static.lua", t.base + "/.well-known/openid-configuration", {}
        if scenario == "jwks":
            return "static.lua", t.base + "/jwks", {}
        if scenario == "code_exchange":
            return "code_exchange.lua", t.base, dict(common, BENCH_CODES=self.mint_codes(t, run))
        if scenario == "refresh":
            return "refresh.lua", t.base, dict(common, BENCH_TOKENS=self.mint_families(t, f"refresh-{run}"))
        if scenario == "login":
            return "login.lua", t.base, dict(
                common,
                BENCH_LOGIN_AUTHORIZE_PATH=lf.authorize_path(creds["client_id"], "openid profile", "lg", "consent"),
                BENCH_USERNAME_ENC=q(creds["username"]), BENCH_PASSWORD_ENC=q(creds["password"]),
                BENCH_USER_COUNT=str(lf.LOGIN_USERS))
        if scenario == "login_totp":
            return "login.lua", t.base, dict(
                common,
                BENCH_LOGIN_AUTHORIZE_PATH=lf.authorize_path(creds["client_id"], "openid profile", "lt", "consent"),
                BENCH_PASSWORD_ENC=q(creds["password"]), BENCH_USERNAME_ENC=q(creds["username"]),
                BENCH_TOTP_FILE=self.totp_codes(t, run))
        raise ValueError(scenario)

    def totp_codes(self, t: Target, run: int) -> str:
        """Fresh TOTP users for one run of login_totp, with their codes for every time step the
        run can see, one user a line: `USERNAME STEP:CODE STEP:CODE ...`. A code is accepted once
        per user and step, and the harness uses the current and the next step only (see
        loginflow.lua), so a user logs in at most twice in a step window: enough users for
        ~160 logins/s in a 2 s smoke run (which cannot wait for the next step; a fast machine
        ran ~65 in CI) and ~100 in a 10 s run are provisioned."""
        n = max(160, int(50 * self.args.duration))
        users = lf.provision_totp_users(t.base, ADMIN_TOKEN, f"{os.getpid()}-{run}", n)
        first = int(time.time()) // 30 - 1
        last = (int(time.time()) + int(self.args.duration) + 120) // 30 + 1
        path = os.path.join(self.work, f"{t.name}-totp-{run}.codes")
        with open(path, "w") as f:
            for username, secret in users:
                codes = " ".join(f"{s}:{lf.totp_code(secret, s)}" for s in range(first, last + 1))
                f.write(f"{username} {codes}\n")
        log(f"{t.name}: provisioned {n} TOTP users for run {run}")
        return path

    def mint_families(self, t: Target, tag: str) -> str:
        """Two refresh-token families per connection, written one a line."""
        st = self.latchkey_state[t.name]
        tokens = lf.mint_refresh_tokens(t.base, st["creds"], st["browser"], 2 * self.args.connections)
        path = os.path.join(self.work, f"{t.name}-{tag}.tokens")
        with open(path, "w") as f:
            f.write("\n".join(tokens) + "\n")
        return path

    def mint_proofs(self, t: Target, run: int) -> str:
        """DPoP proofs for one run, one a line: 1.2 x what the bearer client_credentials
        scenario did in the same time on this target (DPoP costs more, so that is enough;
        dpop.lua reports any shortfall), at least 5,000. A proof is good for 60 s after it is
        minted, so the count is capped to what can be minted and used within that."""
        bearer = [r["rps"] for r in self.results
                  if r["target"] == t.name and r["scenario"] == "client_credentials"]
        rate = max(bearer) if bearer else 20000.0
        count = int(min(max(1.2 * rate * self.args.duration, 5000), 300000))
        started = time.monotonic()
        proofs = lf.dpop_proofs(t.base + "/token", count)
        path = os.path.join(self.work, f"{t.name}-proofs-{run}")
        with open(path, "w") as f:
            f.write("\n".join(proofs) + "\n")
        log(f"{t.name}: minted {count} DPoP proofs in {time.monotonic() - started:.1f} s")
        return path

    def mint_codes(self, t: Target, run: int) -> str:
        """Mints codes with wrk (authorize with the session cookie) for 1.5 x the run's
        duration, which yields more codes than the exchange can use in its duration
        (minting costs less than exchanging); code_exchange.lua reports any shortfall."""
        st = self.latchkey_state[t.name]
        prefix = os.path.join(self.work, f"{t.name}-codes-{run}.")
        env = {
            "BENCH_AUTHORIZE_PATH": lf.authorize_path(st["creds"]["client_id"], "openid offline_access", "mc"),
            "BENCH_COOKIE": "; ".join(f"{k}={v}" for k, v in st["browser"].cookies.items()
                                      if k.endswith("latchkey_session")),
            "BENCH_OUT_PREFIX": prefix, "BENCH_QUOTA": "10000000",
        }
        rec = run_wrk("mint_codes.lua", t.base, env, max(1.5, 1.5 * self.args.duration), self.args)
        path = prefix + "all"
        with open(path, "w") as out:
            for part in sorted(glob.glob(prefix + "[0-9]*.txt")):
                with open(part) as f:
                    out.write(f.read())
        n = sum(1 for _ in open(path))
        log(f"{t.name}: minted {n} codes ({rec['errors']['status']} errors)")
        return path

    def measure(self, t: Target, scenario: str, run: int, warmup: bool = False) -> dict | None:
        script, url, env = self.scenario_env(t, scenario, run)
        duration = self.args.warmup if warmup else self.args.duration
        if warmup:
            run_wrk(script, url, env, duration, self.args)
            return None
        hashing = scenario in LOGINS and t.name.startswith("latchkey")
        hash0 = hash_cpu(t.base) if hashing else None
        meter, sampler = CpuMeter(t), RssSampler(t.proc.pid)
        meter.start()
        sampler.start()
        rec = run_wrk(script, url, env, duration, self.args)
        rss_max = sampler.stop()
        server_cpu, pg_cpu = meter.stop()
        hash1 = hash_cpu(t.base) if hashing else None
        mem = mem_kib(t.proc.pid)
        errors = sum(rec["errors"].values())
        # Counters a script keeps that mean something went wrong are errors too.
        bad_extra = {k: v for k, v in rec["extra"].items()
                     if k in ("exhausted", "lost", "dry", "aborted", "unexpected", "no_user") and v}
        requests = rec["requests"]
        row = {
            "target": t.name, "scenario": scenario, "run": run, "requests": requests,
            "duration_s": rec["duration_us"] / 1e6, "rps": requests / (rec["duration_us"] / 1e6),
            "p50_ms": rec["p50_us"] / 1000, "p99_ms": rec["p99_us"] / 1000,
            "errors": errors, "error_detail": {**rec["errors"], **bad_extra},
            "server_cpu_s": server_cpu, "pg_cpu_s": pg_cpu,
            "cpu_per_1k": 1000 * server_cpu / requests if requests else None,
            "pg_cpu_per_1k": 1000 * pg_cpu / requests if requests and t.pg_db else None,
            "rss_max_kib": rss_max, "hwm_kib": mem.get("VmHWM", 0), "extra": rec["extra"],
        }
        if scenario in LOGINS:
            flows = rec["extra"].get("flows", 0)
            row["flows_per_s"] = flows / row["duration_s"]
            row["cpu_per_flow_ms"] = 1000 * server_cpu / flows if flows else None
            row["pg_cpu_per_flow_ms"] = 1000 * pg_cpu / flows if flows else None
            if hash0 and hash1 and flows and hash1[1] > hash0[1]:
                row["hash_cpu_per_flow_ms"] = 1000 * (hash1[0] - hash0[0]) / flows
                row["hash_cpu_ms"] = 1000 * (hash1[0] - hash0[0]) / (hash1[1] - hash0[1])
        self.results.append(row)
        status = "" if not errors and not bad_extra else f"  ERRORS {row['error_detail']}"
        log(f"{t.name:20s} {scenario:18s} run {run}: {row['rps']:9.0f} req/s  p50 {row['p50_ms']:7.2f} ms"
            f"  p99 {row['p99_ms']:7.2f} ms  cpu {server_cpu:5.2f}+{pg_cpu:5.2f} s"
            f"  rss {rss_max / 1024:5.1f} MiB{status}")
        return row

    def run_soak(self, t: Target) -> None:
        """A fixed mix of every scenario for args.soak seconds; VmHWM of the first and of the
        last minute (HWM reset through clear_refs at the start of each)."""
        secs = self.args.soak
        minute = min(60.0, secs / 5)
        st = self.latchkey_state[t.name]
        creds = st["creds"]
        q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        env = {
            "BENCH_AUTH": creds["basic"], "BENCH_REDIRECT_URI_ENC": q(lf.REDIRECT_URI),
            "BENCH_VERIFIER": lf.PKCE_VERIFIER,
            "BENCH_TOKENS": self.mint_families(t, "soak"),
            "BENCH_CC_BODY": f"grant_type=client_credentials&scope=api.read&resource={q(lf.RESOURCE)}",
            "BENCH_INTROSPECT_BODY": "token=" + st["access_token"],
            "BENCH_BEARER": "Bearer " + st["access_token"],
            "BENCH_LOGIN_AUTHORIZE_PATH": lf.authorize_path(creds["client_id"], "openid profile", "sk", "consent"),
            "BENCH_USERNAME_ENC": q(creds["username"]), "BENCH_PASSWORD_ENC": q(creds["password"]),
            "BENCH_USER_COUNT": str(lf.LOGIN_USERS),
        }
        # A fresh process, so that the soak sees its own memory, not the earlier runs'.
        self.procs.stop(t.proc)
        t.start(self.procs, os.path.join(self.work, f"{t.name}.log"))
        log(f"{t.name}: soak, {secs:g} s of mixed load (restarted)")
        pid = t.proc.pid
        can_reset = reset_hwm(pid)
        sampler = RssSampler(pid, every=1.0)
        sampler.start()
        box = {}
        th = threading.Thread(target=lambda: box.update(rec=run_wrk("soak.lua", t.base, env, secs, self.args)))
        t0 = time.monotonic()
        th.start()
        time.sleep(minute)
        first = mem_kib(pid).get("VmHWM", 0)
        time.sleep(max(0.0, secs - 2 * minute))
        reset_hwm(pid)
        th.join(secs + 120)
        last = mem_kib(pid).get("VmHWM", 0)
        sampler.stop()
        rec = box.get("rec")
        if rec is None:
            raise RuntimeError("soak: wrk gave no result")
        errors = sum(rec["errors"].values()) + sum(
            v for k, v in rec["extra"].items() if k in ("aborted", "unexpected"))
        per_min = []
        for i in range(int(secs // 60) or 1):
            window = [r for (ts, r) in sampler.samples if t0 + i * 60 <= ts < t0 + (i + 1) * 60]
            per_min.append(max(window) if window else 0)
        self.soak = {"target": t.name, "seconds": secs, "requests": rec["requests"],
                     "rps": rec["requests"] / (rec["duration_us"] / 1e6), "errors": errors,
                     "flows": rec["extra"].get("flows", 0), "first_hwm_kib": first, "last_hwm_kib": last,
                     "window_s": minute, "hwm_reset": can_reset, "rss_max_per_minute_kib": per_min}
        log(f"soak: {self.soak['rps']:.0f} req/s, errors {errors}, HWM first {first / 1024:.1f} MiB,"
            f" last {last / 1024:.1f} MiB")

    # -------------------------------------------------------- main

    def run(self) -> int:
        a = self.args
        try:
            backends = [b for b in a.backends.split(",") if b]
            for b in backends:
                log(f"starting Latchkey on {b}")
                self.targets.append(self.setup_latchkey(b))
            if not a.skip_node:
                log("starting node-oidc-provider")
                self.targets.append(self.setup_node())
            log("starting the ceiling")
            self.targets.append(self.setup_ceiling(self.targets[0]))

            if a.warmup > 0:
                log(f"warm-up, {a.warmup:g} s per static scenario")
                for t in self.targets:
                    for s in t.scenarios:
                        if s in STATIC:
                            self.measure(t, s, 0, warmup=True)
            # Logins run after every other scenario: each argon2id hash takes 19 MiB, and
            # whatever the allocator keeps of it would otherwise show in the later scenarios'
            # memory figures.
            wanted = [s for s in SCENARIOS if not a.only or s in a.only.split(",")]
            for phase in ([s for s in wanted if s not in LOGINS], [s for s in wanted if s in LOGINS]):
                for run in range(1, a.runs + 1):
                    for s in phase:
                        for t in self.targets:
                            if s in t.scenarios:
                                self.measure(t, s, run)
            for t in self.targets:
                t.hwm_end_kib = mem_kib(t.proc.pid).get("VmHWM", 0)
            time.sleep(2.0)
            for t in self.targets:
                t.idle_after_kib = mem_kib(t.proc.pid).get("VmRSS", 0)
            pg = next((t for t in self.targets if t.name == "latchkey-pg"), None)
            if a.soak > 0 and pg:
                self.run_soak(pg)
        finally:
            self.procs.stop_all()
            for db in ([] if a.keep_work else self.dbs):
                try:
                    psql(f'drop database if exists "{db}"')
                except subprocess.SubprocessError:
                    pass
        text, failures = report.render(self)
        out = a.out or (os.path.join(self.work, "RESULTS-smoke.md") if a.smoke else
                        os.path.join(BENCH_DIR, "RESULTS.md"))
        with open(out, "w") as f:
            f.write(text)
        print(text)
        log(f"wrote {out}")
        if failures:
            log("FAILED: " + "; ".join(failures))
            return 1
        if not a.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CI smoke: short runs, one of each, no soak")
    p.add_argument("--scale", action="store_true",
                   help="every scenario on an empty and on a preloaded database (bench/lib/scale.py); "
                        "writes bench/RESULTS-scale.md")
    p.add_argument("--scale-rows", type=float, default=1.0,
                   help="with --scale: fraction of the preload (default 1: 1M users, 1M families, 5M events)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 10; smoke 2)")
    p.add_argument("--runs", type=int, help="runs per scenario; medians are reported (default 3; smoke 1)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per static scenario (default 2; smoke 0)")
    p.add_argument("--soak", type=float, help="seconds of mixed-load soak on Postgres (default 300; smoke 0)")
    p.add_argument("--starts", type=int, help="timed start-ups per server (default 3; smoke 1)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--backends", default="pg,sqlite")
    p.add_argument("--only", default="", help="comma-separated scenarios to run (default all)")
    p.add_argument("--skip-node", action="store_true")
    p.add_argument("--out", help="where to write the report")
    p.add_argument("--keep-work", action="store_true", help="keep the work directory (logs) and the Postgres databases, for inspection")
    p.add_argument("--latchkey-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the Latchkey servers (repeatable), for A/B experiments")
    p.add_argument("--id-token-alg", help="the bench client's id_token_signed_response_alg "
                   "(default: unset, so Latchkey's default RS256)")
    p.add_argument("--latchkey", default=os.path.join(ROOT, "target", "release", "latchkey"))
    p.add_argument("--ceiling", default=os.path.join(ROOT, "target", "release", "latchkey-bench-ceiling"))
    p.add_argument("--node", default=shutil.which("node") or "node")
    p.add_argument("--command", default="bash bench/run.sh", help="the command line, for the report")
    a = p.parse_args()
    defaults = dict(duration=(2, 10, 5), runs=(1, 3, 2), warmup=(0, 2, 1), soak=(0, 300, 0),
                    starts=(1, 3, 1))
    for k, (smoke, full, scale_run) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, smoke if a.smoke else scale_run if a.scale else full)
    if a.scale:
        import scale
        return scale.run(a)
    bench = Bench(a)
    bench.machine = report.machine_info(a)
    return bench.run()


if __name__ == "__main__":
    sys.exit(main())
