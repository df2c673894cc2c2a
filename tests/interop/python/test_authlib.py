"""authlib (with requests) as a confidential relying party of Latchkey.

authlib is configured with the issuer URL only: its client app loads discovery from
``{issuer}/.well-known/openid-configuration`` and takes every endpoint from there. The code
flow runs twice, once per client: one registered for client_secret_basic, one for
client_secret_post. ID tokens are checked with authlib's OIDC tools against the JWKS.
"""

import base64
import json
import os
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OAuthError, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidClaimError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set (run tests/interop/run.sh)", returncode=2)
    return value


ISSUER = env("INTEROP_ISSUER")
REDIRECT_URI = env("INTEROP_REDIRECT_URI")
USER = {
    "username": env("INTEROP_USERNAME"),
    "password": env("INTEROP_PASSWORD"),
    "sub": env("INTEROP_USER_SUB"),
    "name": env("INTEROP_USER_NAME"),
    "email": env("INTEROP_USER_EMAIL"),
}
CLIENTS = {
    "client_secret_basic": (env("INTEROP_PY_BASIC_CLIENT_ID"), env("INTEROP_PY_BASIC_CLIENT_SECRET")),
    "client_secret_post": (env("INTEROP_PY_POST_CLIENT_ID"), env("INTEROP_PY_POST_CLIENT_SECRET")),
}
SCOPE = "openid profile email offline_access"
TIMEOUT = 10


# --- authlib's relying-party app, without a web framework ------------------------------------


class RecordingSession(OAuth2Session):
    """authlib's requests session, remembering the requests it sent (to check client auth)."""

    sent = []

    def send(self, request, **kwargs):
        RecordingSession.sent.append(request)
        kwargs.setdefault("timeout", TIMEOUT)
        return super().send(request, **kwargs)


class _NoFramework:
    """What authlib's Flask/Django integrations provide; a plain script keeps tokens itself."""

    def update_token(self, *args, **kwargs):
        pass


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    """The same mixins authlib's Flask client is built from (FlaskOAuth2App)."""

    client_cls = RecordingSession


def relying_party(auth_method):
    client_id, client_secret = CLIENTS[auth_method]
    return RelyingParty(
        _NoFramework(),
        name=auth_method,
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth_method,
        },
    )


def token_session(auth_method):
    """A plain authlib OAuth2Session for the refresh and client-credentials grants."""
    client_id, client_secret = CLIENTS[auth_method]
    return RecordingSession(
        client_id,
        client_secret,
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
    )


# --- the browser part: requests with a cookie jar, no redirects followed ------------------------


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden = {}
        self.names = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None and (a.get("method") or "").lower() == "post":
            self.action = a.get("action") or ""
        elif tag in ("input", "button") and a.get("name"):
            self.names.add(a["name"])
            if tag == "input" and (a.get("type") or "").lower() == "hidden":
                self.hidden[a["name"]] = a.get("value") or ""


class Browser:
    """Follows the authorization request through Latchkey's login and consent pages and
    returns the redirect back to the client, without dereferencing it."""

    def __init__(self):
        self.http = requests.Session()
        self.visited = []

    def authorize(self, url, decision="allow"):
        origin = urlsplit(ISSUER)[:2]
        resp = self.http.get(url, allow_redirects=False, timeout=TIMEOUT)
        for _ in range(12):
            if resp.is_redirect:
                url = urljoin(url, resp.headers["location"])
                if urlsplit(url)[:2] != origin:
                    return url
                resp = self.http.get(url, allow_redirects=False, timeout=TIMEOUT)
                continue
            assert resp.status_code == 200, f"{url} answered {resp.status_code}: {resp.text[:300]}"
            form = _FormParser()
            form.feed(resp.text)
            data = dict(form.hidden)
            if "password" in form.names:
                self.visited.append("login")
                data.update(username=USER["username"], password=USER["password"])
            elif "decision" in form.names:
                self.visited.append("consent")
                data["decision"] = decision
            else:
                raise AssertionError(f"unexpected page at {url}: {resp.text[:300]}")
            url = urljoin(url, form.action)
            resp = self.http.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)
        raise AssertionError("no redirect back to the client")


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metadata():
    return relying_party("client_secret_basic").load_server_metadata()


@pytest.fixture(scope="module")
def jwks(metadata):
    return requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()


def code_flow(auth_method):
    """Runs authlib's code flow (PKCE S256, state, nonce) and returns what a web app keeps."""
    rp = relying_party(auth_method)
    browser = Browser()
    auth = rp.create_authorization_url(redirect_uri=REDIRECT_URI)
    query = parse_qs(urlsplit(auth["url"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    callback = browser.authorize(auth["url"])
    params = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT_URI + "?")
    assert params["state"] == [auth["state"]], "state comes back unchanged"
    assert params["iss"] == [ISSUER], "RFC 9207 iss in the authorization response"

    RecordingSession.sent.clear()
    # authlib checks state again here, and sends the PKCE verifier with the code.
    token = rp.fetch_access_token(
        redirect_uri=REDIRECT_URI,
        authorization_response=callback,
        state=auth["state"],
        code_verifier=auth["code_verifier"],
    )
    token_requests = [r for r in RecordingSession.sent if r.url == rp.server_metadata["token_endpoint"]]
    return rp, browser, auth, token, token_requests


@pytest.fixture(scope="module", params=["client_secret_basic", "client_secret_post"])
def flow(request):
    return (request.param, *code_flow(request.param))


def assert_client_auth(req, auth_method):
    """The token request authenticated the way the client is registered."""
    client_id, client_secret = CLIENTS[auth_method]
    body = parse_qs(req.body if isinstance(req.body, str) else req.body.decode())
    if auth_method == "client_secret_basic":
        expected = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        assert req.headers.get("Authorization") == f"Basic {expected}"
        assert "client_secret" not in body
    else:
        assert "Authorization" not in req.headers
        assert body["client_id"] == [client_id] and body["client_secret"] == [client_secret]


# --- tests --------------------------------------------------------------------------------


def test_discovery_document_is_valid_openid_provider_metadata(metadata):
    """authlib's own OpenID Provider Metadata validation accepts the discovery document."""
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == ISSUER
    assert "S256" in metadata["code_challenge_methods_supported"]
    for method in CLIENTS:
        assert method in metadata["token_endpoint_auth_methods_supported"]


def test_code_flow_with_pkce(flow):
    """Code + PKCE: login and consent pages, then tokens, with the registered client auth."""
    auth_method, rp, browser, auth, token, token_requests = flow
    assert browser.visited == ["login", "consent"]
    assert len(token_requests) == 1
    assert_client_auth(token_requests[0], auth_method)
    body = parse_qs(token_requests[0].body)
    assert body["code_verifier"] == [auth["code_verifier"]]
    assert token["token_type"].lower() == "bearer"
    assert token["access_token"] and token["refresh_token"] and token["id_token"]
    assert sorted(token["scope"].split()) == sorted(SCOPE.split())


def test_id_token_validated_by_authlib(flow):
    """authlib's parse_id_token: JWKS signature, iss, aud, nonce, exp, at_hash."""
    auth_method, rp, _, auth, token, _ = flow
    claims = rp.parse_id_token(token, nonce=auth["nonce"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == USER["sub"]
    assert claims["aud"] == rp.client_id or claims["aud"] == [rp.client_id]
    assert claims["nonce"] == auth["nonce"]
    assert claims["exp"] > time.time() >= claims["iat"] - 5


def test_id_token_checks_are_real(flow, metadata, jwks):
    """The same validation by hand with authlib's CodeIDToken claims over joserfc (authlib's
    JOSE library): it passes, and fails for a wrong nonce, a wrong audience or a bad signature."""
    _, rp, _, auth, token, _ = flow
    registry = JWSRegistry(algorithms=metadata["id_token_signing_alg_values_supported"])
    keys = KeySet.import_key_set(jwks)

    def validate(id_token, nonce=auth["nonce"], client_id=rp.client_id):
        decoded = jwt.decode(id_token, keys, registry=registry)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "values": [ISSUER]}},
            {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
        )
        claims.validate(leeway=60)
        return decoded

    decoded = validate(token["id_token"])
    assert decoded.header["alg"] == "RS256" and decoded.header.get("kid")
    assert any(k.get("kid") == decoded.header["kid"] for k in jwks["keys"])

    with pytest.raises(InvalidClaimError):
        validate(token["id_token"], nonce="some-other-nonce")
    with pytest.raises(InvalidClaimError):
        validate(token["id_token"], client_id="some-other-client")
    header, payload, signature = token["id_token"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        validate(f"{header}.{forged_payload}.{signature}")


def test_userinfo(flow):
    """authlib's userinfo() with the access token returns the profile and email claims."""
    _, rp, _, _, token, _ = flow
    info = rp.userinfo(token=token)
    assert info["sub"] == USER["sub"]
    assert info["name"] == USER["name"]
    assert info["email"] == USER["email"]
    assert info["email_verified"] is True


def test_refresh_rotates(flow, metadata):
    """Refresh with the registered client auth: a new refresh token; a retry of the old one
    within the reuse grace (LATCHKEY_REFRESH_TOKEN_REUSE_GRACE, 10 s by default) gets the same
    successor; once the family moved on again, the old one is refused."""
    auth_method, _, _, _, token, _ = flow
    session = token_session(auth_method)
    RecordingSession.sent.clear()
    renewed = session.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert_client_auth(RecordingSession.sent[-1], auth_method)
    assert renewed["access_token"] != token["access_token"]
    assert renewed["refresh_token"] and renewed["refresh_token"] != token["refresh_token"]
    info = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
        timeout=TIMEOUT,
    )
    assert info.status_code == 200 and info.json()["sub"] == USER["sub"]

    retried = token_session(auth_method).refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert retried["refresh_token"] == renewed["refresh_token"]
    token_session(auth_method).refresh_token(metadata["token_endpoint"], refresh_token=renewed["refresh_token"])
    with pytest.raises(OAuthError) as err:
        token_session(auth_method).refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert err.value.error == "invalid_grant"


@pytest.mark.parametrize("auth_method", list(CLIENTS))
def test_client_credentials(auth_method, metadata):
    """client_credentials: an access token for the client itself, no refresh or ID token."""
    session = token_session(auth_method)
    RecordingSession.sent.clear()
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="interop.read")
    assert_client_auth(RecordingSession.sent[-1], auth_method)
    assert token["access_token"] and token["token_type"].lower() == "bearer"
    assert "refresh_token" not in token and "id_token" not in token
    assert token["scope"] == "interop.read"
    client_id, _ = CLIENTS[auth_method]
    intro = session.introspect_token(metadata["introspection_endpoint"], token=token["access_token"]).json()
    assert intro["active"] is True
    assert intro["client_id"] == client_id and intro["sub"] == client_id


def test_wrong_client_secret_is_invalid_client(metadata):
    """A wrong secret fails client authentication with invalid_client (RFC 6749 §5.2)."""
    client_id, _ = CLIENTS["client_secret_basic"]
    session = RecordingSession(client_id, "not-the-secret", token_endpoint_auth_method="client_secret_basic")
    with pytest.raises(OAuthError) as err:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert err.value.error == "invalid_client"
