//! What an operator's change to a user ends: disabling the user, requiring a password reset
//! or setting a new password ends its sessions (and the first two its token families), and
//! leaves other users' alone.

use reqwest::Method;
use serde_json::{Value, json};

use super::assert_no_password;
use crate::both_backends;
use crate::helpers::{
    Backend, PASSWORD, TestApp, TestClient, machine_client, refresh, settings, spawn_app,
    spawn_app_with,
};

both_backends!(
    requiring_a_password_reset_ends_sessions_and_families,
    disabling_a_user_ends_its_sessions_and_refresh_families,
    a_new_password_ends_the_users_sessions,
);

async fn insert_session(app: &TestApp, sub: &str, hash: u8) {
    let now = app.app.now();
    app.app
        .store
        .insert_session(&latchkey::store::SessionRecord {
            session_hash: vec![hash; 32],
            sid: format!("sid-{hash}"),
            user_sub: sub.to_owned(),
            auth_time: now,
            amr: "pwd".into(),
            created_at: now,
            expires_at: now + 3600,
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn session_exists(app: &TestApp, hash: u8) -> bool {
    app.app
        .store
        .get_session(&[hash; 32], app.app.now())
        .await
        .unwrap()
        .is_some()
}

/// A server with the password grant on, a client registered for it (and for refresh tokens),
/// and the users alice and bob (their admin API records).
async fn setup(backend: Backend) -> (TestApp, TestClient, Value, Value) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]),
    )
    .await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Legacy app",
            "grant_types": ["password", "refresh_token"],
            "scope": "openid offline_access",
        }))
        .await,
    );
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    (app, client, alice, bob)
}

/// Password grant for `username`; returns (status, body).
async fn password_grant(app: &TestApp, client: &TestClient, username: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", PASSWORD),
        ("scope", "openid offline_access"),
    ];
    let (status, body, _) = app.token(client, &form).await;
    (status, body)
}

async fn disabling_a_user_ends_its_sessions_and_refresh_families(backend: Backend) {
    let (app, client, alice, bob) = setup(backend).await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 1).await;
    insert_session(&app, sub, 2).await;
    insert_session(&app, bob["sub"].as_str().unwrap(), 3).await;
    let (status, tokens) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, bob_tokens) = password_grant(&app, &client, "bob").await;

    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["disabled"], true);
    assert!(!session_exists(&app, 1).await);
    assert!(!session_exists(&app, 2).await);
    assert!(
        session_exists(&app, 3).await,
        "other users keep their sessions"
    );
    let (status, body) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 400, "a disabled user cannot log in: {body}");
    let (status, _) = refresh(
        &app,
        &client,
        bob_tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "other users keep their tokens");

    // Re-enabled, the user can log in again (the old family stays revoked).
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["disabled"], false);
    let (status, _) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 400);
}

/// Requiring a password reset distrusts the password: the user's sessions and token families
/// end at once (as disabling does), other users keep theirs, and the next login must choose
/// a new password.
async fn requiring_a_password_reset_ends_sessions_and_families(backend: Backend) {
    let (app, client, alice, bob) = setup(backend).await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 11).await;
    insert_session(&app, bob["sub"].as_str().unwrap(), 12).await;
    let (status, tokens) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200, "{tokens}");
    let (_, bob_tokens) = password_grant(&app, &client, "bob").await;
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password_reset_required": true})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert!(!session_exists(&app, 11).await, "her session ended");
    assert!(session_exists(&app, 12).await, "other users keep theirs");
    let (status, body) = refresh(
        &app,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 400, "her token family ended: {body}");
    let (status, _) = refresh(
        &app,
        &client,
        bob_tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "other users keep their tokens");
    let (status, body) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 400, "a new password first: {body}");
}

async fn a_new_password_ends_the_users_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.create_user("alice").await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 7).await;
    let before = app
        .app
        .store
        .get_user(sub)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_no_password(&patched, "password patch");
    assert!(!patched.to_string().contains("a brand new password"));
    assert!(!session_exists(&app, 7).await);
    let after = app.app.store.get_user(sub).await.unwrap().unwrap();
    assert_ne!(after.password_hash, before);
    assert!(after.password_hash.starts_with("$argon2id$"));
    assert!(!after.disabled);
}
