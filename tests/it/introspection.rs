//! Token introspection (RFC 7662) for authenticated confidential clients: the full answer for
//! active access and refresh tokens, and exactly `{"active": false}` for expired, revoked,
//! forged, foreign-issuer, ID and garbage tokens, and for tokens issued to another client
//! unless the asking client is a resource server (`"introspection": "any"`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, TestApp, TestClient, assert_error, client_credentials, field, introspect, is_active,
    jwt_part, machine_client, post_as, refresh, resource_server, revoke, spawn_app, spawn_app_with,
    spawn_app_with_alice, spawn_app_with_alice_and, user_tokens,
};

both_backends!(
    an_active_access_token_is_described_in_full,
    an_active_refresh_token_is_described_as_a_refresh_token,
    an_expired_access_token_is_only_inactive,
    revoked_tokens_are_only_inactive,
    garbage_forged_and_id_tokens_are_only_inactive,
    tokens_of_another_latchkey_are_only_inactive,
    introspection_needs_an_authenticated_confidential_client,
    only_the_issuing_client_or_a_resource_server_learns_about_a_token,
    introspecting_another_clients_refresh_token_changes_nothing,
);

async fn inactive(app: &TestApp, client: &TestClient, token: &str) {
    let (status, body) = introspect(app, client, token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"active": false}), "{token:.40}");
}

async fn an_active_access_token_is_described_in_full(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid email offline_access").await;
    let access = field(&tokens, "access_token");
    let claims = jwt_part(&access, 1);
    let url = app.endpoint("introspection_endpoint").await;
    let (status, body, headers) = post_as(&app, &url, &rs, &[("token", &access)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "openid email offline_access");
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(body["sub"], claims["sub"]);
    assert_eq!(body["aud"], client.client_id.as_str());
    assert_eq!(body["iss"], app.base.as_str());
    assert_eq!(body["jti"], claims["jti"]);
    assert_eq!(body["token_type"], "Bearer");
    for claim in ["exp", "iat", "nbf"] {
        assert!(body[claim].is_i64(), "{claim}: {body}");
        assert_eq!(body[claim], claims[claim], "{claim}");
    }
    assert_eq!(
        body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
        3600
    );

    // A client_credentials token is about the client itself, which may introspect it.
    let (_, machine) = client_credentials(&app, &client, &[("scope", "api.read")]).await;
    let (status, body) = introspect(&app, &client, &field(&machine, "access_token")).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], client.client_id.as_str());
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(body["scope"], "api.read");
}

async fn an_active_refresh_token_is_described_as_a_refresh_token(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let refresh_token = field(&tokens, "refresh_token");
    let (status, body) = introspect(&app, &rs, &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(
        body["sub"],
        jwt_part(&field(&tokens, "access_token"), 1)["sub"]
    );
    assert_eq!(body["scope"], "openid offline_access");
    assert_eq!(body["iss"], app.base.as_str());
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    // Rotated out: inactive.
    let (status, _) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 200);
    inactive(&app, &rs, &refresh_token).await;
}

async fn an_expired_access_token_is_only_inactive(backend: Backend) {
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_ACCESS_TOKEN_TTL", "300")]).await;
    let rs = resource_server(&app).await;
    let user_access = field(&user_tokens(&app, &client, "openid").await, "access_token");
    let (_, machine) = client_credentials(&app, &client, &[]).await;
    let machine_access = field(&machine, "access_token");
    app.clock.advance(290);
    assert!(
        is_active(&app, &rs, &user_access).await && is_active(&app, &rs, &machine_access).await
    );
    app.clock.advance(11);
    inactive(&app, &rs, &user_access).await;
    inactive(&app, &rs, &machine_access).await;
}

async fn revoked_tokens_are_only_inactive(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let second = user_tokens(&app, &client, "openid offline_access").await;
    let access = field(&first, "access_token");
    assert_eq!(revoke(&app, &client, &access, None).await, 200);
    inactive(&app, &rs, &access).await;
    let refresh_token = field(&second, "refresh_token");
    assert_eq!(revoke(&app, &client, &refresh_token, None).await, 200);
    inactive(&app, &rs, &refresh_token).await;
    inactive(&app, &rs, &field(&second, "access_token")).await;
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn garbage_forged_and_id_tokens_are_only_inactive(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let parts: Vec<&str> = access.split('.').collect();
    let header = jwt_part(&access, 0);
    let mut claims = jwt_part(&access, 1);

    let mut unsigned_header = header.clone();
    unsigned_header["alg"] = json!("none");
    let unsigned = format!("{}.{}.", b64(&unsigned_header), parts[1]);
    claims["scope"] = json!("openid offline_access admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let truncated = &access[..access.len() - 4];
    let id_token = field(&tokens, "id_token");
    let garbage = [
        "garbage",
        "a.b.c",
        "....",
        "\u{fffd}x",
        unsigned.as_str(),
        tampered.as_str(),
        truncated,
        id_token.as_str(),
        &"y".repeat(8_000),
    ];
    for token in garbage {
        inactive(&app, &rs, token).await;
    }
    // A control character cannot be part of any token: the request itself is refused.
    let (status, body) = introspect(&app, &rs, "abc\u{0}def").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        is_active(&app, &rs, &access).await,
        "the genuine token is still active"
    );
}

async fn tokens_of_another_latchkey_are_only_inactive(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    // Another instance with its own keys, one under another issuer and one impersonating
    // this issuer.
    let elsewhere = spawn_app(backend).await;
    let base = app.base.clone();
    let impostor = spawn_app_with(backend, move |env| {
        env.retain(|(k, _)| k != "LATCHKEY_ISSUER");
        env.push(("LATCHKEY_ISSUER".to_owned(), base));
    })
    .await;
    for other in [&elsewhere, &impostor] {
        let machine = machine_client(
            &other
                .create_client(
                    serde_json::json!({"grant_types": ["client_credentials"], "scope": "api.read"}),
                )
                .await,
        );
        let (status, body) = client_credentials(other, &machine, &[]).await;
        assert_eq!(status, 200, "{body}");
        let foreign = field(&body, "access_token");
        // Active where it was issued (the impostor's discovery names this server's URLs, so
        // its own endpoint is addressed directly).
        let (_, there, _) = post_as(
            other,
            &other.url("/introspect"),
            &machine,
            &[("token", &foreign)],
        )
        .await;
        assert_eq!(there["active"], true, "{there}");
        inactive(&app, &rs, &foreign).await;
        inactive(&app, &client, &foreign).await;
    }
}

async fn introspection_needs_an_authenticated_confidential_client(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let access = field(&user_tokens(&app, &client, "openid").await, "access_token");
    let url = app.endpoint("introspection_endpoint").await;
    let r = app
        .http
        .post(&url)
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 401, "invalid_client");
    let id_only = TestClient {
        secret: None,
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    let (status, body, _) = post_as(&app, &url, &id_only, &[("token", &access)]).await;
    assert_error(status, &body, 401, "invalid_client");
    let (status, body, _) = post_as(&app, &url, &client, &[]).await;
    assert_error(status, &body, 400, "invalid_request");
}

/// Another confidential web client (`"introspection"` left at its default, `own`).
async fn other_web_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Other Web App",
            "redirect_uris": ["https://other.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "openid offline_access api.read",
        }))
        .await,
    )
}

/// Client B learns nothing about client A's access, refresh or client_credentials tokens:
/// the answer is exactly the one for garbage. A itself, and a resource server registered
/// with `"introspection": "any"`, get the full answer. The setting is client metadata,
/// answered by the admin API.
async fn only_the_issuing_client_or_a_resource_server_learns_about_a_token(backend: Backend) {
    let (app, a) = spawn_app_with_alice(backend).await;
    let b = other_web_client(&app).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &a, "openid offline_access").await;
    let (_, machine) = client_credentials(&app, &a, &[("scope", "api.read")]).await;
    let a_tokens = [
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
        field(&machine, "access_token"),
    ];
    for token in &a_tokens {
        inactive(&app, &b, token).await;
        let (status, mine) = introspect(&app, &a, token).await;
        assert_eq!((status, &mine["active"]), (200, &json!(true)), "{mine}");
        assert_eq!(mine["client_id"], a.client_id.as_str());
        let (status, described) = introspect(&app, &rs, token).await;
        assert_eq!((status, &described), (200, &mine), "the same answer");
    }
    // B's own token is B's to see, and not A's.
    let (_, b_machine) = client_credentials(&app, &b, &[("scope", "api.read")]).await;
    let b_access = field(&b_machine, "access_token");
    assert!(is_active(&app, &b, &b_access).await);
    inactive(&app, &a, &b_access).await;
    assert!(is_active(&app, &rs, &b_access).await);

    // The admin API shows the setting; the default is `own`.
    for (client, expected) in [(&a, "own"), (&b, "own"), (&rs, "any")] {
        let (status, body) = app
            .admin(
                reqwest::Method::GET,
                &format!("/admin/clients/{}", client.client_id),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["introspection"], expected, "{body}");
    }
    // A public client cannot introspect at all, so it cannot be registered with `any`.
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/admin/clients",
            Some(&json!({
                "redirect_uris": ["http://127.0.0.1:7777/callback"],
                "token_endpoint_auth_method": "none",
                "introspection": "any",
            })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{body}"
    );
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/admin/clients",
            Some(&json!({"grant_types": ["client_credentials"], "introspection": "everything"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{body}"
    );
}

/// Introspection is a read: another client asking about A's refresh token, current or
/// rotated out, many times, neither rotates it nor counts as reuse. A's token family
/// lives on, and no reuse event is recorded.
async fn introspecting_another_clients_refresh_token_changes_nothing(backend: Backend) {
    let (app, a) = spawn_app_with_alice(backend).await;
    let b = other_web_client(&app).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &a, "openid offline_access").await;
    let first = field(&tokens, "refresh_token");
    for _ in 0..20 {
        inactive(&app, &b, &first).await;
    }
    assert!(is_active(&app, &rs, &first).await);
    let (status, rotated) = refresh(&app, &a, &first, None).await;
    assert_eq!(status, 200, "the token still works for A: {rotated}");
    let second = field(&rotated, "refresh_token");
    // The rotated-out token, asked about by B and by the resource server: only inactive.
    for client in [&b, &rs] {
        for _ in 0..5 {
            inactive(&app, client, &first).await;
        }
    }
    assert!(is_active(&app, &a, &second).await);
    assert!(is_active(&app, &a, &field(&rotated, "access_token")).await);
    let (status, third) = refresh(&app, &a, &second, None).await;
    assert_eq!(status, 200, "the family was not revoked: {third}");
    assert!(is_active(&app, &a, &field(&third, "access_token")).await);
    let (status, events) = app
        .admin(
            reqwest::Method::GET,
            "/admin/events?kind=refresh_reuse_detected",
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["items"], json!([]), "{events}");
}
