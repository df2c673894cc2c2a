//! The token endpoint's HTTP hygiene: answers are never cached, only form POSTs are taken,
//! malformed requests get the right RFC 6749 error, and garbage or oversized bodies get a JSON
//! 4xx, never a 5xx.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestClient, assert_error, post_as, spawn_app_with_alice};

both_backends!(
    token_responses_are_never_cached,
    the_token_endpoint_takes_only_form_posts,
    malformed_token_requests_are_refused_with_the_right_error,
    garbage_bodies_get_a_json_4xx_never_a_5xx,
);

async fn token_responses_are_never_cached(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let url = app.endpoint("token_endpoint").await;
    let wrong = TestClient {
        secret: Some("wrong".into()),
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    let success = [("grant_type", "client_credentials")];
    let bad_scope = [("grant_type", "client_credentials"), ("scope", "admin")];
    let cases = [
        (&client, &success[..], 200),
        (&client, &bad_scope[..], 400),
        (&wrong, &success[..], 401),
    ];
    for (who, form, expected) in cases {
        let (status, body, headers) = post_as(&app, &url, who, form).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(headers["cache-control"], "no-store", "{status}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
}

async fn the_token_endpoint_takes_only_form_posts(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let url = app.endpoint("token_endpoint").await;
    let get = app.http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let secret = client.secret.as_deref();
    let as_json = app
        .http
        .post(&url)
        .basic_auth(&client.client_id, secret)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let status = as_json.status().as_u16();
    assert_error(
        status,
        &as_json.json().await.unwrap(),
        400,
        "invalid_request",
    );
    let untyped = app
        .http
        .post(&url)
        .basic_auth(&client.client_id, secret)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = untyped.status().as_u16();
    assert_error(
        status,
        &untyped.json().await.unwrap(),
        400,
        "invalid_request",
    );
    let with_charset = app
        .http
        .post(&url)
        .basic_auth(&client.client_id, secret)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(with_charset.status(), 200);
}

async fn malformed_token_requests_are_refused_with_the_right_error(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            "invalid_request",
        ),
        (
            &[("grant_type", "client_credentials"), ("scope", "  ")],
            "invalid_scope",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api.read"),
                ("scope", "api.write"),
            ],
            "invalid_request",
        ),
        (&[("scope", "api.read")], "invalid_request"),
        (&[("grant_type", "")], "invalid_request"),
        (
            &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")],
            "unsupported_grant_type",
        ),
        // Supported, but this client did not register it (RFC 6749 §5.2).
        (
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            "unauthorized_client",
        ),
        (&[("grant_type", "implicit")], "unsupported_grant_type"),
    ];
    for (form, expected) in cases {
        let (status, body, _) = app.token(&client, form).await;
        assert_error(status, &body, 400, expected);
    }
}

async fn garbage_bodies_get_a_json_4xx_never_a_5xx(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let secret = client.secret.clone().unwrap();
    let bodies: [&[u8]; 8] = [
        b"\xff\xfe\xfd\x00\x01",
        b"&&&===&%%%zz%",
        b"grant_type=client_credentials&client_id=%00%ff&client_secret=%00",
        b"grant_type=client_credentials&client_id=a\x00b\xff&client_secret=x",
        b"grant_type=%ff%00&client_id=%C0%80",
        b"grant_type=refresh_token&refresh_token=%00%ff&token=%00",
        b"grant_type=authorization_code&code=%00&redirect_uri=%ff&code_verifier=%00",
        b"token=%00%ff&token_type_hint=%00",
    ];
    let nul_basic = format!("Basic {}", STANDARD.encode("a%00b:x"));
    let good_basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{secret}", client.client_id))
    );
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let url = app.endpoint(key).await;
        for body in bodies {
            for authorization in [None, Some(nul_basic.as_str()), Some(good_basic.as_str())] {
                let mut request = app
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.to_vec());
                if let Some(a) = authorization {
                    request = request.header("authorization", a);
                }
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                let what = format!(
                    "{key} {:?} {authorization:?}",
                    String::from_utf8_lossy(body)
                );
                // Revocation and introspection answer 200 for a token they do not know, even
                // one of garbage bytes; everything else is a client error.
                let unknown_token_answer = key != "token_endpoint" && status == 200;
                assert!(
                    (400..500).contains(&status) || unknown_token_answer,
                    "{what}: {status}"
                );
                if !unknown_token_answer {
                    assert!(
                        r.headers()["content-type"]
                            .to_str()
                            .unwrap()
                            .starts_with("application/json"),
                        "{what}"
                    );
                    let json: Value = r.json().await.unwrap();
                    assert!(json["error"].is_string(), "{what}: {json}");
                }
            }
        }
        // A body over the 64 KiB limit is refused before it is read, with the same shape.
        let oversized = format!(
            "grant_type=client_credentials&pad={}",
            "a".repeat(64 * 1024)
        );
        let r = app
            .http
            .post(&url)
            .header("authorization", good_basic.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(oversized)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{key}");
        // The unread rest of the body spoils the connection; the client is told not to reuse it.
        assert_eq!(r.headers()["connection"], "close", "{key}");
        assert_eq!(r.headers()["content-type"], "application/json", "{key}");
        let json: Value = r.json().await.unwrap();
        assert_eq!(json["error"], "invalid_request", "{key}: {json}");
    }
}
