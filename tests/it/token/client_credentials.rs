//! The client_credentials grant: only for confidential clients that register it, scope within
//! the registered one, RFC 9068 access tokens about the client and without a refresh token,
//! and the audience a requested resource only when the client may use it (RFC 8707).

use std::collections::BTreeSet;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, TestClient, assert_error, client_credentials, field, introspect, jwt_part,
    machine_client, refresh, resource_server, scope_set, spawn_app, spawn_app_with_alice,
    user_tokens,
};

both_backends!(
    client_credentials_is_for_confidential_clients_that_register_it,
    client_credentials_scope_defaults_to_and_stays_within_the_registered_scope,
    client_credentials_tokens_are_rfc9068_jwts_about_the_client_without_refresh_token,
    client_credentials_audience_is_the_requested_resource_only_when_allowed,
);

async fn client_credentials_is_for_confidential_clients_that_register_it(backend: Backend) {
    let (app, web) = spawn_app_with_alice(backend).await;
    let public = TestClient::from_registration(
        &app.create_client(json!({
            "redirect_uris": ["http://127.0.0.1:7777/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid api.read",
        }))
        .await,
    );
    let (status, body) = client_credentials(&app, &public, &[]).await;
    assert!(
        matches!(
            (status, body["error"].as_str()),
            (400, Some("unauthorized_client")) | (401, Some("invalid_client"))
        ),
        "{status} {body}"
    );
    let code_only = TestClient::from_registration(
        &app.create_client(json!({
            "redirect_uris": ["https://codeonly.example.test/cb"],
            "scope": "openid api.read",
        }))
        .await,
    );
    let (status, body) = client_credentials(&app, &code_only, &[]).await;
    assert_error(status, &body, 400, "unauthorized_client");
    let (status, body) = client_credentials(&app, &web, &[]).await;
    assert_eq!(status, 200, "{body}");
}

async fn client_credentials_scope_defaults_to_and_stays_within_the_registered_scope(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let machine = machine_client(
        &app.create_client(
            json!({"grant_types": ["client_credentials"], "scope": "api.read api.write"}),
        )
        .await,
    );
    let (status, body) = client_credentials(&app, &machine, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        scope_set(&body["scope"]),
        scope_set(&json!("api.read api.write"))
    );
    assert_eq!(
        scope_set(&jwt_part(&field(&body, "access_token"), 1)["scope"]),
        scope_set(&body["scope"])
    );

    let (status, body) = client_credentials(&app, &machine, &[("scope", "api.write")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api.write");
    assert_eq!(
        jwt_part(&field(&body, "access_token"), 1)["scope"],
        "api.write"
    );

    for scope in ["api.read api.admin", "api.admin", "openid"] {
        let (status, body) = client_credentials(&app, &machine, &[("scope", scope)]).await;
        assert_error(status, &body, 400, "invalid_scope");
    }
}

async fn client_credentials_tokens_are_rfc9068_jwts_about_the_client_without_refresh_token(
    backend: Backend,
) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let (status, first) = client_credentials(&app, &client, &[]).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("refresh_token").is_none(), "{first}");
    assert!(first.get("id_token").is_none(), "{first}");
    assert_eq!(first["token_type"], "Bearer");
    let access = field(&first, "access_token");
    assert_eq!(jwt_part(&access, 0)["typ"], "at+jwt");
    let claims = jwt_part(&access, 1);
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let mut jtis = BTreeSet::new();
    jtis.insert(claims["jti"].as_str().unwrap().to_owned());
    for _ in 0..3 {
        let (_, again) = client_credentials(&app, &client, &[]).await;
        jtis.insert(
            jwt_part(&field(&again, "access_token"), 1)["jti"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let user = user_tokens(&app, &client, "openid offline_access").await;
    jtis.insert(
        jwt_part(&field(&user, "access_token"), 1)["jti"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let (_, refreshed) = refresh(&app, &client, &field(&user, "refresh_token"), None).await;
    jtis.insert(
        jwt_part(&field(&refreshed, "access_token"), 1)["jti"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    assert_eq!(jtis.len(), 6, "every access token has its own jti");
}

async fn client_credentials_audience_is_the_requested_resource_only_when_allowed(backend: Backend) {
    let app = spawn_app(backend).await;
    let rs = resource_server(&app).await;
    let resource = "https://api.example.test/v1";
    let machine = machine_client(
        &app.create_client(json!({
            "grant_types": ["client_credentials"],
            "scope": "api.read",
            "allowed_resources": [resource],
        }))
        .await,
    );
    let (status, body) = client_credentials(&app, &machine, &[("resource", resource)]).await;
    assert_eq!(status, 200, "{body}");
    let access = field(&body, "access_token");
    assert_eq!(jwt_part(&access, 1)["aud"], resource);
    assert_eq!(introspect(&app, &rs, &access).await.1["aud"], resource);

    let (status, body) = client_credentials(&app, &machine, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(&field(&body, "access_token"), 1)["aud"],
        machine.client_id.as_str()
    );

    for other in ["https://api.example.test/v2", "https://evil.example/"] {
        let (status, body) = client_credentials(&app, &machine, &[("resource", other)]).await;
        assert_error(status, &body, 400, "invalid_target");
    }
    // A resource another client may use is still not this client's.
    let (status, body) = client_credentials(&app, &rs, &[("resource", resource)]).await;
    assert_error(status, &body, 400, "invalid_target");
}
