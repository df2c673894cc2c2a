#!/usr/bin/env python3
"""Load driver and checker of the failover test (tests/failover/run.sh starts the cluster).

A bounded token load over the three Latchkey nodes: client_credentials, authorization-code
flows with login and consent (each flow a user and client that have not consented before, so
the consent page is shown), code exchanges, and refresh rotations. Every answer is recorded.
After a warm-up the scenario's failover is triggered (`crash`: the primary's Patroni is killed
and its Postgres shut down immediately; `switchover`: `patronictl switchover`). The load goes
on until every node has answered without a failure for a while after the new primary is up.
Then it checks:

1. every request was answered: 2xx/3xx/4xx as expected, or 503 `temporarily_unavailable`
   with `Retry-After` (an HTML page or a redirect with `error=temporarily_unavailable` on the
   browser pages); never another 5xx, a timeout past the client timeout (10 s) or a
   connection closed without an answer;
2. every node answered its last failure at most 30 s after the new primary was up, and
   nothing but successes after it;
3. nothing acknowledged was lost: each code acknowledged (redirected to the client) and kept
   back unredeemed redeems once; each family's last refresh token acknowledged with a 200
   still refreshes; each consent acknowledged (the flow reached the client) is in the
   database.

Only the standard library: it runs on Debian's python3 as is.
"""

import argparse
import base64
import hashlib
import html
import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

CLIENT_TIMEOUT = 10.0
RECOVERY_BOUND = 30.0
WARMUP = 8.0
# After the new primary is up, the load goes on until every node has this many seconds of
# clean answers behind it (or the recovery bound has passed, which is a failure).
CLEAN_TAIL = 5.0
SCOPE = "openid offline_access failover.read"
REDIRECT_URI = "http://127.0.0.1:9/callback"
USERS = 3
CLIENTS = 80


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []  # (t, node, what, status, ok, detail)
        self.violations = []

    def add(self, node, what, status, ok, detail=""):
        with self.lock:
            self.events.append((time.time(), node, what, status, ok, detail))

    def violation(self, text):
        with self.lock:
            self.violations.append(text)
        print(f"driver: VIOLATION {text}", flush=True)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return {}


def request(base, method, path, body=None, headers=None):
    """One request on a fresh connection. Returns an Answer, or raises OSError /
    http.client.HTTPException when no answer came (a violation for the callers)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=CLIENT_TIMEOUT)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(body, (list, tuple)):
            body = json.dumps(body[0])
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()} | {"set-cookie-all": r.headers.get_all("Set-Cookie") or []}, data)
    finally:
        conn.close()


class Driver:
    def __init__(self, topo, scenario):
        self.topo = topo
        self.scenario = scenario
        self.nodes = topo["nodes"]
        self.rec = Recorder()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.clients = []  # (client_id, secret)
        self.users = []  # (username, password, sub)
        self.pairs = []  # (user index, client index) not yet consented
        self.parked_codes = []  # (client index, code, verifier, node)
        self.families = {}  # id -> dict(client, current, previous, frozen)
        self.consents = []  # (sub, client_id)
        self.in_doubt_codes = 0
        self.counts = {}
        self.failover_at = None
        self.new_primary_at = None
        self.old_primary = None
        self.new_primary = None

    # ---- helpers ---------------------------------------------------------------------
    def node(self):
        return random.randrange(len(self.nodes))

    def admin(self, path, payload):
        a = request(self.nodes[0], "POST", "/admin" + path, [payload],
                    {"Authorization": "Bearer " + self.topo["admin_token"]})
        if a.status != 201:
            raise RuntimeError(f"POST /admin{path}: {a.status} {a.body[:200]!r}")
        return a.json()

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def check(self, node, what, fn):
        """Runs one request and classifies its answer. Returns the Answer, or None when the
        request failed in an allowed way (503) or a violating way (recorded)."""
        t0 = time.time()
        try:
            a = fn(self.nodes[node])
        except (OSError, http.client.HTTPException) as e:
            took = time.time() - t0
            self.rec.add(node, what, None, False, repr(e))
            self.rec.violation(f"{what} on node {node + 1}: no answer after {took:.1f} s ({e!r})")
            return None
        self.count(f"{what} {a.status}")
        if a.status == 503:
            ok = True
            if "retry-after" not in a.headers:
                self.rec.violation(f"{what} on node {node + 1}: 503 without Retry-After")
            if a.headers.get("content-type", "").startswith("application/json"):
                if a.json().get("error") != "temporarily_unavailable":
                    self.rec.violation(f"{what} on node {node + 1}: 503 body {a.body[:200]!r}")
                    ok = False
            elif b"temporarily" not in a.body and b"unavailable" not in a.body.lower():
                self.rec.violation(f"{what} on node {node + 1}: 503 page without the error {a.body[:200]!r}")
            self.rec.add(node, what, 503, False, "unavailable")
            return None
        if a.status >= 500:
            self.rec.add(node, what, a.status, False, a.body[:200])
            self.rec.violation(f"{what} on node {node + 1}: {a.status} {a.body[:300]!r}")
            return None
        loc = a.headers.get("location", "")
        if "error=temporarily_unavailable" in loc:
            self.rec.add(node, what, a.status, False, "unavailable (redirect)")
            return None
        self.rec.add(node, what, a.status, True)
        return a

    def unexpected(self, node, what, a):
        self.rec.add(node, what, a.status, False, "unexpected")
        self.rec.violation(f"{what} on node {node + 1}: unexpected {a.status} {a.body[:300]!r}")

    def basic(self, ci):
        cid, secret = self.clients[ci]
        raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}

    # ---- setup -----------------------------------------------------------------------
    def setup(self):
        tag = f"{self.scenario}-{secrets.token_hex(3)}"
        for i in range(CLIENTS):
            c = self.admin("/clients", {
                "client_name": f"failover {tag} {i}",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": SCOPE,
            })
            self.clients.append((c["client_id"], c["client_secret"]))
        for i in range(USERS):
            password = "failover " + secrets.token_urlsafe(12)
            name = f"u{tag}-{i}"
            u = self.admin("/users", {"username": name, "password": password})
            self.users.append((name, password, u["sub"]))
        self.pairs = [(u, c) for c in range(CLIENTS) for u in range(USERS)]
        random.shuffle(self.pairs)

    # ---- the load --------------------------------------------------------------------
    def client_credentials_loop(self):
        while not self.stop.is_set():
            n = self.node()
            ci = random.randrange(len(self.clients))
            a = self.check(n, "client_credentials", lambda b: request(
                b, "POST", "/token", {"grant_type": "client_credentials", "scope": "failover.read"},
                self.basic(ci)))
            if a is not None and a.status != 200:
                self.unexpected(n, "client_credentials", a)
            time.sleep(0.05)

    def flow_loop(self, worker):
        i = 0
        while not self.stop.is_set():
            with self.lock:
                if not self.pairs:
                    break
                ui, ci = self.pairs.pop()
            self.flow(ui, ci, park=(i % 2 == 0))
            i += 1
            time.sleep(0.1)

    def flow(self, ui, ci, park):
        """One authorization-code flow, each step on another node. Returns when the flow ends
        (a code acknowledged, or a step that failed)."""
        username, password, sub = self.users[ui]
        cid = self.clients[ci][0]
        verifier = secrets.token_urlsafe(40)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT_URI,
            "scope": SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge, "code_challenge_method": "S256"})
        cookies = {}
        path, method, form = "/authorize?" + q, "GET", None
        consented = False
        for _step in range(8):
            n = self.node()
            hdrs = {}
            if cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            a = self.check(n, "flow " + path.split("?")[0], lambda b: request(b, method, path, form, hdrs))
            if a is None:
                return
            for line in a.headers["set-cookie-all"]:
                pair = line.split(";")[0]
                k, _, v = pair.partition("=")
                if re.search(r"max-age=(0|-)", line, re.I):
                    cookies.pop(k.strip(), None)
                else:
                    cookies[k.strip()] = v.strip()
            if 300 <= a.status < 400:
                loc = a.headers["location"]
                if loc.startswith(REDIRECT_URI):
                    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                    if "code" not in params:
                        self.unexpected(n, "flow redirect", a)
                        return
                    self.count("codes acknowledged")
                    with self.lock:
                        if consented:
                            self.consents.append((sub, cid))
                    self.got_code(ci, params["code"], verifier, park)
                    return
                u = urllib.parse.urlsplit(loc)
                path = u.path + ("?" + u.query if u.query else "")
                method, form = "GET", None
                continue
            if a.status != 200:
                self.unexpected(n, "flow " + path.split("?")[0], a)
                return
            page = a.body.decode("utf-8", "replace")
            fm = re.search(r'<form\b[^>]*method\s*=\s*"post"[^>]*>', page, re.I)
            if not fm:
                self.unexpected(n, "flow page without form", a)
                return
            am = re.search(r'\saction\s*=\s*"([^"]*)"', fm.group(0), re.I)
            action = html.unescape(am.group(1)) if am else path
            fields = {}
            for tag in re.findall(r"<input\b[^>]*>", page, re.I):
                nm = re.search(r'\sname\s*=\s*"([^"]*)"', tag)
                tp = re.search(r'\stype\s*=\s*"([^"]*)"', tag)
                vl = re.search(r'\svalue\s*=\s*"([^"]*)"', tag)
                if nm and tp and tp.group(1).lower() == "hidden":
                    fields[html.unescape(nm.group(1))] = html.unescape(vl.group(1)) if vl else ""
            if 'type="password"' in page:
                fields["username"] = username
                fields["password"] = password
            elif 'name="decision"' in page:
                fields["decision"] = "allow"
                consented = True
            else:
                self.unexpected(n, "flow unknown page", a)
                return
            u = urllib.parse.urlsplit(urllib.parse.urljoin("http://localhost:8443" + path, action))
            path = u.path + ("?" + u.query if u.query else "")
            method, form = "POST", fields

    def got_code(self, ci, code, verifier, park):
        if park:
            with self.lock:
                self.parked_codes.append((ci, code, verifier))
            return
        n = self.node()
        a = self.check(n, "code exchange", lambda b: request(b, "POST", "/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, self.basic(ci)))
        if a is None:
            # Unanswered or 503: the code may or may not have been consumed. Not counted.
            with self.lock:
                self.in_doubt_codes += 1
            return
        if a.status != 200:
            self.unexpected(n, "code exchange", a)
            return
        rt = a.json().get("refresh_token")
        if not rt:
            self.unexpected(n, "code exchange without refresh token", a)
            return
        with self.lock:
            self.families[len(self.families)] = {"client": ci, "current": rt, "previous": None, "frozen": False}

    def refresh_loop(self, worker):
        while not self.stop.is_set():
            with self.lock:
                ids = [f for f, v in self.families.items() if not v["frozen"] and f % 2 == worker]
            if not ids:
                time.sleep(0.1)
                continue
            fid = random.choice(ids)
            fam = self.families[fid]
            n = self.node()
            a = self.check(n, "refresh", lambda b: request(b, "POST", "/token", {
                "grant_type": "refresh_token", "refresh_token": fam["current"]}, self.basic(fam["client"])))
            if a is None:
                # The rotation's outcome is unknown to the client: it stops using this family
                # until the check after the failover.
                fam["frozen"] = True
                continue
            if a.status != 200:
                self.unexpected(n, "refresh", a)
                fam["frozen"] = True
                continue
            fam["previous"], fam["current"] = fam["current"], a.json()["refresh_token"]
            self.count("rotations acknowledged")
            time.sleep(0.02)

    def metrics_loop(self):
        """What an operator's scraper sees: every second, each node's /metrics (503 and other
        5xx answers so far, tokens issued, the pool) and /readyz."""
        self.samples = []
        while not self.stop.is_set():
            t = time.time()
            row = []
            for base in self.nodes:
                try:
                    text = request(base, "GET", "/metrics").body.decode()
                    ready = request(base, "GET", "/readyz").status
                except (OSError, http.client.HTTPException):
                    row.append(None)
                    continue
                v = {"s503": 0.0, "s5xx": 0.0, "tokens": 0.0, "pool": 0.0, "idle": 0.0, "ready": ready}
                for line in text.splitlines():
                    if line.startswith("latchkey_http_requests_total{"):
                        status = re.search(r'status="(\d+)"', line).group(1)
                        n = float(line.rsplit(" ", 1)[1])
                        if status == "503":
                            v["s503"] += n
                        elif status.startswith("5"):
                            v["s5xx"] += n
                    elif line.startswith("latchkey_tokens_issued_total{"):
                        v["tokens"] += float(line.rsplit(" ", 1)[1])
                    elif line.startswith("latchkey_db_pool_connections "):
                        v["pool"] = float(line.split()[1])
                    elif line.startswith("latchkey_db_pool_idle_connections "):
                        v["idle"] = float(line.split()[1])
                row.append(v)
            self.samples.append((t, row))
            self.stop.wait(max(0.0, 1.0 - (time.time() - t)))

    def metrics_timeline(self):
        """Per second around the failover, summed over the nodes: 503s and other 5xx in that
        second, tokens issued in it, pool connections (idle), nodes ready."""
        lines = []
        prev = None
        for t, row in self.samples:
            vs = [v for v in row if v is not None]
            tot = {k: sum(v[k] for v in vs) for k in ("s503", "s5xx", "tokens", "pool", "idle")}
            ready = sum(1 for v in vs if v["ready"] == 200)
            if prev is not None:
                lines.append(f"{t - self.failover_at:+6.1f} s  503/s {tot['s503'] - prev['s503']:4.0f}  "
                             f"other 5xx/s {tot['s5xx'] - prev['s5xx']:2.0f}  tokens/s {tot['tokens'] - prev['tokens']:4.0f}  "
                             f"pool {tot['pool']:3.0f} (idle {tot['idle']:3.0f})  ready {ready}/{len(self.nodes)}")
            prev = tot
        return lines

    # ---- the failover ----------------------------------------------------------------
    def primary(self):
        for name, m in self.topo["members"].items():
            try:
                a = request(f"http://127.0.0.1:{m['rest']}", "GET", "/primary")
                if a.status == 200:
                    return name
            except (OSError, http.client.HTTPException):
                pass
        return None

    def trigger(self):
        self.old_primary = self.primary()
        if self.old_primary is None:
            raise RuntimeError("no primary before the failover")
        others = [m for m in self.topo["members"] if m != self.old_primary]
        print(f"driver: failover ({self.scenario}) of {self.old_primary}", flush=True)
        self.failover_at = time.time()
        if self.scenario == "crash":
            m = self.topo["members"][self.old_primary]
            os.killpg(m["patroni_pid"], signal.SIGKILL)
            with open(os.path.join(m["data"], "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGQUIT)
        else:
            subprocess.run(self.topo["patronictl"] + [
                "switchover", "--leader", self.old_primary, "--candidate", others[0], "--force"],
                check=True, stdout=subprocess.DEVNULL, timeout=60)
        deadline = time.time() + 90
        while time.time() < deadline:
            p = self.primary()
            if p is not None and p != self.old_primary:
                self.new_primary = p
                self.new_primary_at = time.time()
                print(f"driver: {p} is the primary {self.new_primary_at - self.failover_at:.1f} s "
                      "after the failover", flush=True)
                return
            time.sleep(0.1)
        raise RuntimeError("no new primary within 90 s")

    def node_clean_since(self, node):
        """The time since which every answer of `node` was a success (None if its last
        answer failed or it has none)."""
        since = None
        with self.rec.lock:
            for t, n, _w, _s, ok, _d in self.rec.events:
                if n != node:
                    continue
                if ok:
                    since = since or t
                else:
                    since = None
        return since

    def run(self):
        self.setup()
        # The counter lives as long as the nodes, which outlive one scenario: the check of an
        # earlier scenario may have presented a token again on purpose (a rotation in doubt).
        self.reuse_at_start = self.reuse_detections()
        threads = [threading.Thread(target=self.client_credentials_loop, daemon=True),
                   threading.Thread(target=self.metrics_loop, daemon=True)]
        threads += [threading.Thread(target=self.flow_loop, args=(w,), daemon=True) for w in range(2)]
        threads += [threading.Thread(target=self.refresh_loop, args=(w,), daemon=True) for w in range(2)]
        for t in threads:
            t.start()
        time.sleep(WARMUP)
        self.trigger()
        # Load until every node has CLEAN_TAIL seconds of successes after the new primary.
        deadline = self.new_primary_at + RECOVERY_BOUND + CLEAN_TAIL
        while time.time() < deadline:
            now = time.time()
            clean = [self.node_clean_since(n) for n in range(len(self.nodes))]
            if all(s is not None and now - s >= CLEAN_TAIL for s in clean):
                break
            time.sleep(0.25)
        self.stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT + 5)
        self.check_recovery()
        self.check_nothing_lost()
        return self.report()

    # ---- the checks after the failover -----------------------------------------------
    def check_recovery(self):
        self.recovered = {}
        for n in range(len(self.nodes)):
            failures = [t for t, nn, _w, _s, ok, _d in self.rec.events if nn == n and not ok]
            last = max(failures) if failures else None
            self.recovered[n] = None if last is None else last - self.new_primary_at
            if last is not None and last - self.new_primary_at > RECOVERY_BOUND:
                self.rec.violation(f"node {n + 1} still failed {last - self.new_primary_at:.1f} s "
                                   "after the new primary was up")
            if self.node_clean_since(n) is None:
                self.rec.violation(f"node {n + 1}: its last answer was a failure")

    def reuse_detections(self):
        """latchkey_reuse_detections_total summed over the nodes and kinds."""
        total = 0.0
        for base in self.nodes:
            for line in request(base, "GET", "/metrics").body.decode().splitlines():
                if line.startswith("latchkey_reuse_detections_total"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def check_nothing_lost(self):
        # The load never presents a code or refresh token twice: a reuse detected during it
        # would mean a rotation or redemption the client was told failed had happened.
        reuse_before = self.reuse_detections()
        if reuse_before > self.reuse_at_start:
            self.rec.violation(f"{reuse_before - self.reuse_at_start:.0f} reuse detections during the load")
        self.lost = {"codes": 0, "refresh": 0, "consents": 0}
        self.checked = {"codes": 0, "refresh": 0, "consents": 0}
        self.refresh_in_doubt_committed = 0
        for ci, code, verifier in self.parked_codes:
            n = self.node()
            a = self.check(n, "check: parked code", lambda b: request(b, "POST", "/token", {
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier}, self.basic(ci)))
            self.checked["codes"] += 1
            if a is None or a.status != 200:
                self.lost["codes"] += 1
                self.rec.violation(f"an acknowledged code did not redeem after the failover: "
                                   f"{a.status if a else None} {a.body[:200] if a else ''!r}")
        for fid, fam in self.families.items():
            n = self.node()
            a = self.check(n, "check: refresh", lambda b: request(b, "POST", "/token", {
                "grant_type": "refresh_token", "refresh_token": fam["current"]}, self.basic(fam["client"])))
            self.checked["refresh"] += 1
            if a is not None and a.status == 200:
                continue
            if fam["frozen"] and fam["previous"] is not None:
                # The last rotation attempt got no 200. If it committed nevertheless (the
                # connection broke after the commit), the acknowledged token is now the
                # previous one, and presenting it was reuse. If instead an acknowledged
                # rotation was lost, the token before it is current again: that refreshes.
                b2 = self.check(n, "check: refresh (previous)", lambda b: request(b, "POST", "/token", {
                    "grant_type": "refresh_token", "refresh_token": fam["previous"]}, self.basic(fam["client"])))
                if b2 is not None and b2.status == 400 and b2.json().get("error") == "invalid_grant":
                    self.refresh_in_doubt_committed += 1
                    continue
            self.lost["refresh"] += 1
            self.rec.violation(f"family {fid}: its last acknowledged refresh token was refused "
                               f"after the failover: {a.status if a else None} {a.body[:200] if a else ''!r}")
        # Each rotation found to have committed unanswered was then presented again, which
        # is reuse: the nodes must have counted it as such (not merely refused the token).
        reuse_after = self.reuse_detections()
        if reuse_after - reuse_before < self.refresh_in_doubt_committed:
            self.rec.violation(f"{self.refresh_in_doubt_committed} families looked rotated without "
                               f"an answer, but only {reuse_after - reuse_before:.0f} reuses were detected")
        if self.consents:
            rows = subprocess.run(
                ["psql", self.topo["database_url"], "-Atqc", "select user_sub || ' ' || client_id || ' ' || scope from consent"],
                check=True, capture_output=True, text=True, timeout=30).stdout.splitlines()
            have = {}
            for r in rows:
                s, c, *scope = r.split(" ")
                have[(s, c)] = set(scope)
            for sub, cid in self.consents:
                self.checked["consents"] += 1
                if not set(SCOPE.split()) <= have.get((sub, cid), set()):
                    self.lost["consents"] += 1
                    self.rec.violation(f"the consent of {sub} for {cid} is missing after the failover")

    def report(self):
        answered = len(self.rec.events)
        unavailable = sum(1 for e in self.rec.events if e[3] == 503 or e[5].startswith("unavailable"))
        failures_t = [e[0] for e in self.rec.events if not e[4]]
        gap = (min(failures_t) - self.failover_at, max(failures_t) - self.failover_at) if failures_t else None
        print(f"driver: scenario {self.scenario}: new primary {self.new_primary} "
              f"{self.new_primary_at - self.failover_at:.1f} s after the failover")
        print(f"driver: {answered} requests, {unavailable} answered 503 temporarily_unavailable"
              + (f" (from {gap[0]:+.1f} s to {gap[1]:+.1f} s after the failover)" if gap else ""))
        for n in sorted(self.recovered):
            r = self.recovered[n]
            print(f"driver: node {n + 1}: " + ("no failure" if r is None else
                  f"last failure {r:+.1f} s after the new primary was up"))
        print(f"driver: checked after the failover: {self.checked['codes']} parked codes, "
              f"{self.checked['refresh']} refresh families, {self.checked['consents']} consents; "
              f"lost: {self.lost}")
        print(f"driver: {self.counts.get('codes acknowledged', 0)} codes and "
              f"{self.counts.get('rotations acknowledged', 0)} rotations acknowledged; "
              f"{self.in_doubt_codes} code exchanges and "
              f"{sum(1 for f in self.families.values() if f['frozen'])} rotations unanswered or 503 (outcome unknown to the client), "
              f"of which {self.refresh_in_doubt_committed} had committed")
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()) if not k.endswith("acknowledged"))
        print(f"driver: answers: {statuses}")
        print("driver: metrics, summed over the nodes (time from the failover):")
        for line in self.metrics_timeline():
            print(f"driver:   {line}")
        if self.rec.violations:
            print(f"driver: {len(self.rec.violations)} VIOLATIONS")
            for v in self.rec.violations[:30]:
                print(f"driver:   {v}")
        else:
            print("driver: no violations")
        return {
            "scenario": self.scenario,
            "new_primary_after_s": round(self.new_primary_at - self.failover_at, 1),
            "requests": answered, "unavailable": unavailable,
            "recovered_after_s": self.recovered, "checked": self.checked, "lost": self.lost,
            "refresh_in_doubt_committed": self.refresh_in_doubt_committed,
            "violations": self.rec.violations,
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topology", required=True)
    ap.add_argument("--scenario", choices=["crash", "switchover"], required=True)
    ap.add_argument("--report")
    args = ap.parse_args()
    with open(args.topology) as f:
        topo = json.load(f)
    d = Driver(topo, args.scenario)
    rep = d.run()
    if args.report:
        with open(args.report, "w") as f:
            json.dump(rep, f, indent=1, default=str)
    sys.exit(1 if rep["violations"] else 0)


if __name__ == "__main__":
    main()
