//! What ends a token family from outside the token endpoint: disabling or deleting its user,
//! deleting its client. Every token of the family is refused from then on, and enabling the
//! user again does not bring it back.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, assert_error, client_credentials, field, is_active, jwt_part, refresh,
    resource_server, spawn_app_with_alice, user_tokens, userinfo_status,
};

both_backends!(
    disabling_the_user_ends_their_token_families,
    deleting_the_user_ends_their_token_families,
    deleting_the_client_ends_its_token_families,
);

async fn disabling_the_user_ends_their_token_families(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let sub = jwt_part(&access, 1)["sub"].as_str().unwrap().to_owned();
    let path = format!("/admin/users/{sub}");
    assert_eq!(
        app.admin(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"disabled": true}))
        )
        .await
        .0,
        200
    );

    let (status, body) = refresh(&app, &client, &field(&tokens, "refresh_token"), None).await;
    assert_error(status, &body, 400, "invalid_grant");
    assert!(!is_active(&app, &rs, &access).await);
    assert_eq!(userinfo_status(&app, &access).await, 401);

    // Enabling the user again does not bring the family back.
    assert_eq!(
        app.admin(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"disabled": false}))
        )
        .await
        .0,
        200
    );
    let (status, body) = refresh(&app, &client, &field(&tokens, "refresh_token"), None).await;
    assert_error(status, &body, 400, "invalid_grant");
    assert!(!is_active(&app, &rs, &access).await);
}

async fn deleting_the_user_ends_their_token_families(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let sub = jwt_part(&access, 1)["sub"].as_str().unwrap().to_owned();
    assert_eq!(
        app.admin(
            reqwest::Method::DELETE,
            &format!("/admin/users/{sub}"),
            None
        )
        .await
        .0,
        204
    );

    let (status, body) = refresh(&app, &client, &field(&tokens, "refresh_token"), None).await;
    assert_error(status, &body, 400, "invalid_grant");
    assert!(!is_active(&app, &rs, &access).await);
    assert!(!is_active(&app, &rs, &field(&tokens, "refresh_token")).await);
    assert_eq!(userinfo_status(&app, &access).await, 401);
}

async fn deleting_the_client_ends_its_token_families(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    let (_, machine) = client_credentials(&app, &client, &[]).await;
    let machine_access = field(&machine, "access_token");
    assert!(is_active(&app, &rs, &machine_access).await);

    let path = format!("/admin/clients/{}", client.client_id);
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, 204);

    let (status, body) = refresh(&app, &client, &refresh_token, None).await;
    assert_error(status, &body, 401, "invalid_client");
    for token in [&access, &refresh_token, &machine_access] {
        assert!(!is_active(&app, &rs, token).await);
    }
    assert_eq!(userinfo_status(&app, &access).await, 401);
}
