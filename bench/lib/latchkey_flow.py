"""Browser-less clients of a running Latchkey, for the benchmark's set-up.

Provisions a client and a user through the admin API, drives the login flow
(authorize -> login -> consent -> code) the way a browser would, and mints what the load
scenarios consume: authorization codes, refresh-token families and access tokens.

Standard library only. Every request goes to the base URL given (127.0.0.1), one at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import struct
import urllib.parse

# One PKCE verifier for every code the benchmark mints: the exchange scenario sends it back.
PKCE_VERIFIER = "latchkey-bench-pkce-verifier-0123456789-abcdefghijklmnopqrstu"
PKCE_CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(PKCE_VERIFIER.encode()).digest()).rstrip(b"=").decode()
)
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never called: codes are read from Location
RESOURCE = "urn:latchkey:bench:api"
CLIENT_SCOPE = "openid profile email offline_access api.read"
USERNAME = "bench-user"
# Users the login scenario logs in as, in turn: a login load is many people at once. Each
# login counts against its account's and its address's throttle while it is in flight, so
# one account logging in 32 times at once would be throttled (as it should).
LOGIN_USERS = 32
PASSWORD = "bench correct horse battery staple"

_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


class HttpError(RuntimeError):
    pass


class Client:
    """A keep-alive HTTP/1.1 connection with a cookie jar; never follows redirects."""

    def __init__(self, base: str, timeout: float = 30.0):
        url = urllib.parse.urlsplit(base)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"benchmark traffic stays on loopback, not {url.hostname}")
        self.host, self.port = url.hostname, url.port or 80
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body=None, headers=None, form=None, js=None):
        """Returns (status, headers as a lower-cased dict, body text). Stores cookies."""
        headers = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if js is not None:
            body = json.dumps(js)
            headers["Content-Type"] = "application/json"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):  # one retry on a connection the server closed
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 1:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                self.cookies[k.strip()] = v.strip()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def basic(client_id: str, secret: str) -> str:
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731 (RFC 6749 §2.3.1)
    raw = f"{quote(client_id)}:{quote(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def provision(base: str, admin_token: str, id_token_alg: str | None = None) -> dict:
    """Registers the bench client and user; returns their credentials. `id_token_alg`
    (RS256 when unset, Latchkey's default) is the client's id_token_signed_response_alg."""
    c = Client(base)
    auth = {"Authorization": f"Bearer {admin_token}"}
    extra = {"id_token_signed_response_alg": id_token_alg} if id_token_alg else {}
    status, _, body = c.request("POST", "/admin/clients", headers=auth, js={
        **extra,
        "client_name": "Latchkey bench",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": CLIENT_SCOPE,
        "allowed_resources": [RESOURCE],
    })
    if status != 201:
        raise HttpError(f"POST /admin/clients: {status} {body[:300]}")
    client = json.loads(body)
    status, _, body = c.request("POST", "/admin/users", headers=auth, js={
        "username": USERNAME, "password": PASSWORD,
        "email": "bench@example.com", "email_verified": True, "name": "Bench User",
    })
    if status != 201:
        raise HttpError(f"POST /admin/users: {status} {body[:300]}")
    # The login scenario's people: USERNAME-0 .. USERNAME-(LOGIN_USERS - 1), same password.
    for i in range(LOGIN_USERS):
        status, _, body = c.request("POST", "/admin/users", headers=auth, js={
            "username": f"{USERNAME}-{i}", "password": PASSWORD,
            "email": f"bench{i}@example.com", "email_verified": True, "name": f"Bench User {i}",
        })
        if status != 201:
            raise HttpError(f"POST /admin/users ({i}): {status} {body[:300]}")
    c.close()
    return {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "basic": basic(client["client_id"], client["client_secret"]),
        "username": USERNAME,
        "password": PASSWORD,
    }


def provision_pkjwt_client(base: str, admin_token: str, jwk: dict) -> str:
    """Registers a client_credentials client that authenticates with private_key_jwt
    (RFC 7523 §2.2) using the public key `jwk`; returns its client_id."""
    c = Client(base)
    status, _, body = c.request("POST", "/admin/clients", headers={"Authorization": f"Bearer {admin_token}"}, js={
        "client_name": "Latchkey bench (private_key_jwt)",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk]},
        "scope": CLIENT_SCOPE,
        "allowed_resources": [RESOURCE],
    })
    c.close()
    if status != 201:
        raise HttpError(f"POST /admin/clients (private_key_jwt): {status} {body[:300]}")
    return json.loads(body)["client_id"]


def provision_totp_users(base: str, admin_token: str, tag: str, n: int) -> list[tuple[str, str]]:
    """Creates `n` users USERNAME-totp-TAG-I (the bench password) each with a TOTP provisioned
    through the admin API; returns (username, base32 secret) pairs. A TOTP code is accepted once
    per user and time step, so the login_totp scenario needs many people, fresh for each run."""
    c = Client(base)
    auth = {"Authorization": f"Bearer {admin_token}"}
    out = []
    for i in range(n):
        username = f"{USERNAME}-totp-{tag}-{i}"
        status, _, body = c.request("POST", "/admin/users", headers=auth, js={
            "username": username, "password": PASSWORD, "name": f"Bench TOTP {i}",
        })
        if status != 201:
            raise HttpError(f"POST /admin/users ({username}): {status} {body[:300]}")
        sub = json.loads(body)["sub"]
        status, _, body = c.request("POST", f"/admin/users/{sub}/totp", headers=auth)
        if status != 201:
            raise HttpError(f"POST /admin/users/{sub}/totp: {status} {body[:300]}")
        out.append((username, json.loads(body)["secret"]))
    c.close()
    return out


def totp_code(secret_b32: str, step: int) -> str:
    """RFC 6238 (SHA-1, 6 digits) for time step `step`, with the standard library's HMAC."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def authorize_path(client_id: str, scope: str, state: str, prompt: str | None = None) -> str:
    q = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "scope": scope, "state": state,
        "code_challenge": PKCE_CHALLENGE, "code_challenge_method": "S256",
    }
    if prompt:
        q["prompt"] = prompt
    return "/authorize?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


def _location_path(headers: dict) -> str:
    loc = headers.get("location", "")
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def _code_from(headers: dict) -> str:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(headers.get("location", "")).query)
    if "code" not in q:
        raise HttpError(f"no code in redirect: {headers.get('location')}")
    return q["code"][0]


def login(base: str, creds: dict, scope: str) -> tuple[Client, str]:
    """The whole browser flow once: authorize, login, consent (allow). Returns the browser
    (holding the session cookie) and the code."""
    b = Client(base)
    status, h, body = b.request("GET", authorize_path(creds["client_id"], scope, "s0"))
    for step in range(6):  # login page, login post, consent page, consent post: bounded
        if status == 303 and "code=" in h.get("location", ""):
            return b, _code_from(h)
        if status == 303:
            status, h, body = b.request("GET", _location_path(h))
            continue
        if status == 200 and 'name="csrf_token"' in body:
            fields = dict(_HIDDEN.findall(body))
            path = "/consent" if 'name="decision"' in body else "/login"
            form = {"interaction": fields["interaction"], "csrf_token": fields["csrf_token"]}
            if path == "/login":
                form.update(username=creds["username"], password=creds["password"])
            else:
                form["decision"] = "allow"
            status, h, body = b.request("POST", path, form=form)
            continue
        raise HttpError(f"login flow step {step}: unexpected {status} {body[:300]}")
    raise HttpError("login flow did not finish in 6 steps")


def code_with_session(browser: Client, creds: dict, scope: str, state: str = "s") -> str:
    """A code from /authorize for an already logged-in, already consented browser."""
    status, h, body = browser.request("GET", authorize_path(creds["client_id"], scope, state))
    if status != 303:
        raise HttpError(f"authorize with session: {status} {body[:300]}")
    return _code_from(h)


def exchange(base_client: Client, creds: dict, code: str) -> dict:
    status, _, body = base_client.request("POST", "/token", headers={"Authorization": creds["basic"]}, form={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": REDIRECT_URI, "code_verifier": PKCE_VERIFIER,
    })
    if status != 200:
        raise HttpError(f"code exchange: {status} {body[:300]}")
    return json.loads(body)


def mint_refresh_tokens(base: str, creds: dict, browser: Client, n: int) -> list[str]:
    """`n` independent refresh-token families (one code exchange each)."""
    api = Client(base)
    out = []
    for i in range(n):
        code = code_with_session(browser, creds, "openid offline_access", f"r{i}")
        out.append(exchange(api, creds, code)["refresh_token"])
    api.close()
    return out


def check(base: str, creds: dict, access_token: str) -> None:
    """Sanity checks before load: the access token is active and userinfo answers."""
    c = Client(base)
    status, _, body = c.request("POST", "/introspect", headers={"Authorization": creds["basic"]},
                                form={"token": access_token})
    if status != 200 or not json.loads(body).get("active"):
        raise HttpError(f"introspection of the bench token: {status} {body[:200]}")
    status, _, body = c.request("GET", "/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    if status != 200:
        raise HttpError(f"userinfo: {status} {body[:200]}")
    status, _, body = c.request("POST", "/token", headers={"Authorization": creds["basic"]}, form={
        "grant_type": "client_credentials", "scope": "api.read", "resource": RESOURCE})
    if status != 200:
        raise HttpError(f"client_credentials: {status} {body[:200]}")
    c.close()


def dpop_proofs(htu: str, count: int) -> list[str]:
    """`count` DPoP proofs (RFC 9449) for POST `htu`, one ES256 key, each with a fresh jti and
    issued now: a proof is accepted once, and for 60 s. Needs the `cryptography` package (the
    only scenario that does; Debian: python3-cryptography)."""
    import secrets
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
           "y": b64(numbers.y.to_bytes(32, "big"))}
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk},
                            separators=(",", ":")).encode())
    iat = int(time.time())
    out = []
    for _ in range(count):
        claims = {"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": htu, "iat": iat}
        signing_input = header + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        out.append(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return out
