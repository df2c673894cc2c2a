//! Dynamic client registration (RFC 7591) and its management (RFC 7592): with an initial
//! access token an operator hands out, or open by configuration; registration access tokens
//! read, replace and delete a registration; what a client may not give itself is refused.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

both_backends!(
    initial_access_tokens_let_clients_register,
    registration_access_tokens_manage_a_registration,
    clients_cannot_give_themselves_more,
    open_registration_is_bounded_per_address,
    racing_registrations_spend_an_initial_token_once,
);

async fn initial_token(app: &TestApp, max_uses: i64) -> String {
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/initial-access-tokens",
            Some(&json!({"expires_in": 600, "max_uses": max_uses})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["max_uses"], max_uses);
    assert!(body["expires_at"].as_i64().unwrap() > 0);
    body["token"].as_str().unwrap().to_owned()
}

fn metadata() -> Value {
    json!({
        "client_name": "Self-registered",
        "redirect_uris": ["https://rp.example.com/cb"],
        "scope": "openid profile",
    })
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(b);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

async fn initial_access_tokens_let_clients_register(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.discovery().await["registration_endpoint"],
        app.url("/register")
    );
    let (status, body, headers) =
        send(&app, Method::POST, "/register", None, Some(&metadata())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/register",
        Some("made-up"),
        Some(&metadata()),
    )
    .await;
    assert_eq!(status, 401);
    let token = initial_token(&app, 2).await;
    for _ in 0..2 {
        let (status, body, _) = send(
            &app,
            Method::POST,
            "/register",
            Some(&token),
            Some(&metadata()),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let client_id = body["client_id"].as_str().unwrap();
        assert!(body["client_secret"].is_string());
        assert_eq!(body["client_secret_expires_at"], 0);
        assert_eq!(
            body["registration_client_uri"],
            app.url(&format!("/register/{client_id}"))
        );
        assert!(body["registration_access_token"].is_string());
        assert_eq!(body["redirect_uris"], json!(["https://rp.example.com/cb"]));
    }
    let (status, body, _) = send(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&metadata()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "used up"
    );
    // An expired token is refused too.
    let expired = initial_token(&app, 5).await;
    app.clock.advance(601);
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/register",
        Some(&expired),
        Some(&metadata()),
    )
    .await;
    assert_eq!(status, 401);
}

async fn registration_access_tokens_manage_a_registration(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = initial_token(&app, 1).await;
    let (_, registered, _) = send(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&metadata()),
    )
    .await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let rat = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/register/{client_id}");
    let (status, read, _) = send(&app, Method::GET, &path, Some(&rat), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["client_name"], "Self-registered");
    assert!(
        read.get("client_secret").is_none(),
        "the secret is not shown again"
    );
    assert_eq!(read["registration_access_token"], rat);
    for wrong in [None, Some("wrong-token"), Some(token.as_str())] {
        let (status, _, _) = send(&app, Method::GET, &path, wrong, None).await;
        assert_eq!(status, 401, "{wrong:?}");
    }
    let mut changed = metadata();
    changed["client_name"] = json!("Renamed");
    let (status, body, _) = send(&app, Method::PUT, &path, Some(&rat), Some(&changed)).await;
    assert_eq!(status, 400, "the body must carry the client_id: {body}");
    changed["client_id"] = json!(client_id);
    let (status, body, _) = send(&app, Method::PUT, &path, Some(&rat), Some(&changed)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_name"], "Renamed");
    assert_eq!(
        body["registration_access_token"], rat,
        "the token stays the same"
    );
    // Another client's token reads nothing of this one.
    let other_token = initial_token(&app, 1).await;
    let (_, other, _) = send(
        &app,
        Method::POST,
        "/register",
        Some(&other_token),
        Some(&metadata()),
    )
    .await;
    let other_rat = other["registration_access_token"].as_str().unwrap();
    let (status, _, _) = send(&app, Method::GET, &path, Some(other_rat), None).await;
    assert_eq!(status, 401);
    let r = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _, _) = send(&app, Method::GET, &path, Some(&rat), None).await;
    assert_eq!(status, 401, "a deleted client's URI answers 401");
    let (status, _) = app
        .admin(Method::GET, &format!("/admin/clients/{client_id}"), None)
        .await;
    assert_eq!(status, 404);
}

async fn clients_cannot_give_themselves_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = initial_token(&app, 100).await;
    let with = |field: &str, value: Value| {
        let mut m = metadata();
        m[field] = value;
        m
    };
    for (what, body, error) in [
        (
            "first_party",
            with("first_party", json!(true)),
            "invalid_client_metadata",
        ),
        (
            "introspection any",
            with("introspection", json!("any")),
            "invalid_client_metadata",
        ),
        (
            "allowed_resources",
            with("allowed_resources", json!(["https://api.example.com"])),
            "invalid_client_metadata",
        ),
        (
            "loopback redirect",
            with("redirect_uris", json!(["http://127.0.0.1:3000/cb"])),
            "invalid_redirect_uri",
        ),
        (
            "private redirect",
            with("redirect_uris", json!(["https://10.0.0.7/cb"])),
            "invalid_redirect_uri",
        ),
        (
            "localhost redirect",
            with("redirect_uris", json!(["https://localhost/cb"])),
            "invalid_redirect_uri",
        ),
        (
            "metadata-service jwks_uri",
            with("jwks_uri", json!("https://169.254.169.254/keys")),
            "invalid_client_metadata",
        ),
        (
            "http logo_uri",
            with("logo_uri", json!("http://rp.example.com/logo.png")),
            "invalid_client_metadata",
        ),
        (
            "bad metadata",
            with("grant_types", json!(["implicit"])),
            "invalid_client_metadata",
        ),
    ] {
        let (status, answer, _) =
            send(&app, Method::POST, "/register", Some(&token), Some(&body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(error)),
            "{what}: {answer}"
        );
    }
    // An operator's trusted hosts may be named.
    let app = spawn_app_with(backend, |env| {
        env.push((
            "LATCHKEY_REGISTRATION_TRUSTED_HOSTS".into(),
            "127.0.0.1".into(),
        ))
    })
    .await;
    let token = initial_token(&app, 1).await;
    let (status, body, _) = send(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&with("redirect_uris", json!(["http://127.0.0.1:3000/cb"]))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn open_registration_is_bounded_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |env| {
        env.push(("LATCHKEY_OPEN_REGISTRATION".into(), "true".into()))
    })
    .await;
    for i in 0..20 {
        let (status, body, _) =
            send(&app, Method::POST, "/register", None, Some(&metadata())).await;
        assert_eq!(status, 201, "registration {i}: {body}");
    }
    let (status, body, headers) =
        send(&app, Method::POST, "/register", None, Some(&metadata())).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("slow_down")));
    assert!(headers.contains_key("retry-after"));
}

async fn racing_registrations_spend_an_initial_token_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = initial_token(&app, 1).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, token, barrier) = (
                app.http.clone(),
                app.url("/register"),
                token.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(url)
                    .bearer_auth(token)
                    .json(&metadata())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut created = 0;
    for r in racers {
        if r.await.unwrap() == 201 {
            created += 1;
        }
    }
    assert_eq!(
        created, 1,
        "an initial token with one use registers one client"
    );
}
