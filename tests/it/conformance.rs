//! A conformance battery modelled on the OpenID Foundation conformance suite: one test per
//! module of `oidcc-basic-certification-test-plan` and `oidcc-config-certification-test-plan`
//! (code flow, static client), plus the modules of the comprehensive OIDCC plan that apply to a
//! code-only server with admin-API registration, and the PKCE and RFC 9207 `iss` checks of the
//! FAPI 2.0 Security Profile plan. Each test is named after its module (dashes become
//! underscores) and says what the module checks. Modules that do not apply (implicit, hybrid,
//! request objects, dynamic registration, ...) are listed in `tests/interop/README.md`.
//!
//! Like the suite, the battery is a relying party that trusts nothing but discovery: every ID
//! token goes through `validate_id_token` (signature against `jwks_uri`, `iss`, `aud`, `azp`,
//! `exp`, `iat`, `nonce`, `auth_time`, `at_hash`). It runs on Postgres only: the storage
//! behaviour underneath is the same on both backends and is covered elsewhere.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{
    Backend, Browser, PASSWORD, Step, TestApp, TestClient, authorize_params, code_form, fetch_json,
    pkce_pair, pkce_params, query_of, spawn_app,
};

// ---------------------------------------------------------------------------------------------
// Shared set-up and relying-party helpers
// ---------------------------------------------------------------------------------------------

const STATE: &str = "conformance-state-8f1a";
const NONCE: &str = "conformance-nonce-27c4";

/// A fresh server on Postgres with the user `alice` (every standard claim set) and the
/// confidential web client of `TestApp::create_web_client` (`client_secret_basic`).
async fn battery() -> (TestApp, TestClient) {
    let app = spawn_app(Backend::Postgres).await;
    create_alice(&app).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    (app, client)
}

async fn create_alice(app: &TestApp) -> Value {
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/admin/users",
            Some(&json!({
                "username": "alice",
                "password": PASSWORD,
                "name": "Alice Example",
                "given_name": "Alice",
                "family_name": "Example",
                "nickname": "ali",
                "website": "https://alice.example.test/",
                "gender": "female",
                "birthdate": "1990-04-01",
                "zoneinfo": "Europe/Berlin",
                "locale": "en-US",
                "email": "alice@example.test",
                "email_verified": true,
                "phone_number": "+1 555 0100",
                "phone_number_verified": true,
                "address": {
                    "street_address": "1 Main Street",
                    "locality": "Springfield",
                    "postal_code": "12345",
                    "country": "US",
                },
            })),
        )
        .await;
    assert_eq!(status, 201, "user creation failed: {body}");
    body
}

/// The parameters every request of the suite's "CreateAuthorizationEndpointRequest" carries:
/// the usual request of `client`, with the battery's `state` and `nonce`, then `extra`.
fn auth_params<'a>(
    client: &'a TestClient,
    scope: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = authorize_params(client, scope, &[("state", STATE), ("nonce", NONCE)]);
    params.extend_from_slice(extra);
    params
}

/// `params` with the value of `key` replaced by `value`, for the modules that send one
/// parameter wrong.
fn with_param<'a>(
    params: Vec<(&'a str, &'a str)>,
    key: &str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    params
        .into_iter()
        .map(|(k, v)| if k == key { (k, value) } else { (k, v) })
        .collect()
}

/// `params` without `key`, for the modules that leave one parameter out.
fn without_param<'a>(params: Vec<(&'a str, &'a str)>, key: &str) -> Vec<(&'a str, &'a str)> {
    params.into_iter().filter(|(k, _)| *k != key).collect()
}

/// Where the browser ended up after an authorization request, and what it was shown.
struct Flow {
    query: HashMap<String, String>,
    location: String,
    login_shown: bool,
    consent_shown: bool,
}

/// Follows an authorization response through the login page (as alice) and the consent page
/// (allow) to the client's redirect URI.
async fn drive(browser: &Browser<'_>, step: Step, redirect_uri: &str) -> Flow {
    assert_eq!(step.status, 303, "authorization endpoint: {}", step.body);
    let mut location = step.location.expect("a redirect");
    let mut login_shown = false;
    let mut consent_shown = false;
    if location.starts_with("/login") {
        login_shown = true;
        let step = browser.login(&location, "alice", PASSWORD).await;
        assert_eq!(step.status, 303, "login: {}", step.body);
        location = step.location.expect("login redirects");
    }
    if location.starts_with("/consent") {
        consent_shown = true;
        let (_, answer) = browser.consent(&location, "allow").await;
        assert_eq!(answer.status, 303, "consent: {}", answer.body);
        location = answer.location.expect("consent redirects");
    }
    assert!(
        location.starts_with(redirect_uri),
        "expected a redirect to {redirect_uri}, got {location}"
    );
    Flow {
        query: query_of(&location),
        location,
        login_shown,
        consent_shown,
    }
}

/// GET /authorize with `params`, then `drive`.
async fn authorize(browser: &Browser<'_>, params: &[(&str, &str)], redirect_uri: &str) -> Flow {
    drive(browser, browser.authorize(params).await, redirect_uri).await
}

/// The battery's request for `openid` with an S256 PKCE `challenge`, followed to the client.
async fn authorize_with_pkce(browser: &Browser<'_>, client: &TestClient, challenge: &str) -> Flow {
    let params = auth_params(client, "openid", &pkce_params(challenge));
    authorize(browser, &params, &client.redirect_uri).await
}

/// The suite's "CheckMatchingStateParameter" and RFC 9207 check on a successful response.
fn assert_code_response(app: &TestApp, query: &HashMap<String, String>, state: Option<&str>) {
    assert!(
        !query.contains_key("error"),
        "authorization failed: {query:?}"
    );
    assert!(query.contains_key("code"), "no code: {query:?}");
    assert_eq!(query.get("state").map(String::as_str), state, "state");
    assert_eq!(query["iss"], app.base, "RFC 9207 iss");
}

/// An error redirected to the client: the error code, `state` echoed, `iss` (RFC 9207), and no
/// code.
fn assert_error_redirect(app: &TestApp, step: &Step, redirect_uri: &str, error: &str) {
    assert_eq!(step.status, 303, "expected a redirect: {}", step.body);
    let location = step.location.as_deref().unwrap();
    assert!(
        location.starts_with(redirect_uri),
        "redirected to {location}"
    );
    let q = query_of(location);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some(STATE), "{q:?}");
    assert_eq!(q.get("iss"), Some(&app.base), "{q:?}");
    assert!(!q.contains_key("code"), "{q:?}");
    if let Some(description) = q.get("error_description") {
        // RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E.
        assert!(
            description
                .chars()
                .all(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~')),
            "error_description has characters RFC 6749 forbids: {description}"
        );
    }
}

/// An error shown to the user: HTTP 400, an HTML page, no redirect anywhere.
fn assert_error_page(step: &Step, what: &str) {
    assert_eq!(step.status, 400, "{what}: {}", step.body);
    assert!(step.location.is_none(), "{what}: must not redirect");
    let content_type = step.headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "{what}: {content_type}"
    );
}

/// The token request of the suite's "CreateTokenEndpointRequestForAuthorizationCodeGrant"
/// (client authentication as registered), with the suite's token response checks.
async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let form = code_form(client, code, verifier);
    let (status, body, headers) = app.token(client, &form).await;
    if status == 200 {
        check_token_response(&body, &headers);
    }
    (status, body)
}

/// RFC 6749 §5.1 and OpenID Connect Core §3.1.3.3: a Bearer token, `expires_in`, JSON, never
/// cached.
fn check_token_response(body: &Value, headers: &reqwest::header::HeaderMap) {
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "{body}");
    let content_type = headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(
        cache.split(',').any(|d| d.trim() == "no-store"),
        "Cache-Control: {cache}"
    );
    if let Some(pragma) = headers.get("pragma") {
        assert_eq!(pragma, "no-cache");
    }
}

/// What `validate_id_token` expects of `nonce`.
#[derive(Clone, Copy)]
enum Nonce<'a> {
    /// The request carried this nonce: the ID token must repeat it (Core §3.1.3.7 step 11).
    Is(&'a str),
    /// No nonce was sent: none may appear.
    Absent,
    /// A refreshed ID token (Core §12.2): if present, the original value.
    AbsentOr(&'a str),
}

/// The JWKS at `jwks_uri` (from discovery), checked like the suite's "ValidateServerJWKs",
/// "CheckForKeyIdInServerJWKs", "CheckDistinctKeyIdValueInServerJWKs" and
/// "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys".
async fn fetch_jwks(app: &TestApp) -> (Value, JwkSet) {
    let discovery = app.discovery().await;
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let response = app.http.get(jwks_uri).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json")
            || content_type.starts_with("application/jwk-set+json"),
        "JWKS content type {content_type}"
    );
    let raw: Value = response.json().await.unwrap();
    let keys = raw["keys"].as_array().expect("a JWK Set has keys");
    assert!(!keys.is_empty(), "JWKS is empty");
    let mut kids = BTreeSet::new();
    for key in keys {
        let kid = key["kid"].as_str().expect("every key has a kid");
        assert!(kids.insert(kid.to_owned()), "kid {kid} appears twice");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["alg"].is_string(), "{key}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "JWKS publishes `{private}`: {key}"
            );
        }
        match key["kty"].as_str().unwrap() {
            "RSA" => {
                let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
                assert!(n.len() >= 256, "RSA keys have at least 2048 bits");
                assert_eq!(key["alg"], "RS256");
            }
            "EC" => {
                assert_eq!(key["crv"], "P-256");
                assert_eq!(key["alg"], "ES256");
            }
            "OKP" => {
                assert_eq!(key["crv"], "Ed25519");
                assert_eq!(key["alg"], "EdDSA");
            }
            other => panic!("unexpected key type {other}"),
        }
    }
    let set: JwkSet = serde_json::from_value(raw.clone()).expect("JWKS parses");
    (raw, set)
}

/// `at_hash` as OpenID Connect Core §3.1.3.6 defines it: the left half of the hash of the
/// access token, with the hash of the ID token's `alg` (SHA-512 for EdDSA with Ed25519).
fn expected_at_hash(alg: Algorithm, access_token: &str) -> String {
    match alg {
        Algorithm::RS256 | Algorithm::ES256 => {
            URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
        }
        Algorithm::EdDSA => {
            URL_SAFE_NO_PAD.encode(&sha2::Sha512::digest(access_token.as_bytes())[..32])
        }
        other => panic!("unexpected ID token algorithm {other:?}"),
    }
}

/// Validates an ID token the way OpenID Connect Core §3.1.3.7 tells a relying party to (and
/// the suite's "ValidateIdToken", "ValidateIdTokenNonce", "ValidateIdTokenSignature",
/// "ValidateIdTokenSignatureUsingKid", "CheckForSubjectInIdToken", "ValidateAtHash"), with
/// nothing but discovery and the JWKS. Returns the claims.
async fn validate_id_token(
    app: &TestApp,
    id_token: &str,
    client_id: &str,
    nonce: Nonce<'_>,
    access_token: Option<&str>,
) -> Value {
    let discovery = app.discovery().await;
    let issuer = discovery["issuer"].as_str().unwrap();
    assert_eq!(issuer, app.base);

    // The header: a real signature algorithm (decode_header refuses `none`), the one the
    // discovery document advertises, and the key it was made with.
    let header = jsonwebtoken::decode_header(id_token).expect("a JWS header with a known alg");
    let alg_name = serde_json::to_value(header.alg).unwrap();
    assert!(
        discovery["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&alg_name),
        "alg {alg_name} is not advertised"
    );
    if let Some(typ) = &header.typ {
        assert!(typ.eq_ignore_ascii_case("JWT"), "typ {typ}");
    }
    let kid = header
        .kid
        .as_deref()
        .expect("the ID token names its key (kid)");
    let (_, jwks) = fetch_jwks(app).await;
    let jwk = jwks.find(kid).expect("the kid is published at jwks_uri");
    assert_eq!(
        serde_json::to_value(jwk.common.key_algorithm).unwrap(),
        alg_name,
        "the JWK's alg matches the header's"
    );

    // Signature, iss, aud.
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    validation.validate_exp = false; // checked below against the server's (test) clock
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("the ID token verifies against the JWKS")
        .claims;

    // Core §2 and §3.1.3.7.
    assert_eq!(claims["iss"], issuer);
    match &claims["aud"] {
        Value::String(aud) => assert_eq!(aud, client_id),
        Value::Array(auds) => {
            assert!(auds.contains(&json!(client_id)), "{claims}");
            if auds.len() > 1 {
                assert!(claims.get("azp").is_some(), "several audiences need azp");
            }
        }
        other => panic!("aud is {other}"),
    }
    if let Some(azp) = claims.get("azp") {
        assert_eq!(azp, client_id, "azp");
    }
    let sub = claims["sub"].as_str().expect("sub is a string");
    assert!(
        !sub.is_empty() && sub.len() <= 255 && sub.is_ascii(),
        "sub {sub}"
    );
    let now = app.app.now();
    let iat = claims["iat"].as_i64().expect("iat is a number");
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!(exp > iat, "exp {exp} must be after iat {iat}");
    assert!(exp > now, "the ID token has expired");
    assert!((iat - now).abs() <= 5, "iat {iat} is not now ({now})");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time is present");
    assert!(auth_time <= iat, "auth_time {auth_time} after iat {iat}");
    match nonce {
        Nonce::Is(n) => assert_eq!(claims["nonce"], n, "nonce"),
        Nonce::Absent => assert!(claims.get("nonce").is_none(), "unexpected nonce"),
        Nonce::AbsentOr(n) => {
            if let Some(v) = claims.get("nonce") {
                assert_eq!(v, n, "a refreshed ID token repeats the original nonce");
            }
        }
    }
    if let Some(access_token) = access_token {
        assert_eq!(
            claims["at_hash"].as_str().expect("at_hash is present"),
            expected_at_hash(header.alg, access_token),
            "at_hash"
        );
    }
    // Code flow: c_hash is not required (it matters only when the ID token comes from the
    // authorization endpoint).
    claims
}

/// The outcome of a complete, validated code flow.
struct Completed {
    tokens: Value,
    id: Value,
    flow: Flow,
}

impl Completed {
    fn access_token(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }
    fn id_token(&self) -> &str {
        self.tokens["id_token"].as_str().unwrap()
    }
}

/// The suite's happy path ("oidcc-server" and everything built on it): authorize with state
/// and nonce, log in and consent as needed, redeem the code, validate the token response and
/// the ID token.
async fn complete_flow(
    app: &TestApp,
    browser: &Browser<'_>,
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> Completed {
    let flow = authorize(
        browser,
        &auth_params(client, scope, extra),
        &client.redirect_uri,
    )
    .await;
    finish_flow(app, client, flow, None, Nonce::Is(NONCE)).await
}

/// Checks the authorization response, redeems its code and validates the tokens.
async fn finish_flow(
    app: &TestApp,
    client: &TestClient,
    flow: Flow,
    verifier: Option<&str>,
    nonce: Nonce<'_>,
) -> Completed {
    assert_code_response(app, &flow.query, Some(STATE));
    let (status, tokens) = redeem(app, client, &flow.query["code"], verifier).await;
    assert_eq!(status, 200, "token endpoint: {tokens}");
    let id_token = tokens["id_token"].as_str().expect("an ID token for openid");
    let access_token = tokens["access_token"].as_str().unwrap();
    let id = validate_id_token(app, id_token, &client.client_id, nonce, Some(access_token)).await;
    Completed { tokens, id, flow }
}

/// How userinfo is asked (the three `oidcc-userinfo-*` modules).
#[derive(Clone, Copy)]
enum UserinfoCall {
    Get,
    PostHeader,
    PostBody,
}

/// Calls userinfo with `access_token`; returns the status and the JSON body.
async fn userinfo(app: &TestApp, access_token: &str, how: UserinfoCall) -> (u16, Value) {
    let endpoint = app.discovery().await["userinfo_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = match how {
        UserinfoCall::Get => app.http.get(&endpoint).bearer_auth(access_token),
        UserinfoCall::PostHeader => app.http.post(&endpoint).bearer_auth(access_token),
        UserinfoCall::PostBody => app
            .http
            .post(&endpoint)
            .form(&[("access_token", access_token)]),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "userinfo is plain JSON: {content_type}"
        );
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Userinfo for a completed flow; its `sub` must be the ID token's (Core §5.3.2).
async fn userinfo_of(app: &TestApp, done: &Completed) -> Value {
    let (status, info) = userinfo(app, done.access_token(), UserinfoCall::Get).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info["sub"], done.id["sub"],
        "userinfo sub is the ID token's"
    );
    info
}

/// The claims each standard scope releases (Core §5.4) that alice has values for.
fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "given_name",
            "family_name",
            "nickname",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

const STANDARD_SCOPES: [&str; 4] = ["profile", "email", "address", "phone"];

/// The suite's scope modules: userinfo releases the claims of each granted scope and none of
/// the others; the ID token (code flow) carries no user claims.
async fn check_scopes(granted: &[&str]) {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let scope = format!("openid {}", granted.join(" "));
    let done = complete_flow(&app, &browser, &client, &scope, &[]).await;
    let info = userinfo_of(&app, &done).await;
    for s in STANDARD_SCOPES {
        for claim in scope_claims(s) {
            if granted.contains(&s) {
                assert!(
                    info.get(*claim).is_some(),
                    "{s}: userinfo lacks {claim}: {info}"
                );
            } else {
                assert!(info.get(*claim).is_none(), "{claim} released without {s}");
            }
            assert!(done.id.get(*claim).is_none(), "{claim} in the ID token");
        }
    }
    if granted.contains(&"email") {
        assert_eq!(info["email"], "alice@example.test");
        assert_eq!(info["email_verified"], true);
    }
    if granted.contains(&"address") {
        assert_eq!(info["address"]["locality"], "Springfield");
        assert_eq!(info["address"]["country"], "US");
    }
    if granted.contains(&"phone") {
        assert_eq!(info["phone_number"], "+1 555 0100");
        assert_eq!(info["phone_number_verified"], true);
    }
    if granted.contains(&"profile") {
        assert_eq!(info["name"], "Alice Example");
    }
}

/// The status of a GET /userinfo with `token` (200 active, 401 revoked or expired).
async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    userinfo(app, token, UserinfoCall::Get).await.0
}

async fn refresh(app: &TestApp, client: &TestClient, refresh_token: &str) -> (u16, Value) {
    let (status, body, headers) = app
        .token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    if status == 200 {
        check_token_response(&body, &headers);
    }
    (status, body)
}

/// An unsigned request object (JWS with `alg: none`, as the suite's
/// "SerializeRequestObjectWithNullAlgorithm" builds it).
fn unsigned_request_object(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// A second confidential client with its own redirect URI.
async fn second_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Second Conformance Client",
            "redirect_uris": ["https://second.example.test/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile email offline_access",
        }))
        .await,
    )
}

/// A public client (PKCE required).
async fn public_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Public Conformance Client",
            "redirect_uris": ["http://127.0.0.1:7777/callback"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile",
        }))
        .await,
    )
}

// ---------------------------------------------------------------------------------------------
// oidcc-basic-certification-test-plan (Basic OP), in the plan's order
// ---------------------------------------------------------------------------------------------

/// oidcc-server (OP-Response-code): the happy path of the code flow with `client_secret_basic`.
/// The authorization response carries the code, the unchanged `state` and `iss`; the token
/// response is a no-store Bearer response with an access token and an ID token that passes
/// every relying-party check (signature from `jwks_uri`, `iss`, `aud`, `azp`, `exp`, `iat`,
/// `nonce`, `auth_time`, `at_hash`); userinfo answers for the same `sub`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_server() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    assert!(done.flow.login_shown && done.flow.consent_shown);
    assert_eq!(done.tokens["scope"], "openid");
    assert!(done.id.get("c_hash").is_none() || done.id["c_hash"].is_string());
    userinfo_of(&app, &done).await;
}

/// oidcc-server-client-secret-post (OP-ClientAuth-SecretPost): the same happy path with a
/// client registered for `client_secret_post`, authenticating with `client_id` and
/// `client_secret` in the token request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_server_client_secret_post() {
    let app = spawn_app(Backend::Postgres).await;
    create_alice(&app).await;
    let registration = app
        .create_client(json!({
            "client_name": "Secret Post Client",
            "redirect_uris": ["https://post.example.test/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "openid email",
        }))
        .await;
    assert_eq!(
        registration["token_endpoint_auth_method"],
        "client_secret_post"
    );
    let client = TestClient::from_registration(&registration);
    let secret = client.secret.clone().unwrap();
    let browser = Browser::new(&app);
    let flow = authorize(
        &browser,
        &auth_params(&client, "openid email", &[]),
        &client.redirect_uri,
    )
    .await;
    assert_code_response(&app, &flow.query, Some(STATE));
    let response = app
        .http
        .post(app.discovery().await["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", flow.query["code"].as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let tokens: Value = response.json().await.unwrap();
    check_token_response(&tokens, &headers);
    validate_id_token(
        &app,
        tokens["id_token"].as_str().unwrap(),
        &client.client_id,
        Nonce::Is(NONCE),
        tokens["access_token"].as_str(),
    )
    .await;
}

/// oidcc-response-type-missing (OP-Response-Missing): an authorization request without
/// `response_type` must fail; the error goes back to the (valid) redirect URI as
/// `invalid_request` (or `unsupported_response_type`) with `state`, never as a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_response_type_missing() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = without_param(auth_params(&client, "openid", &[]), "response_type");
    let step = browser.authorize(&params).await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// oidcc-idtoken-signature (OP-IDToken-Signature, OP-IDToken-kid): the ID token is signed with
/// an advertised algorithm, names its key with `kid`, and verifies against that key from
/// `jwks_uri`; a changed payload no longer verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_idtoken_signature() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    // The validator really checks the signature: a forged payload fails.
    let id_token = done.id_token();
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut forged = done.id.clone();
    forged["sub"] = json!("somebody-else");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let forged = parts.join(".");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let (_, jwks) = fetch_jwks(&app).await;
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client.client_id.as_str()]);
    validation.validate_exp = false;
    assert!(jsonwebtoken::decode::<Value>(id_token, &key, &validation).is_ok());
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());
}

/// oidcc-idtoken-unsigned (OP-IDToken-none): a client asking for unsigned ID tokens. Latchkey
/// does not issue them: discovery does not advertise `none`, and registering
/// `id_token_signed_response_alg: none` is refused with `invalid_client_metadata` (so no
/// unsigned ID token can ever be requested).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_idtoken_unsigned() {
    let app = spawn_app(Backend::Postgres).await;
    let discovery = app.discovery().await;
    let algs = discovery["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        !algs
            .iter()
            .any(|a| a.as_str().unwrap().eq_ignore_ascii_case("none"))
    );
    for alg in ["none", "None", "HS256"] {
        let (status, body) = app
            .admin(
                reqwest::Method::POST,
                "/admin/clients",
                Some(&json!({
                    "redirect_uris": ["https://app.example.test/callback"],
                    "scope": "openid",
                    "id_token_signed_response_alg": alg,
                })),
            )
            .await;
        assert_eq!(status, 400, "{alg}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{alg}");
    }
}

/// oidcc-userinfo-get (OP-UserInfo-Endpoint): userinfo with GET and the access token in the
/// `Authorization: Bearer` header answers JSON for the ID token's `sub`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_get() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::Get).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-userinfo-post-header (OP-UserInfo-Header): userinfo with POST and the access token in
/// the `Authorization: Bearer` header (no body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_post_header() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::PostHeader).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-userinfo-post-body (OP-UserInfo-Body): userinfo with POST and the access token as the
/// `access_token` form parameter (RFC 6750 §2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_post_body() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::PostBody).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-ensure-request-without-nonce-succeeds-for-code-flow (OP-nonce-NoReq-code): `nonce` is
/// optional in the code flow; the request succeeds and the ID token then has no `nonce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = without_param(auth_params(&client, "openid", &[]), "nonce");
    let flow = authorize(&browser, &params, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Absent).await;
}

/// oidcc-scope-profile (OP-scope-profile): `openid profile` releases the profile claims at
/// userinfo, and nothing of the other scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_profile() {
    check_scopes(&["profile"]).await;
}

/// oidcc-scope-email (OP-scope-email): `openid email` releases `email` and `email_verified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_email() {
    check_scopes(&["email"]).await;
}

/// oidcc-scope-address (OP-scope-address): `openid address` releases the `address` object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_address() {
    check_scopes(&["address"]).await;
}

/// oidcc-scope-phone (OP-scope-phone): `openid phone` releases `phone_number` and
/// `phone_number_verified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_phone() {
    check_scopes(&["phone"]).await;
}

/// oidcc-scope-all (OP-scope-All): all four standard scopes at once release all their claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_all() {
    check_scopes(&STANDARD_SCOPES).await;
}

/// oidcc-ensure-other-scope-order-succeeds: scope order does not matter (RFC 6749 §3.3):
/// `email openid` works like `openid email`, and the second request reuses the consent given
/// to the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let second = complete_flow(&app, &browser, &client, "email openid", &[]).await;
    assert!(
        !second.flow.consent_shown,
        "same scopes, other order: no new consent"
    );
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(
        userinfo_of(&app, &second).await["email"],
        "alice@example.test"
    );
}

/// oidcc-display-page (OP-display-page): `display=page` is accepted and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_display_page() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("display", "page")]).await;
    assert!(done.flow.login_shown);
}

/// oidcc-display-popup (OP-display-popup): `display=popup` is accepted and the flow
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_display_popup() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("display", "popup")]).await;
    assert!(done.flow.login_shown);
}

/// oidcc-prompt-login (OP-prompt-login): with a session, a second request with `prompt=login`
/// shows the login page again, and the new ID token's `auth_time` differs from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_login() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(5);
    let second = complete_flow(&app, &browser, &client, "openid", &[("prompt", "login")]).await;
    assert!(second.flow.login_shown, "prompt=login asks to log in again");
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_ne!(
        second.id["auth_time"], first.id["auth_time"],
        "a new authentication"
    );
}

/// oidcc-prompt-none-not-logged-in (OP-prompt-none-NotLoggedIn): `prompt=none` without a
/// session must not show a page; it answers `login_required` at the redirect URI (with
/// `state`), never a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_none_not_logged_in() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("prompt", "none")]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "login_required");
}

/// oidcc-prompt-none-logged-in (OP-prompt-none-LoggedIn): after a first login, `prompt=none`
/// succeeds at once without any page, for the same `sub` and the same `auth_time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_none_logged_in() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(3);
    let second = complete_flow(&app, &browser, &client, "openid", &[("prompt", "none")]).await;
    assert!(!second.flow.login_shown && !second.flow.consent_shown);
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
}

/// oidcc-max-age-1 (OP-Req-max_age=1): two seconds after a login, a request with `max_age=1`
/// must make the user log in again, and the second ID token carries an `auth_time` that is
/// later than the first and recent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_max_age_1() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(2);
    let second = complete_flow(&app, &browser, &client, "openid", &[("max_age", "1")]).await;
    assert!(second.flow.login_shown, "the session is older than max_age");
    let first_time = first.id["auth_time"].as_i64().unwrap();
    let second_time = second.id["auth_time"].as_i64().unwrap();
    assert!(
        second_time > first_time,
        "auth_time of the second login is later"
    );
    assert!(
        (second_time - app.app.now()).abs() <= 2,
        "auth_time is recent"
    );
}

/// oidcc-max-age-10000 (OP-Req-max_age=10000): a request with `max_age=10000` shortly after a
/// login reuses the session (no login page), and the ID token carries the original
/// `auth_time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_max_age_10000() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(5);
    let second = complete_flow(&app, &browser, &client, "openid", &[("max_age", "10000")]).await;
    assert!(!second.flow.login_shown);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
}

/// oidcc-ensure-request-with-unknown-parameter-succeeds (OP-Req-NotUnderstood): parameters the
/// server does not understand are ignored (RFC 6749 §3.1), not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    complete_flow(
        &app,
        &browser,
        &client,
        "openid",
        &[("extra_parameter_the_server_does_not_know", "some value")],
    )
    .await;
}

/// oidcc-id-token-hint (OP-Req-id_token_hint): a second request with `prompt=none` and the
/// first ID token as `id_token_hint` succeeds without interaction, with the same `sub` and
/// `auth_time`. Also: an ID token that has since expired is still a valid hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_id_token_hint() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let hint = first.id_token().to_owned();
    let extra = [("prompt", "none"), ("id_token_hint", hint.as_str())];
    let second = complete_flow(&app, &browser, &client, "openid", &extra).await;
    assert!(!second.flow.login_shown && !second.flow.consent_shown);
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
    // The hint has expired, the session has not.
    let lifetime = first.id["exp"].as_i64().unwrap() - app.app.now();
    app.clock.advance(lifetime + 60);
    let third = complete_flow(&app, &browser, &client, "openid", &extra).await;
    assert_eq!(third.id["sub"], first.id["sub"]);
}

/// oidcc-login-hint (OP-Req-login_hint): `login_hint` is accepted; the login page offers the
/// hinted user name, and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_login_hint() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = auth_params(&client, "openid", &[("login_hint", "alice")]);
    let step = browser.authorize(&params).await;
    let location = step.location.clone().unwrap();
    assert!(location.starts_with("/login"), "{location}");
    let page = browser.get(&location).await;
    assert!(
        page.body.contains(r#"name="username""#) && page.body.contains(r#"value="alice""#),
        "the login page prefills the hint"
    );
    let flow = drive(&browser, step, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-ui-locales (OP-Req-ui_locales): `ui_locales` is accepted; Latchkey renders its pages
/// in the first supported language of the list (here German), and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ui_locales() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = auth_params(&client, "openid", &[("ui_locales", "fr-CA de en")]);
    let step = browser.authorize(&params).await;
    let location = step.location.clone().unwrap();
    let page = browser.get(&location).await;
    assert!(
        page.body.contains(r#"<html lang="de">"#),
        "German login page"
    );
    let flow = drive(&browser, step, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-claims-locales (OP-Req-claims_locales): `claims_locales` is accepted (Latchkey holds
/// one value per claim, so it has nothing to choose) and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_claims_locales() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(
        &app,
        &browser,
        &client,
        "openid profile",
        &[("claims_locales", "de fr")],
    )
    .await;
    assert_eq!(userinfo_of(&app, &done).await["name"], "Alice Example");
}

/// oidcc-ensure-request-with-acr-values-succeeds (OP-Req-acr_values): `acr_values` must not
/// make the request fail (Core §15.1). The suite only warns when the ID token's `acr` is not
/// one of the requested values; Latchkey answers `acr` "0" (no assurance claimed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("acr_values", "1 2")]).await;
    if let Some(acr) = done.id.get("acr") {
        assert!(acr.is_string(), "acr is a string: {acr}");
    }
}

/// oidcc-codereuse (OP-OAuth-2nd): a code can be redeemed once; the second attempt fails with
/// `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_codereuse() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let (status, body) = redeem(&app, &client, &done.flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-codereuse-30seconds (OP-OAuth-2nd-30s, OP-OAuth-2nd-Revokes): a code redeemed again 30
/// seconds later (still within its lifetime) fails with `invalid_grant`, and the tokens issued
/// from it are revoked (RFC 6749 §4.1.2): the access token no longer works at userinfo, the
/// refresh token no longer refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_codereuse_30seconds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid offline_access", &[]).await;
    assert_eq!(userinfo_status(&app, done.access_token()).await, 200);
    app.clock.advance(30);
    let (status, body) = redeem(&app, &client, &done.flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        userinfo_status(&app, done.access_token()).await,
        401,
        "revoked"
    );
    let refresh_token = done.tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-ensure-registered-redirect-uri (OP-redirect_uri-NotReg): an unregistered redirect URI
/// gets an error page, and the browser is never sent to it (nor anywhere else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_registered_redirect_uri() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let bad = "https://app.example.test/callback-not-registered-a7b3";
    let params = with_param(auth_params(&client, "openid", &[]), "redirect_uri", bad);
    let step = browser.authorize(&params).await;
    assert_error_page(&step, "unregistered redirect_uri");
}

/// oidcc-ensure-post-request-succeeds: the authorization request sent as an
/// `application/x-www-form-urlencoded` POST (Core §3.1.2.1) works like GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_post_request_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let endpoint = app.discovery().await["authorization_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = endpoint.strip_prefix(&app.base).unwrap().to_owned();
    let step = browser
        .post_form(&path, &auth_params(&client, "openid email", &[]))
        .await;
    let flow = drive(&browser, step, &client.redirect_uri).await;
    assert!(flow.login_shown && flow.consent_shown);
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported
/// (OP-request_uri-Unsigned): a `request_uri` must either work or be refused with
/// `request_uri_not_supported` (Core §6.2); Latchkey advertises
/// `request_uri_parameter_supported: false` and refuses it at the redirect URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    let (app, client) = battery().await;
    assert_eq!(
        app.discovery().await["request_uri_parameter_supported"],
        false
    );
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request_uri", "https://app.example.test/request.jwt")],
        ))
        .await;
    assert_error_redirect(
        &app,
        &step,
        &client.redirect_uri,
        "request_uri_not_supported",
    );
}

/// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported
/// (OP-request-Unsigned): an unsigned request object (`alg: none`) passed as `request` must
/// either work or be refused with `request_not_supported` (Core §6.1); Latchkey advertises
/// `request_parameter_supported: false` and refuses it at the redirect URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["request_parameter_supported"], false);
    let object = unsigned_request_object(&json!({
        "iss": client.client_id,
        "aud": app.base,
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": STATE,
        "nonce": NONCE,
    }));
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request", object.as_str())],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "request_not_supported");
}

/// oidcc-claims-essential (OP-claims-essential): a `claims` request for `name` as an essential
/// userinfo claim must not make the request fail. Latchkey advertises
/// `claims_parameter_supported: false` and ignores the parameter: the flow succeeds, userinfo
/// releases by scope only (no `name` without `profile`), and the ID token carries no `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_claims_essential() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["claims_parameter_supported"], false);
    let browser = Browser::new(&app);
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let done = complete_flow(&app, &browser, &client, "openid", &[("claims", claims)]).await;
    assert!(done.id.get("name").is_none(), "no name in the ID token");
    let info = userinfo_of(&app, &done).await;
    assert!(
        info.get("name").is_none(),
        "the claims parameter is ignored"
    );
}

/// oidcc-ensure-request-object-with-redirect-uri: a request object carrying the registered
/// redirect URI while the query carries another one. Without request-object support the query
/// is all there is: its unregistered redirect URI gets an error page (never a redirect to
/// it), and with a registered one the request object is refused with `request_not_supported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["request_parameter_supported"], false);
    let object = unsigned_request_object(&json!({
        "iss": client.client_id,
        "aud": app.base,
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": STATE,
        "nonce": NONCE,
    }));
    let browser = Browser::new(&app);
    let invalid = "https://app.example.test/invalid-redirect-in-query";
    let params = with_param(
        auth_params(&client, "openid", &[("request", object.as_str())]),
        "redirect_uri",
        invalid,
    );
    let step = browser.authorize(&params).await;
    assert_error_page(&step, "unregistered redirect_uri next to a request object");
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request", object.as_str())],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "request_not_supported");
}

/// oidcc-refresh-token: with `offline_access` (and `prompt=consent`, Core §11) the token
/// response carries a refresh token of RFC 6749 §A.17 characters. Refreshing rotates it and
/// returns a new access token and an ID token that follows Core §12.2 (same `iss`, `sub`,
/// `aud`, `azp` and `auth_time`, a new `iat`, `at_hash` of the new access token); userinfo
/// works with the new access token. A refresh token works only for its own client
/// (`invalid_grant` for another), and the rotated-out one is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_refresh_token() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let discovery = app.discovery().await;
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("refresh_token"))
    );
    let scope = "openid email offline_access";
    let first = complete_flow(&app, &browser, &client, scope, &[("prompt", "consent")]).await;
    let refresh_token = first.tokens["refresh_token"]
        .as_str()
        .expect("a refresh token for offline_access");
    assert!(
        refresh_token.chars().all(|c| (' '..='~').contains(&c)),
        "RFC 6749 §A.17 characters"
    );
    app.clock.advance(10);
    let (status, refreshed) = refresh(&app, &client, refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    let new_refresh = refreshed["refresh_token"].as_str().expect("rotated");
    assert_ne!(new_refresh, refresh_token);
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(new_access, first.access_token());
    let id = validate_id_token(
        &app,
        refreshed["id_token"]
            .as_str()
            .expect("a refreshed ID token"),
        &client.client_id,
        Nonce::AbsentOr(NONCE),
        Some(new_access),
    )
    .await;
    for claim in ["iss", "sub", "aud", "azp", "auth_time"] {
        assert_eq!(
            id[claim], first.id[claim],
            "{claim} of the refreshed ID token"
        );
    }
    assert!(id["iat"].as_i64() > first.id["iat"].as_i64(), "a new iat");
    let (status, info) = userinfo(&app, new_access, UserinfoCall::Get).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], first.id["sub"]);

    // The rotated-out refresh token is dead.
    let (status, body) = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A second client's refresh token does not work for the first client.
    let second = second_client(&app).await;
    let browser2 = Browser::new(&app);
    let other = complete_flow(&app, &browser2, &second, scope, &[("prompt", "consent")]).await;
    let other_refresh = other.tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, &client, other_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-ensure-request-with-valid-pkce-succeeds: a request with a valid S256 PKCE challenge
/// succeeds and the code is redeemed with its verifier (RFC 7636 §4.5), also for a
/// confidential client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    finish_flow(&app, &client, flow, Some(&verifier), Nonce::Is(NONCE)).await;
}

// ---------------------------------------------------------------------------------------------
// oidcc-config-certification-test-plan (Config OP)
// ---------------------------------------------------------------------------------------------

/// A BCP 47 language tag, as far as RFC 8414 §2 and the suite's "CheckDiscEndpointLocalesSyntax"
/// look at it.
fn looks_like_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=8).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// oidcc-discovery-endpoint-verification (OP-Discovery-Config and the OP-Discovery-* checks):
/// the discovery document is JSON at `<issuer>/.well-known/openid-configuration`, has every
/// member OpenID Connect Discovery §3 requires (`issuer`, `authorization_endpoint`,
/// `token_endpoint`, `jwks_uri`, `response_types_supported`, `subject_types_supported`,
/// `id_token_signing_alg_values_supported`) with values a code-flow OP must have (`code`,
/// `public`, `RS256`, never `none`), `userinfo_endpoint`, `scopes_supported` with `openid`,
/// `claims_supported`, `grant_types_supported` with `authorization_code`, explicit `false` for
/// the request and request_uri parameters (their default is true), well-formed locales and
/// scopes, `code_challenge_methods_supported` as an array, endpoints under the issuer; the
/// JWKS has a `kid`, `use` and `alg` on every key, distinct kids, and no private or symmetric
/// key material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_discovery_endpoint_verification() {
    let app = spawn_app(Backend::Postgres).await;
    let url = app.url("/.well-known/openid-configuration");
    let response = app.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = response.json().await.unwrap();

    // OpenID Connect Discovery §3: REQUIRED members.
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(doc.get(member).is_some(), "discovery lacks {member}");
    }
    // §4.3: the issuer is the URL the document was fetched under, minus the well-known path.
    let issuer = doc["issuer"].as_str().unwrap();
    assert_eq!(format!("{issuer}/.well-known/openid-configuration"), url);
    let parsed = url::Url::parse(issuer).unwrap();
    assert!(parsed.query().is_none() && parsed.fragment().is_none());
    assert!(!issuer.ends_with('/'));
    let array = |member: &str| -> Vec<String> {
        doc[member]
            .as_array()
            .unwrap_or_else(|| panic!("{member} is an array"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(array("response_types_supported").contains(&"code".to_owned()));
    let subject_types = array("subject_types_supported");
    assert!(!subject_types.is_empty());
    assert!(
        subject_types
            .iter()
            .all(|t| t == "public" || t == "pairwise")
    );
    let algs = array("id_token_signing_alg_values_supported");
    assert!(algs.contains(&"RS256".to_owned()), "Core §15.1: RS256");
    assert!(!algs.iter().any(|a| a.eq_ignore_ascii_case("none")));
    // Endpoints: absolute URLs under the issuer (so https whenever the issuer is).
    for member in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        if let Some(endpoint) = doc.get(member) {
            let endpoint = endpoint.as_str().unwrap();
            assert!(
                endpoint.starts_with(&format!("{issuer}/")),
                "{member}: {endpoint}"
            );
            assert!(url::Url::parse(endpoint).unwrap().fragment().is_none());
        }
    }
    assert!(
        doc["userinfo_endpoint"].is_string(),
        "userinfo_endpoint is recommended"
    );
    assert!(doc.get("registration_endpoint").is_none() || doc["registration_endpoint"].is_string());
    // RECOMMENDED / OPTIONAL members the suite checks.
    let scopes = array("scopes_supported");
    assert!(scopes.contains(&"openid".to_owned()));
    for scope in &scopes {
        assert!(
            !scope.is_empty()
                && scope
                    .chars()
                    .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)),
            "scope token {scope:?} (RFC 6749 §3.3)"
        );
    }
    let claims = array("claims_supported");
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "email",
        "name",
    ] {
        assert!(
            claims.contains(&claim.to_owned()),
            "claims_supported lacks {claim}"
        );
    }
    assert!(array("grant_types_supported").contains(&"authorization_code".to_owned()));
    assert!(array("response_modes_supported").contains(&"query".to_owned()));
    let auth_methods = array("token_endpoint_auth_methods_supported");
    assert!(auth_methods.contains(&"client_secret_basic".to_owned()));
    assert!(auth_methods.contains(&"client_secret_post".to_owned()));
    assert_eq!(doc["claims_parameter_supported"], false);
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(
        doc["request_uri_parameter_supported"], false,
        "defaults to true if absent"
    );
    for tag in array("ui_locales_supported") {
        assert!(looks_like_language_tag(&tag), "ui_locales_supported: {tag}");
    }
    if doc.get("claims_locales_supported").is_some() {
        for tag in array("claims_locales_supported") {
            assert!(
                looks_like_language_tag(&tag),
                "claims_locales_supported: {tag}"
            );
        }
    }
    let methods = array("code_challenge_methods_supported");
    assert!(methods.contains(&"S256".to_owned()) && !methods.contains(&"plain".to_owned()));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);

    // The JWKS (ValidateServerJWKs and friends, in fetch_jwks), with a key for every
    // advertised ID token algorithm.
    let (raw, _) = fetch_jwks(&app).await;
    for alg in &algs {
        assert!(
            raw["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["alg"] == alg.as_str()),
            "no key for {alg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Other OIDCC modules that apply to a code-flow OP with static (admin API) registration
// ---------------------------------------------------------------------------------------------

/// oidcc-discovery-issuer-not-matching-config. In the OIDF suite this name belongs to the
/// relying-party test (rp-discovery-issuer-not-matching-config: the RP must reject an OP whose
/// discovered issuer differs from the one it was configured with); the OP side of it is
/// "CheckDiscEndpointIssuer". So: the issuer is exactly the URL prefix the discovery document
/// was fetched from, the RFC 8414 document names the same issuer, and the ID token's `iss` is
/// that issuer, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_discovery_issuer_not_matching_config() {
    let (app, client) = battery().await;
    let oidc = app.discovery().await;
    assert_eq!(oidc["issuer"], app.base.as_str());
    let rfc8414 = fetch_json(
        app.http
            .get(app.url("/.well-known/oauth-authorization-server")),
    )
    .await;
    assert_eq!(rfc8414["issuer"], oidc["issuer"]);
    for member in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        assert_eq!(rfc8414[member], oidc[member], "{member}");
    }
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    assert_eq!(done.id["iss"], oidc["issuer"]);
    assert_eq!(done.flow.query["iss"], app.base);
}

/// oidcc-server-rotate-keys: after the operator rotates the signing keys (admin API), the JWKS
/// has a new signing key and still has the old one (OIDC Core §10.1.1); every key is still
/// well-formed with distinct kids; new ID tokens are signed with a new key and verify against
/// the JWKS, and an ID token issued before the rotation still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_server_rotate_keys() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let before_flow = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let kids = |raw: &Value| -> BTreeSet<String> {
        raw["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let (before, _) = fetch_jwks(&app).await;
    let old_kids = kids(&before);

    let (status, _) = app.admin(Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(status, 200);

    let (after, _) = fetch_jwks(&app).await;
    let new_kids = kids(&after);
    assert!(new_kids.is_superset(&old_kids), "old keys stay published");
    let added: BTreeSet<_> = new_kids.difference(&old_kids).cloned().collect();
    assert!(!added.is_empty(), "rotation publishes a new key");

    let after_flow = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let header = jsonwebtoken::decode_header(after_flow.id_token()).unwrap();
    assert!(
        added.contains(header.kid.as_deref().unwrap()),
        "new ID tokens use the new key"
    );
    validate_id_token(
        &app,
        before_flow.id_token(),
        &client.client_id,
        Nonce::Is(NONCE),
        Some(before_flow.access_token()),
    )
    .await;
}

/// oidcc-ensure-redirect-uri-in-authorization-request (OP-redirect_uri-Missing): OpenID Connect
/// Core §3.1.2.1 makes `redirect_uri` REQUIRED in an authentication request (unlike RFC 6749
/// §3.1.2.3, which lets an OAuth client with one registered URI omit it). Without it the OP
/// must show an error (or, at most, answer `invalid_request`), never issue a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_redirect_uri_in_authorization_request() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = without_param(auth_params(&client, "openid", &[]), "redirect_uri");
    let step = browser.authorize(&params).await;
    if step.status == 400 {
        assert_error_page(&step, "authentication request without redirect_uri");
    } else {
        assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
    }
}

/// oidcc-idtoken-rs256: a client registered with `id_token_signed_response_alg: RS256` gets
/// ID tokens signed RS256 that verify against the RS256 key in the JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_idtoken_rs256() {
    let app = spawn_app(Backend::Postgres).await;
    create_alice(&app).await;
    let registration = app
        .create_client(json!({
            "redirect_uris": ["https://rs256.example.test/cb"],
            "scope": "openid",
            "id_token_signed_response_alg": "RS256",
        }))
        .await;
    assert_eq!(registration["id_token_signed_response_alg"], "RS256");
    let client = TestClient::from_registration(&registration);
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let header = jsonwebtoken::decode_header(done.id_token()).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
}

/// oidcc-alternate-happy-flow: the happy path with the scope values in reverse order and the
/// query parameters in another order; nothing may depend on ordering (RFC 6749 §3.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_alternate_happy_flow() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let mut params = auth_params(&client, "email openid", &[]);
    params.reverse();
    let flow = authorize(&browser, &params, &client.redirect_uri).await;
    let done = finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
    let granted: BTreeSet<_> = done.tokens["scope"].as_str().unwrap().split(' ').collect();
    assert_eq!(granted, BTreeSet::from(["openid", "email"]));
    assert_eq!(
        userinfo_of(&app, &done).await["email"],
        "alice@example.test"
    );
}

/// A client whose only redirect URI is `uri`.
async fn client_with_redirect(app: &TestApp, uri: &str) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Redirect Query Client",
            "redirect_uris": [uri],
            "scope": "openid",
        }))
        .await,
    )
}

/// oidcc-redirect-uri-query-ok (OP-redirect_uri-Query-OK): a registered redirect URI with a
/// query component is used as is: the response keeps that query and adds the code, `state` and
/// `iss` to it (RFC 6749 §3.1.2), and the code is redeemed with the same URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_redirect_uri_query_ok() {
    let app = spawn_app(Backend::Postgres).await;
    create_alice(&app).await;
    let client = client_with_redirect(&app, "https://query.example.test/cb?foo=bar").await;
    let browser = Browser::new(&app);
    let flow = authorize(
        &browser,
        &auth_params(&client, "openid", &[]),
        "https://query.example.test/cb?",
    )
    .await;
    assert_eq!(flow.query["foo"], "bar", "the registered query is kept");
    assert!(
        flow.location
            .starts_with("https://query.example.test/cb?foo=bar&")
    );
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-redirect-uri-query-mismatch (OP-redirect_uri-Query-Mismatch): a redirect URI whose
/// query differs from the registered one is not registered: error page, no redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_redirect_uri_query_mismatch() {
    let app = spawn_app(Backend::Postgres).await;
    let client = client_with_redirect(&app, "https://query.example.test/cb?foo=bar").await;
    let browser = Browser::new(&app);
    for other in [
        "https://query.example.test/cb?foo=baz",
        "https://query.example.test/cb?foo=bar&x=1",
        "https://query.example.test/cb",
    ] {
        let params = with_param(auth_params(&client, "openid", &[]), "redirect_uri", other);
        assert_error_page(&browser.authorize(&params).await, other);
    }
}

/// oidcc-redirect-uri-query-added (OP-redirect_uri-Query-Added): adding a query to a registered
/// redirect URI that has none makes it unregistered: error page, no redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_redirect_uri_query_added() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let added = format!("{}?foo=bar", client.redirect_uri);
    let params = with_param(
        auth_params(&client, "openid", &[]),
        "redirect_uri",
        added.as_str(),
    );
    assert_error_page(&browser.authorize(&params).await, &added);
}

/// oidcc-redirect-uri-regfrag (OP-redirect_uri-RegFrag): a redirect URI with a fragment cannot
/// be registered (RFC 6749 §3.1.2): `invalid_redirect_uri` (RFC 7591 §3.2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_redirect_uri_regfrag() {
    let app = spawn_app(Backend::Postgres).await;
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/admin/clients",
            Some(&json!({
                "redirect_uris": ["https://frag.example.test/cb#fragment"],
                "scope": "openid",
            })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_redirect_uri");
}

// ---------------------------------------------------------------------------------------------
// PKCE, response type and RFC 9207 checks of the FAPI 2.0 Security Profile plan
// (fapi2-security-profile-final-*), on Latchkey's front channel (there is no PAR endpoint)
// ---------------------------------------------------------------------------------------------

/// fapi2-security-profile-final-ensure-pkce-code-verifier-required: a code issued for a PKCE
/// challenge cannot be redeemed without the `code_verifier` (`invalid_grant`, RFC 7636 §4.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_pkce_code_verifier_required() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    let (status, body) = redeem(&app, &client, &flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// fapi2-security-profile-final-incorrect-pkce-code-verifier-rejected: a wrong
/// `code_verifier` is refused with `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_incorrect_pkce_code_verifier_rejected() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let (wrong, _) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    let (status, body) = redeem(&app, &client, &flow.query["code"], Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// fapi2-security-profile-final-par-plain-pkce-rejected (sent to the authorization endpoint,
/// as Latchkey has no PAR endpoint): `code_challenge_method=plain` is refused with
/// `invalid_request`, with `state` and `iss`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_par_plain_pkce_rejected() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (verifier, _) = pkce_pair();
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// fapi2-security-profile-final-par-ensure-pkce-required (on the authorization endpoint):
/// FAPI 2.0 requires PKCE of every client; Latchkey requires it of public clients (and honours
/// it for confidential ones), so a public client's request without `code_challenge` is
/// refused with `invalid_request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_par_ensure_pkce_required() {
    let app = spawn_app(Backend::Postgres).await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(&client, "openid", &[]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// An authorization request like the battery's own but with `response_type` replaced is
/// refused with `unsupported_response_type` at the redirect URI, with nothing in a fragment.
async fn refuses_response_type(response_type: &'static str) {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = with_param(
        auth_params(&client, "openid", &[]),
        "response_type",
        response_type,
    );
    let step = browser.authorize(&params).await;
    assert_error_redirect(
        &app,
        &step,
        &client.redirect_uri,
        "unsupported_response_type",
    );
    assert!(
        !step.location.unwrap().contains('#'),
        "nothing in a fragment"
    );
}

/// fapi2-security-profile-final-ensure-response-type-token-fails: `response_type=token`
/// (implicit) is refused with `unsupported_response_type`; no token in any fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_response_type_token_fails() {
    refuses_response_type("token").await;
}

/// fapi2-security-profile-final-ensure-response-type-code-idtoken-fails: the hybrid
/// `response_type=code id_token` is refused with `unsupported_response_type`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_response_type_code_idtoken_fails() {
    refuses_response_type("code id_token").await;
}

/// RFC 9207 `iss` (no module of its own: the FAPI 2.0 plan checks it on every authorization
/// response, "ValidateIssInAuthorizationResponse"): discovery advertises
/// `authorization_response_iss_parameter_supported`, and every response at the redirect URI,
/// success or error (`login_required`, `access_denied`, `invalid_scope`), carries exactly one
/// `iss` equal to the issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9207_iss_in_every_authorization_response() {
    let (app, client) = battery().await;
    assert_eq!(
        app.discovery().await["authorization_response_iss_parameter_supported"],
        true
    );
    let iss_values = |location: &str| -> Vec<String> {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .filter(|(k, _)| k == "iss")
            .map(|(_, v)| v.into_owned())
            .collect()
    };
    let browser = Browser::new(&app);
    // login_required
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("prompt", "none")]))
        .await;
    assert_eq!(
        iss_values(step.location.as_deref().unwrap()),
        [app.base.as_str()]
    );
    // access_denied
    let step = browser
        .authorize(&auth_params(&client, "openid", &[]))
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let (_, denied) = browser.consent(&step.location.unwrap(), "deny").await;
    let location = denied.location.unwrap();
    assert_eq!(query_of(&location)["error"], "access_denied");
    assert_eq!(iss_values(&location), [app.base.as_str()]);
    // invalid_scope
    let step = browser
        .authorize(&auth_params(&client, "openid not-registered", &[]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_scope");
    assert_eq!(
        iss_values(step.location.as_deref().unwrap()),
        [app.base.as_str()]
    );
    // success
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    assert_eq!(iss_values(&done.flow.location), [app.base.as_str()]);
}

// ---------------------------------------------------------------------------------------------
// OpenID Connect Core rules next to the modules above that no module of the suite checks
// ---------------------------------------------------------------------------------------------

/// Next to oidcc-max-age-1: OpenID Connect Core §3.1.2.1 (errata set 2) says "max_age=0 is
/// equivalent to prompt=login": the user must log in again however recent the session, even
/// within the second of the last login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_max_age_0_is_prompt_login() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("max_age", "0")]))
        .await;
    let location = step.location.clone().unwrap();
    assert!(
        location.starts_with("/login"),
        "max_age=0 must re-authenticate, got {location}"
    );
    app.clock.advance(1);
    let flow = drive(&browser, step, &client.redirect_uri).await;
    let second = finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
    assert!(second.id["auth_time"].as_i64() > first.id["auth_time"].as_i64());
}
