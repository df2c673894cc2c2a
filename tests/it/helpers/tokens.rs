//! Requests a client makes: the token endpoint (`TestApp::token` and the grants on top of it),
//! introspection, revocation and userinfo, each authenticating as the client registered.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{Browser, TestApp, pkce_pair};

/// A registered client and what a flow needs from it.
pub struct TestClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl TestClient {
    pub fn from_registration(reg: &Value) -> Self {
        TestClient {
            client_id: reg["client_id"].as_str().unwrap().to_owned(),
            secret: reg["client_secret"].as_str().map(str::to_owned),
            redirect_uri: reg["redirect_uris"][0].as_str().unwrap().to_owned(),
        }
    }
}

/// A client without redirect URIs (a machine client or resource server).
pub fn machine_client(registration: &Value) -> TestClient {
    TestClient {
        client_id: registration["client_id"].as_str().unwrap().to_owned(),
        secret: registration["client_secret"].as_str().map(str::to_owned),
        redirect_uri: String::new(),
    }
}

/// A confidential client that only uses client_credentials, registered with
/// `"introspection": "any"`: the resource server that introspects every client's tokens.
pub async fn resource_server(app: &TestApp) -> TestClient {
    machine_client(
        &app.create_client(json!({
            "client_name": "Resource Server",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
            "introspection": "any",
        }))
        .await,
    )
}

impl TestApp {
    /// POST /token with Basic auth when the client has a secret, else client_id in the form.
    pub async fn token(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        post_as(self, &self.url("/token"), client, form).await
    }
}

/// POSTs a form to `url`, authenticating like `TestApp::token` (Basic with a secret, else
/// `client_id` in the form); returns status, JSON body (`Null` when not JSON) and headers.
pub async fn post_as(
    app: &TestApp,
    url: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> (u16, Value, HeaderMap) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut request = app.http.post(url);
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.client_id, Some(secret)),
        None => fields.push(("client_id", &client.client_id)),
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

/// The token request that redeems `code` for `client` (its redirect URI, the verifier if any).
pub fn code_form<'a>(
    client: &'a TestClient,
    code: &'a str,
    verifier: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    form
}

/// Redeems `code` (`code_form`); status and body.
pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let (status, body, _) = app.token(client, &code_form(client, code, verifier)).await;
    (status, body)
}

/// Signs alice in through a new browser, redeems the code (with PKCE), and returns the token
/// response.
pub async fn user_tokens(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    user_tokens_with(app, client, scope, &[]).await
}

/// `user_tokens` with extra authorization request parameters.
pub async fn user_tokens_with(
    app: &TestApp,
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> Value {
    let browser = Browser::new(app);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(client, scope, Some(&challenge), extra)
        .await;
    let (status, body) = redeem(app, client, &query["code"], Some(&verifier)).await;
    assert_eq!(status, 200, "code redemption: {body}");
    body
}

/// `grant_type=refresh_token`, optionally with a `scope`.
pub async fn refresh(
    app: &TestApp,
    client: &TestClient,
    refresh_token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let (status, body, _) = app.token(client, &form).await;
    (status, body)
}

/// `grant_type=client_credentials` with extra parameters.
pub async fn client_credentials(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let (status, body, _) = app.token(client, &form).await;
    (status, body)
}

/// Introspects `token` as `client`.
pub async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> (u16, Value) {
    let url = app.endpoint("introspection_endpoint").await;
    let (status, body, _) = post_as(app, &url, client, &[("token", token)]).await;
    (status, body)
}

/// Introspects `token` and returns whether it is active (asserting the inactive answer is
/// exactly `{"active": false}`).
pub async fn is_active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    let (status, body) = introspect(app, client, token).await;
    assert_eq!(status, 200, "{body}");
    if body["active"] == true {
        true
    } else {
        assert_eq!(body, json!({"active": false}));
        false
    }
}

/// Revokes `token` as `client` with an optional `token_type_hint`; returns the status.
pub async fn revoke(app: &TestApp, client: &TestClient, token: &str, hint: Option<&str>) -> u16 {
    let url = app.endpoint("revocation_endpoint").await;
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    post_as(app, &url, client, &form).await.0
}

/// GET userinfo with `token`; the status.
pub async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    let url = app.endpoint("userinfo_endpoint").await;
    app.http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts a JSON error answer with this status and `error` code.
pub fn assert_error(status: u16, body: &Value, expected_status: u16, expected_error: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (expected_status, Some(expected_error)),
        "{body}"
    );
}
