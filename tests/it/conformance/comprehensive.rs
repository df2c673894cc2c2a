//! The other OIDCC modules that apply to a code-flow OP whose clients are registered through the
//! admin API (from the comprehensive and dynamic plans, with admin registration instead of
//! dynamic registration).

use std::collections::BTreeSet;

use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use super::rp::{Nonce, fetch_jwks, validate_id_token};
use super::{
    NONCE, assert_error_page, assert_error_redirect, auth_params, authorize, battery,
    complete_flow, create_alice, finish_flow, userinfo_of, with_param, without_param,
};
use crate::helpers::{Backend, Browser, TestApp, TestClient, fetch_json, spawn_app};

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

    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/keys/rotate",
            Some(&serde_json::json!({"now": true})),
        )
        .await;
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
