//! A conformance battery modelled on the OpenID Foundation conformance suite: one test per
//! module of `oidcc-basic-certification-test-plan` and `oidcc-config-certification-test-plan`
//! (code flow, static client), plus the modules of the comprehensive OIDCC plan that apply to a
//! code-only server with admin-API registration, and the PKCE and RFC 9207 `iss` checks of the
//! FAPI 2.0 Security Profile plan. Each test is named after its module (dashes become
//! underscores) and says what the module checks. Modules that do not apply (implicit, hybrid,
//! request objects, dynamic registration, ...) are listed in `tests/interop/README.md`.
//!
//! One file per plan: `basic` (Basic OP), `config` (Config OP), `comprehensive` (the other OIDCC
//! modules that apply), `fapi2` (FAPI 2.0 and RFC 9207), and `oidc_core` (Core rules no module
//! checks). This file holds the battery's set-up and flow steps, `rp` the relying party's
//! checks; neither holds tests.
//!
//! Like the suite, the battery is a relying party that trusts nothing but discovery: every ID
//! token goes through `validate_id_token` (signature against `jwks_uri`, `iss`, `aud`, `azp`,
//! `exp`, `iat`, `nonce`, `auth_time`, `at_hash`). It runs on Postgres only: the storage
//! behaviour underneath is the same on both backends and is covered elsewhere.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, Browser, PASSWORD, Step, TestApp, TestClient, authorize_params, code_form,
    pkce_params, query_of, spawn_app,
};
use rp::{Nonce, check_token_response, validate_id_token};

mod basic;
mod comprehensive;
mod config;
mod fapi2;
mod oidc_core;
mod rp;

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
