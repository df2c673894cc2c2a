//! The authorization code flow with PKCE: authorization endpoint rules, login and consent
//! pages, sessions, codes, ID tokens and userinfo. One file per part of the flow; `mod.rs`
//! holds what more than one of them registers, and no tests.

use serde_json::json;

use crate::helpers::{TestApp, TestClient};

mod authorize;
mod consent;
mod pages;
mod tokens;

/// A native public client: PKCE required, a loopback and a private-use-scheme redirect URI.
async fn public_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Native App",
            "redirect_uris": ["http://127.0.0.1:7777/callback", "com.example.app:/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        }))
        .await,
    )
}
