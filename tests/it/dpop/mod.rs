//! DPoP (RFC 9449): proofs at the token endpoint bind access tokens (and a public client's
//! refresh tokens) to the client's key; userinfo and introspection honour the binding; each
//! proof is accepted once on any node; server nonces are valid on every node; a code can be
//! bound to the key at the authorization or PAR endpoint. One file per concern
//! (`proofs.rs`, `code_binding.rs`); this file holds only the requests they share.

mod code_binding;
mod proofs;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{Browser, DpopKey, TestApp, TestClient, pkce_pair};

pub(super) fn now(app: &TestApp) -> i64 {
    latchkey::clock::Clock::now(app.app.clock.as_ref())
}

/// POST /token with an optional `DPoP` header, authenticating like `TestApp::token`.
pub(super) async fn token_with(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value, HeaderMap) {
    post_with(app, "/token", client, form, proof).await
}

/// POST to the client endpoint at `path` (token, PAR) with an optional `DPoP` header,
/// authenticating like `TestApp::token` (Basic, or `client_id` for a public client).
pub(super) async fn post_with(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut request = app.http.post(app.url(path));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.client_id, Some(secret)),
        None => fields.push(("client_id", &client.client_id)),
    }
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    let response = request.form(&fields).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

/// A fresh proof for the token endpoint of `app`.
pub(super) fn token_proof(app: &TestApp, key: &DpopKey) -> String {
    key.proof("POST", &app.url("/token"), now(app), json!({}))
}

/// GET /userinfo with `authorization` and an optional proof; status and `WWW-Authenticate`.
pub(super) async fn userinfo(
    app: &TestApp,
    authorization: &str,
    proof: Option<&str>,
) -> (u16, String) {
    let mut request = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", authorization);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

pub(super) async fn public_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "SPA",
            "redirect_uris": ["https://spa.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        }))
        .await,
    )
}

/// alice's code flow for `client`, redeemed with a proof of `key` (or none). A proof is
/// first sent wrong (for another method): refused, and the code is not spent by it.
pub(super) async fn code_tokens(
    app: &TestApp,
    client: &TestClient,
    key: Option<&DpopKey>,
) -> Value {
    let (verifier, challenge) = pkce_pair();
    let query = Browser::new(app)
        .code_flow(
            client,
            "openid profile offline_access",
            Some(&challenge),
            &[],
        )
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", query["code"].as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(k) = key {
        let wrong = k.proof("GET", &app.url("/token"), now(app), json!({}));
        let (status, body, _) = token_with(app, client, &form, Some(&wrong)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof"))
        );
    }
    let proof = key.map(|k| token_proof(app, k));
    let (status, body, _) = token_with(app, client, &form, proof.as_deref()).await;
    assert_eq!(status, 200, "code redemption: {body}");
    body
}

pub(super) fn refresh_form(token: &str) -> [(&str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", token)]
}
