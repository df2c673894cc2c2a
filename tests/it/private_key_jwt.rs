//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): clients
//! sign an assertion with a key they registered inline (`jwks`) or publish (`jwks_uri`); each
//! rule of the assertion is checked, a `jti` is accepted once on any node, and a client's
//! key set is fetched under the outbound rules.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, ClientKey, TestApp, spawn_app_with, spawn_node};

both_backends!(
    a_signed_assertion_authenticates_at_every_endpoint,
    every_rule_of_the_assertion_is_checked,
    an_assertion_is_accepted_once_on_any_node,
    keys_published_at_a_jwks_uri_are_fetched_and_refetched_for_a_new_kid,
    key_registrations_are_checked,
    a_client_authenticates_only_by_its_registered_method,
    a_client_id_beside_the_assertion_must_be_its_subject,
);

/// Claims of a good assertion by `client_id` for `app`'s token endpoint.
fn claims(app: &TestApp, client_id: &str, jti: &str) -> Value {
    let now = latchkey::clock::Clock::now(app.app.clock.as_ref());
    json!({
        "iss": client_id, "sub": client_id, "aud": app.url("/token"),
        "exp": now + 60, "iat": now, "jti": jti,
    })
}

async fn register(app: &TestApp, keys: Value) -> String {
    let mut metadata = json!({
        "client_name": "Signer",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "api.read",
    });
    for (k, v) in keys.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    let reg = app.create_client(metadata).await;
    assert!(reg.get("client_secret").is_none(), "no secret: {reg}");
    reg["client_id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn client_credentials(app: &TestApp, assertion: &str) -> (u16, Value) {
    post(
        app,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn a_signed_assertion_authenticates_at_every_endpoint(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("k1");
    let client_id = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let (status, body) = client_credentials(&app, &key.sign(&claims(&app, &client_id, "j1"))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    // The issuer itself is an accepted audience too, and client_id may be sent beside it.
    let mut c = claims(&app, &client_id, "j2");
    c["aud"] = json!(app.base);
    let (status, introspected) = post(
        &app,
        "/introspect",
        &[
            ("token", &token),
            ("client_id", &client_id),
            ("client_assertion_type", TYPE),
            ("client_assertion", &key.sign(&c)),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(introspected["active"], true, "{introspected}");
    let mut c = claims(&app, &client_id, "j3");
    c["aud"] = json!([app.url("/revoke"), "https://someone.else"]);
    let (status, _) = post(
        &app,
        "/revoke",
        &[
            ("token", &token),
            ("client_assertion_type", TYPE),
            ("client_assertion", &key.sign(&c)),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let doc = app.discovery().await;
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(
            doc[field]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{field}"
        );
    }
    assert!(
        doc["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
}

/// Two clients registered with one key: an assertion of the first, sent with the second's
/// `client_id`, verifies under the second's keys but names another subject, and is refused;
/// sent with its own `client_id`, or none, it passes.
async fn a_client_id_beside_the_assertion_must_be_its_subject(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("shared");
    let first = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let second = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let with_id = |client_id: &str, jti: &str| {
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.to_owned()),
            ("client_assertion_type", TYPE.to_owned()),
            ("client_assertion", key.sign(&claims(&app, &first, jti))),
        ];
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(app, "/token", &form).await
        }
    };
    let (status, body) = with_id(&second, "m1").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = with_id(&first, "m2").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = client_credentials(&app, &key.sign(&claims(&app, &first, "m3"))).await;
    assert_eq!(status, 200, "{body}");
}

async fn every_rule_of_the_assertion_is_checked(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("k1");
    let stranger = ClientKey::new("k1");
    let client_id = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let now = latchkey::clock::Clock::now(app.app.clock.as_ref());
    let with = |field: &str, value: Value| {
        let mut c = claims(&app, &client_id, &format!("jti-{field}"));
        c[field] = value;
        c
    };
    let without = |field: &str| {
        let mut c = claims(&app, &client_id, &format!("jti-no-{field}"));
        c.as_object_mut().unwrap().remove(field);
        c
    };
    let bad: Vec<(&str, String)> = vec![
        (
            "another audience",
            key.sign(&with("aud", json!("https://elsewhere.example"))),
        ),
        ("expired", key.sign(&with("exp", json!(now - 1)))),
        (
            "valid for too long",
            // Well past the 300 s bound, so a slow run cannot bring it back within it.
            key.sign(&with("exp", json!(now + 400))),
        ),
        ("no exp", key.sign(&without("exp"))),
        ("no jti", key.sign(&without("jti"))),
        (
            "iat in the future",
            key.sign(&with("iat", json!(now + 120))),
        ),
        (
            "nbf in the future",
            key.sign(&with("nbf", json!(now + 120))),
        ),
        (
            "iss not the client",
            key.sign(&with("iss", json!("someone"))),
        ),
        (
            "signed by another key",
            stranger.sign(&claims(&app, &client_id, "jti-k")),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims(&app, &client_id, "jti-none").to_string())
            ),
        ),
        (
            "alg HS256",
            key.sign_with(json!({"alg": "HS256"}), &claims(&app, &client_id, "jti-hs")),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, assertion) in bad {
        let (status, body) = client_credentials(&app, &assertion).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
    }
    // A wrong assertion type, or an assertion without its type, is refused too.
    let good = key.sign(&claims(&app, &client_id, "jti-good"));
    let (status, _) = post(
        &app,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:something:else"),
            ("client_assertion", &good),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post(
        &app,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion", &good),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Exactly at the limits is fine.
    let (status, body) = client_credentials(&app, &key.sign(&with("exp", json!(now + 300)))).await;
    assert_eq!(status, 200, "{body}");
}

async fn an_assertion_is_accepted_once_on_any_node(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let other = spawn_node(&app).await;
    let key = ClientKey::new("k1");
    let client_id = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let assertion = key.sign(&claims(&app, &client_id, "once"));
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                other.base.clone()
            };
            let (http, assertion, barrier) = (app.http.clone(), assertion.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", TYPE),
                        ("client_assertion", assertion.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for r in racers {
        if r.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 1,
        "one of 50 racing uses of one assertion, over two nodes"
    );
    // A replay later is refused too (401, or 429 now that 49 failures throttle the client).
    let (status, _) = client_credentials(&app, &assertion).await;
    assert!(status == 401 || status == 429, "{status}");
}

/// A JWK Set served on loopback, as a client would publish it; counts its fetches.
struct KeyServer {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<Mutex<u32>>,
}

async fn key_server(keys: Value) -> KeyServer {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(Mutex::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (served, counted) = (keys.clone(), fetches.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                *counted.lock().unwrap() += 1;
                axum::Json(served.lock().unwrap().clone())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    KeyServer { url, keys, fetches }
}

async fn keys_published_at_a_jwks_uri_are_fetched_and_refetched_for_a_new_kid(backend: Backend) {
    let app = spawn_app_with(backend, |env| {
        env.push((
            "LATCHKEY_REGISTRATION_TRUSTED_HOSTS".into(),
            "127.0.0.1".into(),
        ))
    })
    .await;
    let first = ClientKey::new("first");
    let server = key_server(json!({"keys": [first.jwk()]})).await;
    let client_id = register(&app, json!({"jwks_uri": server.url})).await;
    for jti in ["a", "b", "c"] {
        let (status, body) =
            client_credentials(&app, &first.sign(&claims(&app, &client_id, jti))).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(*server.fetches.lock().unwrap(), 1, "the key set is cached");
    // The client rotates to a new key; an assertion naming it fetches the set again (once
    // the short refetch guard has passed).
    let second = ClientKey::new("second");
    *server.keys.lock().unwrap() = json!({"keys": [second.jwk()]});
    app.clock.advance(31);
    let (status, body) =
        client_credentials(&app, &second.sign(&claims(&app, &client_id, "d"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(*server.fetches.lock().unwrap(), 2);
    // Unknown kids do not make Latchkey fetch again within the guard.
    let made_up = ClientKey::new("made-up");
    for jti in ["e", "f", "g"] {
        let (status, _) =
            client_credentials(&app, &made_up.sign(&claims(&app, &client_id, jti))).await;
        assert_eq!(status, 401);
    }
    assert_eq!(*server.fetches.lock().unwrap(), 2);
}

async fn key_registrations_are_checked(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("k1");
    let mut private = key.jwk();
    private["d"] = json!("c2VjcmV0");
    let cases = [
        ("no keys", json!({})),
        (
            "both jwks and jwks_uri",
            json!({"jwks": {"keys": [key.jwk()]}, "jwks_uri": "https://keys.example.com/jwks"}),
        ),
        ("a private key", json!({"jwks": {"keys": [private]}})),
        (
            "a symmetric key",
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        ),
        ("not a key set", json!({"jwks": {"kty": "EC"}})),
        (
            "http jwks_uri",
            json!({"jwks_uri": "http://keys.example.com/jwks"}),
        ),
        (
            "loopback jwks_uri",
            json!({"jwks_uri": "https://127.0.0.1/jwks"}),
        ),
        (
            "private-address jwks_uri",
            json!({"jwks_uri": "https://10.1.2.3/jwks"}),
        ),
        (
            "localhost jwks_uri",
            json!({"jwks_uri": "https://localhost/jwks"}),
        ),
        (
            "metadata-service jwks_uri",
            json!({"jwks_uri": "https://169.254.169.254/latest"}),
        ),
        (
            "an HMAC signing alg",
            json!({"jwks": {"keys": [key.jwk()]}, "token_endpoint_auth_signing_alg": "HS256"}),
        ),
    ];
    for (what, keys) in cases {
        let mut metadata = json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
        });
        for (k, v) in keys.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        let (status, body) = app
            .admin(Method::POST, "/admin/clients", Some(&metadata))
            .await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{what}");
    }
    // A registered signing algorithm binds the client to it.
    let client_id = register(
        &app,
        json!({"jwks": {"keys": [key.jwk()]}, "token_endpoint_auth_signing_alg": "ES256"}),
    )
    .await;
    let (status, _) = client_credentials(&app, &key.sign(&claims(&app, &client_id, "x"))).await;
    assert_eq!(status, 200);
    let client_id = register(
        &app,
        json!({"jwks": {"keys": [key.jwk()]}, "token_endpoint_auth_signing_alg": "RS256"}),
    )
    .await;
    let (status, _) = client_credentials(&app, &key.sign(&claims(&app, &client_id, "y"))).await;
    assert_eq!(status, 401, "ES256 where RS256 was registered");
    // A private_key_jwt client has no secret to rotate.
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("/admin/clients/{client_id}/secret"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 400);
}

async fn a_client_authenticates_only_by_its_registered_method(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = ClientKey::new("k1");
    let jwt_client = register(&app, json!({"jwks": {"keys": [key.jwk()]}})).await;
    let secret_client = app
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "scope": "api.read",
            "jwks": {"keys": [key.jwk()]},
        }))
        .await;
    let secret_id = secret_client["client_id"].as_str().unwrap();
    // The secret client signs a perfect assertion: its method is the secret, so no.
    let (status, _) = client_credentials(&app, &key.sign(&claims(&app, secret_id, "s1"))).await;
    assert_eq!(status, 401);
    // The key client sends an assertion and Basic credentials at once: several methods.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&jwt_client, Some("whatever"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", TYPE),
            (
                "client_assertion",
                &key.sign(&claims(&app, &jwt_client, "s2")),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The key client presents only its id: it is not a public client.
    let (status, _) = post(
        &app,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &jwt_client),
        ],
    )
    .await;
    assert_eq!(status, 401);
}
