//! Upstream identity providers: the admin API (`admin.rs`), the relying party's checks
//! against a small upstream built here that can answer wrongly on purpose (`checks.rs`),
//! the linking rules (`linking.rs`), node-oidc-provider as a real upstream (`node.rs`), the
//! local second factor after an upstream login (`second_factor.rs`), linked sign-ins on the
//! account page (`account.rs`), upstreams in `latchkey apply` (`apply.rs`), 50 racing
//! callbacks and unlinks (`races.rs`) and the metrics per upstream (`metrics.rs`).
//!
//! `FakeUpstream` is an OpenID provider over axum on a loopback port: discovery, JWKS,
//! an authorization endpoint that signs the user in at once (redirecting back with a code),
//! a token endpoint that checks PKCE and the client secret, and userinfo. `Twist` makes one
//! answer wrong.

mod account;
mod admin;
mod apply;
mod checks;
mod linking;
mod metrics;
mod node;
mod races;
mod second_factor;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{Browser, ClientKey, TestApp, TestClient, hidden_field, query_of};

pub const UPSTREAM_SECRET: &str = "upstream-secret-123";

/// One way the upstream answers wrongly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    None,
    WrongIss,
    WrongAud,
    WrongNonce,
    Expired,
    BadSignature,
    /// Signed by a new key the JWKS served at discovery did not hold (a rotation).
    RotatedKey,
    WrongState,
    WrongIssParameter,
    /// Advertises RFC 9207 `iss` but leaves it out.
    MissingIssParameter,
    /// The user says no at the upstream.
    Denied,
    AzpOther,
    TokenEndpointFails,
}

pub struct Person {
    pub sub: String,
    pub email: String,
    pub email_verified: Value,
    pub amr: Vec<String>,
}

struct Inner {
    twist: Twist,
    person: Person,
    key: ClientKey,
    /// A key published only after the first JWKS fetch (`RotatedKey`).
    next_key: ClientKey,
    rotated: bool,
    /// code → (nonce, code_challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    token_requests: usize,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeUpstream {
    pub async fn start(twist: Twist) -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let upstream = FakeUpstream {
            base,
            inner: Arc::new(Mutex::new(Inner {
                twist,
                person: Person {
                    sub: "upstream-user-1".into(),
                    email: "alice@example.com".into(),
                    email_verified: Value::Bool(true),
                    amr: vec!["pwd".into(), "mfa".into()],
                },
                key: ClientKey::new("k1"),
                next_key: ClientKey::new("k2"),
                rotated: false,
                codes: HashMap::new(),
                token_requests: 0,
            })),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(upstream.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        upstream
    }

    pub fn set_person(&self, person: Person) {
        self.inner.lock().unwrap().person = person;
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }

    /// Registers it at `app` as `id`, with extra settings.
    pub async fn register(&self, app: &TestApp, id: &str, extra: Value) -> Value {
        let mut body = json!({
            "id": id, "display_name": format!("Fake {id}"), "kind": "oidc",
            "issuer": self.base, "client_id": "latchkey", "client_secret": UPSTREAM_SECRET,
            "scope": "openid email profile",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app
            .admin(Method::POST, "/admin/upstreams", Some(&body))
            .await;
        assert_eq!(status, 201, "{answer}");
        answer
    }
}

async fn discovery(State(up): State<FakeUpstream>) -> Json<Value> {
    let twist = up.inner.lock().unwrap().twist;
    let b = &up.base;
    Json(json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "userinfo_endpoint": format!("{b}/userinfo"),
        "jwks_uri": format!("{b}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "authorization_response_iss_parameter_supported":
            matches!(twist, Twist::MissingIssParameter | Twist::None | Twist::WrongIssParameter),
    }))
}

async fn jwks(State(up): State<FakeUpstream>) -> Json<Value> {
    let mut inner = up.inner.lock().unwrap();
    let keys = if inner.rotated {
        vec![inner.key.jwk(), inner.next_key.jwk()]
    } else {
        if inner.twist == Twist::RotatedKey {
            // The next fetch (after an unknown kid) sees the new key.
            inner.rotated = true;
        }
        vec![inner.key.jwk()]
    };
    Json(json!({ "keys": keys }))
}

async fn authorize(
    State(up): State<FakeUpstream>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = up.inner.lock().unwrap();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "latchkey");
    assert_eq!(q["code_challenge_method"], "S256");
    let redirect = q["redirect_uri"].clone();
    let mut url = url::Url::parse(&redirect).unwrap();
    let state = match inner.twist {
        Twist::WrongState => "not-the-state".to_owned(),
        _ => q["state"].clone(),
    };
    let iss = match inner.twist {
        Twist::WrongIssParameter => Some("https://evil.example".to_owned()),
        Twist::MissingIssParameter => None,
        _ => Some(up.base.clone()),
    };
    {
        let mut pairs = url.query_pairs_mut();
        if inner.twist == Twist::Denied {
            pairs.append_pair("error", "access_denied");
        } else {
            let code = format!("code-{}", inner.codes.len());
            inner.codes.insert(
                code.clone(),
                (
                    q.get("nonce").cloned().unwrap_or_default(),
                    q["code_challenge"].clone(),
                    redirect.clone(),
                ),
            );
            pairs.append_pair("code", &code);
        }
        pairs.append_pair("state", &state);
        if let Some(iss) = iss {
            pairs.append_pair("iss", &iss);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

async fn token(
    State(up): State<FakeUpstream>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = up.inner.lock().unwrap();
    inner.token_requests += 1;
    if inner.twist == Twist::TokenEndpointFails {
        return (axum::http::StatusCode::BAD_GATEWAY, "down").into_response();
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("latchkey:{UPSTREAM_SECRET}"));
    if auth != format!("Basic {basic}") {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some((nonce, challenge, redirect)) = inner.codes.remove(&form["code"]) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = &form["code_verifier"];
    let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(computed, challenge, "PKCE S256");
    assert_eq!(form["redirect_uri"], redirect);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "iss": up.base, "sub": inner.person.sub, "aud": "latchkey",
        "iat": now, "exp": now + 300, "nonce": nonce,
        "email": inner.person.email, "email_verified": inner.person.email_verified,
        "amr": inner.person.amr, "name": "Alice Upstream",
    });
    match inner.twist {
        Twist::WrongIss => claims["iss"] = json!("https://evil.example"),
        Twist::WrongAud => claims["aud"] = json!("someone-else"),
        Twist::WrongNonce => claims["nonce"] = json!("another-nonce"),
        Twist::Expired => {
            claims["iat"] = json!(now - 600);
            claims["exp"] = json!(now - 300);
        }
        Twist::AzpOther => {
            claims["aud"] = json!(["latchkey", "other"]);
            claims["azp"] = json!("other");
        }
        _ => {}
    }
    let id_token = match inner.twist {
        Twist::BadSignature => {
            // Signed by another key under the published kid.
            let forger = ClientKey::new("k1");
            forger.sign(&claims)
        }
        Twist::RotatedKey => inner.next_key.sign(&claims),
        _ => inner.key.sign(&claims),
    };
    Json(json!({
        "access_token": format!("at-{}", inner.person.sub),
        "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
    }))
    .into_response()
}

async fn userinfo(State(up): State<FakeUpstream>, headers: HeaderMap) -> Response {
    let inner = up.inner.lock().unwrap();
    let expected = format!("Bearer at-{}", inner.person.sub);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({
        "sub": inner.person.sub, "email": inner.person.email,
        "email_verified": inner.person.email_verified, "login": "alice-up", "id": 4242,
        "given_name": "Alice",
    }))
    .into_response()
}

/// What a login through an upstream ended with at the client.
pub struct Outcome {
    /// The query of the redirect to the client (`code` or `error`, `state`, `iss`).
    pub query: HashMap<String, String>,
    pub verifier: String,
}

/// A browser flow: authorize with `upstream=id` (or through the login page's button when
/// `via_button`), follow the upstream's redirects, allow consent if asked; the client's
/// redirect at the end.
pub async fn upstream_flow(
    browser: &Browser<'_>,
    client: &TestClient,
    id: &str,
    via_button: bool,
) -> Outcome {
    let (verifier, challenge) = crate::helpers::pkce_pair();
    let mut params = vec![
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if !via_button {
        params.push(("upstream", id));
    }
    let step = browser
        .authorize_with(client, "openid email profile", &params)
        .await;
    assert_eq!(step.status, 303, "{}", step.body);
    let mut location = step.location.unwrap();
    if via_button {
        assert!(location.starts_with("/login"), "{location}");
        let page = browser.get(&location).await;
        assert!(
            page.body
                .contains(&format!("name=\"upstream\" value=\"{id}\"")),
            "the login page has the upstream's button"
        );
        let interaction = hidden_field(&page.body, "interaction").unwrap();
        let csrf = hidden_field(&page.body, "csrf_token").unwrap();
        let answer = browser
            .post_form(
                "/login",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("upstream", id),
                ],
            )
            .await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        location = answer.location.unwrap();
    }
    // At the upstream, then back at the callback (a relative Location is relative to the
    // server that sent it), then consent if asked.
    let base = browser.app.base.clone();
    let mut current = base.clone();
    for _ in 0..10 {
        if location.starts_with(&client.redirect_uri) {
            break;
        }
        let absolute = url::Url::parse(&current)
            .unwrap()
            .join(&location)
            .unwrap()
            .to_string();
        if let Some(consent) = absolute
            .strip_prefix(&base)
            .filter(|p| p.starts_with("/consent"))
        {
            let (_, answer) = browser.consent(consent, "allow").await;
            location = answer.location.expect("consent redirects");
            current = base.clone();
            continue;
        }
        let step = browser.get(&absolute).await;
        assert!(
            step.status == 303 || step.status == 302,
            "{absolute}: {} {}",
            step.status,
            step.body
        );
        current = absolute;
        location = step.location.unwrap();
    }
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    Outcome {
        query: query_of(&location),
        verifier,
    }
}

/// A server that trusts loopback upstreams, with the web client.
pub async fn spawn(backend: crate::helpers::Backend) -> (TestApp, TestClient) {
    let app = crate::helpers::spawn_app_with(
        backend,
        crate::helpers::settings(&[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")]),
    )
    .await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    (app, client)
}
