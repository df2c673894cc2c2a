//! Pushed authorization requests (PAR, RFC 9126) and signed request objects (JAR, RFC 9101):
//! a pushed request is validated when pushed, taken once by any node, and only its parameters
//! count; a request object counts only when the client's key signed it for this server.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, ClientKey, PASSWORD, TestApp, TestClient, query_of, spawn_app_with,
    spawn_app_with_alice, spawn_app_with_alice_and, spawn_node,
};

both_backends!(
    a_pushed_request_is_used_once_and_only_its_parameters_count,
    pushed_requests_are_validated_when_pushed,
    pushed_requests_can_be_required,
    racing_redemptions_of_a_request_uri_take_it_once,
    signed_request_objects_carry_the_request,
    every_rule_of_the_request_object_is_checked,
    signed_requests_can_be_required_and_pushed,
);

const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// POST /par as `client` (Basic) with `form`.
async fn push(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/par"))
        .basic_auth(&client.client_id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn request(client: &TestClient, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client.client_id.clone()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("scope", "openid".into()),
        ("state", state.into()),
    ]
}

fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Walks a flow that `step` (the answer to /authorize) starts: login, consent, to the code.
async fn finish_flow(browser: &Browser<'_>, step: crate::helpers::Step) -> String {
    assert_eq!(step.status, 303, "{}", step.body);
    let mut location = step.location.unwrap();
    if location.starts_with("/login") {
        location = browser
            .login(&location, "alice", PASSWORD)
            .await
            .location
            .unwrap();
    }
    if location.starts_with("/consent") {
        location = browser
            .consent(&location, "allow")
            .await
            .1
            .location
            .unwrap();
    }
    location
}

async fn a_pushed_request_is_used_once_and_only_its_parameters_count(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let (status, pushed) = push(&app, &client, &borrowed(&request(&client, "pushed-state"))).await;
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["expires_in"], 60);
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with(URN));
    let browser = Browser::new(&app);
    // Parameters sent beside the request_uri do not count (the state here is ignored).
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", &request_uri),
            ("state", "outside"),
        ])
        .await;
    let location = finish_flow(&browser, step).await;
    let q = query_of(&location);
    assert!(location.starts_with(&client.redirect_uri));
    assert_eq!(q["state"], "pushed-state");
    assert!(q.contains_key("code"));
    // Used once.
    let again = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", &request_uri),
        ])
        .await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("invalid_request_uri"), "{}", again.body);
    // Another client's request_uri, an expired one, and one not from PAR.
    let other = TestClient::from_registration(&app.create_web_client().await);
    let (_, pushed) = push(&app, &client, &borrowed(&request(&client, "s"))).await;
    let theirs = pushed["request_uri"].as_str().unwrap();
    let step = browser
        .authorize(&[("client_id", &other.client_id), ("request_uri", theirs)])
        .await;
    assert_eq!(step.status, 400);
    let (_, pushed) = push(&app, &client, &borrowed(&request(&client, "s"))).await;
    app.clock.advance(61);
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", pushed["request_uri"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(step.status, 400, "expired after 60 s");
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", "https://client.example/request.jwt"),
        ])
        .await;
    assert_eq!(step.status, 400);
    assert!(step.body.contains("request_uri_not_supported"));
    let doc = app.discovery().await;
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        app.url("/par")
    );
    assert_eq!(doc["require_pushed_authorization_requests"], false);
}

async fn pushed_requests_are_validated_when_pushed(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let mut bad_redirect = request(&client, "s");
    bad_redirect[2].1 = "https://evil.example/cb".into();
    let mut bad_scope = request(&client, "s");
    bad_scope[3].1 = "openid not-registered".into();
    let mut other_client = request(&client, "s");
    other_client[1].1 = "someone-else".into();
    let mut with_uri = request(&client, "s");
    with_uri.push(("request_uri", format!("{URN}x")));
    for (what, form, expected) in [
        (
            "unregistered redirect_uri",
            bad_redirect,
            (400, "invalid_request"),
        ),
        (
            "scope beyond the registration",
            bad_scope,
            (400, "invalid_scope"),
        ),
        // The client_id must be the authenticated client's (here its Basic credentials').
        ("another client_id", other_client, (401, "invalid_client")),
        ("a request_uri inside", with_uri, (400, "invalid_request")),
    ] {
        let (status, body) = push(&app, &client, &borrowed(&form)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (expected.0, Some(expected.1)),
            "{what}: {body}"
        );
    }
    // Unauthenticated pushes are refused like token requests.
    let anonymous = TestClient {
        secret: Some("wrong".into()),
        ..TestClient::from_registration(&app.create_web_client().await)
    };
    let (status, body) = push(&app, &anonymous, &borrowed(&request(&anonymous, "s"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

async fn pushed_requests_can_be_required(backend: Backend) {
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_REQUIRE_PAR", "true")]).await;
    let browser = Browser::new(&app);
    let plain = browser.authorize(&borrowed(&request(&client, "s"))).await;
    refused_at_the_redirect_uri(&plain);
    let (_, pushed) = push(&app, &client, &borrowed(&request(&client, "s"))).await;
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", pushed["request_uri"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(step.status, 303);
    assert_eq!(
        app.discovery().await["require_pushed_authorization_requests"],
        true
    );
    // Per client, on a server that does not require it.
    let (app, _) = spawn_app_with_alice(backend).await;
    let strict = TestClient::from_registration(
        &app.create_client(json!({
            "redirect_uris": ["https://strict.example/cb"],
            "scope": "openid",
            "require_pushed_authorization_requests": true,
        }))
        .await,
    );
    let browser = Browser::new(&app);
    let plain = browser.authorize(&borrowed(&request(&strict, "s"))).await;
    refused_at_the_redirect_uri(&plain);
    let (status, _) = push(&app, &strict, &borrowed(&request(&strict, "s"))).await;
    assert_eq!(status, 201);
}

async fn racing_redemptions_of_a_request_uri_take_it_once(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let other = spawn_node(&app).await;
    let (_, pushed) = push(&app, &client, &borrowed(&request(&client, "s"))).await;
    let uri = pushed["request_uri"].as_str().unwrap().to_owned();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                other.base.clone()
            };
            let query = serde_urlencoded::to_string([
                ("client_id", client.client_id.as_str()),
                ("request_uri", uri.as_str()),
            ])
            .unwrap();
            let (http, barrier) = (app.http.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                http.get(format!("{base}/authorize?{query}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        49,
        "{statuses:?}"
    );
}

/// A client with a key of its own for request objects.
async fn signing_client(app: &TestApp, key: &ClientKey, extra: Value) -> TestClient {
    let mut metadata = json!({
        "client_name": "Signer",
        "redirect_uris": ["https://signer.example/cb"],
        "scope": "openid profile",
        "jwks": {"keys": [key.jwk()]},
    });
    for (k, v) in extra.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    TestClient::from_registration(&app.create_client(metadata).await)
}

fn object_claims(app: &TestApp, client: &TestClient, state: &str) -> Value {
    json!({
        "iss": client.client_id, "aud": app.base,
        "response_type": "code", "client_id": client.client_id,
        "redirect_uri": client.redirect_uri, "scope": "openid", "state": state,
        "max_age": 3600,
    })
}

fn object_header(key: &ClientKey) -> Value {
    json!({"alg": "ES256", "kid": key.kid, "typ": "oauth-authz-req+jwt"})
}

async fn signed_request_objects_carry_the_request(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("alice").await;
    let key = ClientKey::new("k1");
    let client = signing_client(&app, &key, json!({})).await;
    let object = key.sign_with(object_header(&key), &object_claims(&app, &client, "inside"));
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request", &object),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "outside"),
        ])
        .await;
    let location = finish_flow(&browser, step).await;
    assert_eq!(
        query_of(&location)["state"],
        "inside",
        "only the object's parameters count"
    );
    let doc = app.discovery().await;
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert!(
        doc["request_object_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
}

async fn every_rule_of_the_request_object_is_checked(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("k1");
    let stranger = ClientKey::new("k1");
    let client = signing_client(&app, &key, json!({})).await;
    let good = object_claims(&app, &client, "s");
    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        c
    };
    let now = latchkey::clock::Clock::now(app.app.clock.as_ref());
    let none = format!(
        "{}.{}.",
        base64_url(&json!({"alg": "none"})),
        base64_url(&good)
    );
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("alg none", none, vec![]),
        (
            "another key",
            stranger.sign_with(object_header(&stranger), &good),
            vec![],
        ),
        (
            "typ of an ID token",
            key.sign_with(json!({"alg": "ES256", "kid": "k1", "typ": "JWT+id"}), &good),
            vec![],
        ),
        (
            "aud of another server",
            key.sign_with(
                object_header(&key),
                &with("aud", json!("https://other.example")),
            ),
            vec![],
        ),
        (
            "iss of another client",
            key.sign_with(object_header(&key), &with("iss", json!("mallory"))),
            vec![],
        ),
        (
            "expired",
            key.sign_with(object_header(&key), &with("exp", json!(now - 1))),
            vec![],
        ),
        (
            "response_type outside differs",
            key.sign_with(object_header(&key), &good),
            vec![("response_type", "token")],
        ),
        ("garbage", "not-a-jwt".into(), vec![]),
    ];
    let browser = Browser::new(&app);
    for (what, object, outside) in cases {
        let mut params = vec![
            ("client_id", client.client_id.as_str()),
            ("request", object.as_str()),
        ];
        params.extend(outside);
        let step = browser.authorize(&params).await;
        assert_eq!(step.status, 400, "{what}: {}", step.body);
        assert!(
            step.body.contains("invalid_request_object"),
            "{what}: {}",
            step.body
        );
    }
    // A registered algorithm binds the client's objects to it.
    let bound = signing_client(&app, &key, json!({"request_object_signing_alg": "RS256"})).await;
    let object = key.sign_with(object_header(&key), &object_claims(&app, &bound, "s"));
    let step = browser
        .authorize(&[("client_id", &bound.client_id), ("request", &object)])
        .await;
    assert_eq!(step.status, 400);
}

fn base64_url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn signed_requests_can_be_required_and_pushed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("alice").await;
    let key = ClientKey::new("k1");
    let client = signing_client(&app, &key, json!({"require_signed_request_object": true})).await;
    let browser = Browser::new(&app);
    let plain = browser.authorize(&borrowed(&request(&client, "s"))).await;
    refused_at_the_redirect_uri(&plain);
    let (status, body) = push(&app, &client, &borrowed(&request(&client, "s"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // A pushed request may carry the signed object.
    let object = key.sign_with(
        object_header(&key),
        &object_claims(&app, &client, "pushed-object"),
    );
    let (status, pushed) = push(
        &app,
        &client,
        &[("client_id", &client.client_id), ("request", &object)],
    )
    .await;
    assert_eq!(status, 201, "{pushed}");
    let step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", pushed["request_uri"].as_str().unwrap()),
        ])
        .await;
    let location = finish_flow(&browser, step).await;
    assert_eq!(query_of(&location)["state"], "pushed-object");
    // Registering the requirement needs keys.
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/admin/clients",
            Some(&json!({"redirect_uris": ["https://x.example/cb"], "require_signed_request_object": true})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
}

/// A plain request where a pushed or signed one is required: refused with
/// `invalid_request` at the registered redirect URI the request named.
fn refused_at_the_redirect_uri(step: &crate::helpers::Step) {
    assert_eq!(step.status, 303, "{}", step.body);
    let q = query_of(step.location.as_deref().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("code"));
}
