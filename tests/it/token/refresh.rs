//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): every refresh rotates the token, a rotated-out
//! token presented again revokes its whole family (past the reuse grace, in which the token
//! the latest rotation replaced gets the same successor again), the scope may narrow but
//! never widen, and a family ends when unused for its idle lifetime or at its absolute one.
//! Refreshed tokens keep the grant's `auth_time` and resource.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, TestClient, assert_error, fetch_json, field, introspect, is_active, jwt_part, refresh,
    resource_server, scope_set, spawn_app, spawn_app_with_alice, spawn_app_with_alice_and,
    user_tokens, user_tokens_with, userinfo_status,
};

both_backends!(
    every_refresh_rotates_the_refresh_token_and_the_old_one_stops_working,
    reusing_a_rotated_refresh_token_revokes_the_whole_family,
    a_refresh_may_narrow_the_scope_but_never_widen_it,
    a_refresh_token_works_only_for_the_client_it_was_issued_to,
    a_refresh_token_dies_when_unused_for_its_idle_lifetime,
    a_refresh_token_family_ends_at_its_absolute_lifetime_however_often_it_is_used,
    access_tokens_from_the_last_refresh_stay_active_until_they_expire,
    refresh_tokens_need_offline_access_and_the_refresh_token_grant,
    a_refresh_returns_an_id_token_when_openid_is_in_scope,
    a_refreshed_access_token_keeps_the_resource_of_its_grant,
    a_forged_token_naming_a_family_changes_nothing,
    a_retry_within_the_reuse_grace_gets_the_same_refresh_token,
);

async fn every_refresh_rotates_the_refresh_token_and_the_old_one_stops_working(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let rt1 = field(&first, "refresh_token");
    let (status, second) = refresh(&app, &client, &rt1, None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = field(&second, "refresh_token");
    let (status, third) = refresh(&app, &client, &rt2, None).await;
    assert_eq!(status, 200, "{third}");
    let rt3 = field(&third, "refresh_token");
    assert_eq!(
        BTreeSet::from([&rt1, &rt2, &rt3]).len(),
        3,
        "every refresh gives a new refresh token"
    );
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 3600);

    // Past the reuse grace, in which a retry of rt2 would get rt3 again.
    app.clock.advance(11);
    let (status, body) = refresh(&app, &client, &rt2, None).await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn reusing_a_rotated_refresh_token_revokes_the_whole_family(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let rs = resource_server(&app).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let (a1, rt1) = (
        field(&first, "access_token"),
        field(&first, "refresh_token"),
    );
    let (_, second) = refresh(&app, &client, &rt1, None).await;
    let (a2, rt2) = (
        field(&second, "access_token"),
        field(&second, "refresh_token"),
    );
    assert!(is_active(&app, &rs, &a1).await && is_active(&app, &rs, &a2).await);
    assert_eq!(userinfo_status(&app, &a2).await, 200);

    // Past the reuse grace (a_retry_within_the_reuse_grace_gets_the_same_refresh_token).
    app.clock.advance(11);
    let (status, body) = refresh(&app, &client, &rt1, None).await;
    assert_error(status, &body, 400, "invalid_grant");

    let (status, body) = refresh(&app, &client, &rt2, None).await;
    assert_error(status, &body, 400, "invalid_grant");
    for token in [&a1, &a2, &rt2] {
        assert!(!is_active(&app, &rs, token).await, "the family is revoked");
    }
    assert_eq!(userinfo_status(&app, &a1).await, 401);
    assert_eq!(userinfo_status(&app, &a2).await, 401);
}

async fn a_refresh_may_narrow_the_scope_but_never_widen_it(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let original = "openid email offline_access";
    let first = user_tokens(&app, &client, original).await;
    let (status, narrowed) = refresh(
        &app,
        &client,
        &field(&first, "refresh_token"),
        Some("openid"),
    )
    .await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    let access = field(&narrowed, "access_token");
    assert_eq!(jwt_part(&access, 1)["scope"], "openid");
    let info = fetch_json(
        app.http
            .get(app.endpoint("userinfo_endpoint").await)
            .bearer_auth(&access),
    )
    .await;
    assert!(
        info["sub"].is_string() && info.get("email").is_none(),
        "{info}"
    );

    // The new refresh token keeps the scope originally granted (RFC 6749 §6).
    let (status, full) = refresh(
        &app,
        &client,
        &field(&narrowed, "refresh_token"),
        Some(original),
    )
    .await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(scope_set(&full["scope"]), scope_set(&json!(original)));
    let (status, omitted) = refresh(&app, &client, &field(&full, "refresh_token"), None).await;
    assert_eq!(status, 200, "{omitted}");
    assert_eq!(scope_set(&omitted["scope"]), scope_set(&json!(original)));

    // phone and api.read are registered for the client but were never granted; a scope
    // parameter naming no scope at all is malformed.
    let rt = field(&omitted, "refresh_token");
    for refused in [
        "openid email phone",
        "openid api.read",
        "openid unknown",
        " ",
    ] {
        let (status, body) = refresh(&app, &client, &rt, Some(refused)).await;
        assert_error(status, &body, 400, "invalid_scope");
    }
    let (status, body) = refresh(&app, &client, &rt, None).await;
    assert_eq!(
        status, 200,
        "a refused widening does not use the token up: {body}"
    );
}

async fn a_refresh_token_works_only_for_the_client_it_was_issued_to(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let other = TestClient::from_registration(&app.create_web_client().await);
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let (status, body) = refresh(&app, &other, &field(&tokens, "refresh_token"), None).await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn a_refresh_token_dies_when_unused_for_its_idle_lifetime(backend: Backend) {
    let (app, client) = spawn_app_with_alice_and(
        backend,
        &[
            ("LATCHKEY_REFRESH_TOKEN_IDLE_TTL", "100"),
            ("LATCHKEY_REFRESH_TOKEN_TTL", "1000"),
        ],
    )
    .await;
    let rs = resource_server(&app).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    app.clock.advance(60);
    let (status, second) = refresh(&app, &client, &field(&first, "refresh_token"), None).await;
    assert_eq!(status, 200, "{second}");
    // 120 s after the first token: past its idle lifetime, but each use restarts the clock.
    app.clock.advance(60);
    let (status, third) = refresh(&app, &client, &field(&second, "refresh_token"), None).await;
    assert_eq!(status, 200, "{third}");
    let rt3 = field(&third, "refresh_token");
    let (_, described) = introspect(&app, &rs, &rt3).await;
    assert_eq!(
        described["exp"].as_i64().unwrap() - described["iat"].as_i64().unwrap(),
        100,
        "{described}"
    );

    app.clock.advance(101);
    let (status, body) = refresh(&app, &client, &rt3, None).await;
    assert_error(status, &body, 400, "invalid_grant");
}

async fn a_refresh_token_family_ends_at_its_absolute_lifetime_however_often_it_is_used(
    backend: Backend,
) {
    // Only the absolute lifetime is set: the idle lifetime defaults to it.
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_REFRESH_TOKEN_TTL", "300")]).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    app.clock.advance(150);
    let (status, second) = refresh(&app, &client, &field(&first, "refresh_token"), None).await;
    assert_eq!(status, 200, "{second}");
    app.clock.advance(130);
    let (status, third) = refresh(&app, &client, &field(&second, "refresh_token"), None).await;
    assert_eq!(status, 200, "{third}");
    // 21 s after its last use, but 301 s after the grant.
    app.clock.advance(21);
    let (status, body) = refresh(&app, &client, &field(&third, "refresh_token"), None).await;
    assert_error(status, &body, 400, "invalid_grant");
}

/// Housekeeping purges dead grants; an access token issued by the last refresh before the
/// family's end must not lose its grant (and so its validity) before it expires itself.
async fn access_tokens_from_the_last_refresh_stay_active_until_they_expire(backend: Backend) {
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_REFRESH_TOKEN_TTL", "1000")]).await;
    let rs = resource_server(&app).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    app.clock.advance(900);
    let (status, second) = refresh(&app, &client, &field(&first, "refresh_token"), None).await;
    assert_eq!(status, 200, "{second}");
    let access = field(&second, "access_token");

    // 4000 s after the grant: every refresh token is dead, the access token has 500 s left.
    app.clock.advance(3100);
    app.app
        .store
        .purge_expired(app.app.now(), 10_000)
        .await
        .unwrap();
    assert!(
        is_active(&app, &rs, &access).await,
        "still within its own lifetime"
    );
    assert_eq!(userinfo_status(&app, &access).await, 200);

    app.clock.advance(600);
    assert!(!is_active(&app, &rs, &access).await);
}

async fn refresh_tokens_need_offline_access_and_the_refresh_token_grant(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let tokens = user_tokens(&app, &client, "openid email").await;
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access: {tokens}"
    );

    let no_refresh = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "No Refresh",
            "redirect_uris": ["https://norefresh.example.test/cb"],
            "grant_types": ["authorization_code"],
            "scope": "openid offline_access",
        }))
        .await,
    );
    let tokens = user_tokens(&app, &no_refresh, "openid offline_access").await;
    assert!(
        tokens.get("refresh_token").is_none(),
        "client lacks the refresh_token grant: {tokens}"
    );
    let web_tokens = user_tokens(&app, &client, "openid offline_access").await;
    let (status, body) = refresh(
        &app,
        &no_refresh,
        &field(&web_tokens, "refresh_token"),
        None,
    )
    .await;
    assert_error(status, &body, 400, "unauthorized_client");
}

async fn a_refresh_returns_an_id_token_when_openid_is_in_scope(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let original = jwt_part(&field(&first, "id_token"), 1);
    app.clock.advance(30);
    let (status, second) = refresh(&app, &client, &field(&first, "refresh_token"), None).await;
    assert_eq!(status, 200, "{second}");
    let id = jwt_part(&field(&second, "id_token"), 1);
    assert_eq!(id["iss"], app.base.as_str());
    assert_eq!(id["sub"], original["sub"]);
    assert_eq!(id["aud"], client.client_id.as_str());
    assert_eq!(
        id["auth_time"], original["auth_time"],
        "auth_time is the original login"
    );
    assert!(id["iat"].as_i64().unwrap() >= original["iat"].as_i64().unwrap() + 30);
    let at_hash = {
        use sha2::Digest;
        URL_SAFE_NO_PAD
            .encode(&sha2::Sha256::digest(field(&second, "access_token").as_bytes())[..16])
    };
    assert_eq!(id["at_hash"], at_hash.as_str());

    let (status, third) = refresh(
        &app,
        &client,
        &field(&second, "refresh_token"),
        Some("offline_access"),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert!(
        third.get("id_token").is_none(),
        "no openid, no ID token: {third}"
    );
}

/// RFC 8707: the resource named at the authorization request is the audience of every access
/// token of that grant, the refreshed ones included.
async fn a_refreshed_access_token_keeps_the_resource_of_its_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let resource = "https://api.example.test/v1";
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "redirect_uris": ["https://app.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access api.read",
            "allowed_resources": [resource],
        }))
        .await,
    );
    let tokens = user_tokens_with(
        &app,
        &client,
        "openid offline_access api.read",
        &[("resource", resource)],
    )
    .await;
    assert_eq!(
        jwt_part(&field(&tokens, "access_token"), 1)["aud"],
        resource
    );
    let mut refresh_token = field(&tokens, "refresh_token");
    for _ in 0..2 {
        let (status, refreshed) = refresh(&app, &client, &refresh_token, None).await;
        assert_eq!(status, 200, "{refreshed}");
        assert_eq!(
            jwt_part(&field(&refreshed, "access_token"), 1)["aud"],
            resource
        );
        // The ID token stays the client's.
        assert_eq!(
            jwt_part(&field(&refreshed, "id_token"), 1)["aud"],
            client.client_id.as_str()
        );
        refresh_token = field(&refreshed, "refresh_token");
    }
}

/// A refresh token is `family.generation.secret`, the secret carrying a MAC: a token that
/// names a family but was never issued (an older or newer generation, another secret) is
/// refused without revoking anything, since family ids are not secret (audit events carry
/// them). Only a token Latchkey issued and rotated out is reuse.
async fn a_forged_token_naming_a_family_changes_nothing(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let rt1 = field(&first, "refresh_token");
    let parts: Vec<&str> = rt1.split('.').collect();
    assert_eq!(parts.len(), 3, "family.generation.secret: {rt1}");
    assert_eq!(parts[1], "0");
    let (family, secret) = (parts[0], parts[2]);
    let mut flipped = secret.to_owned().into_bytes();
    flipped[30] = if flipped[30] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [
        format!("{family}.0.{flipped}"),
        format!("{family}.1.{secret}"),
        format!("{family}.7.{secret}"),
        format!("{family}.0.{}", &secret[..40]),
        format!("{family}.0"),
        family.to_owned(),
    ] {
        let (status, body) = refresh(&app, &client, &forged, None).await;
        assert_error(status, &body, 400, "invalid_grant");
    }
    let (status, second) = refresh(&app, &client, &rt1, None).await;
    assert_eq!(status, 200, "the family was not revoked: {second}");
    let rt2 = field(&second, "refresh_token");
    assert!(rt2.starts_with(&format!("{family}.1.")), "{rt2}");
}

/// A client that lost the answer to a rotation (a 503 during a failover, after the commit)
/// and sends the same refresh token again within the reuse grace gets the same new refresh
/// token, with a fresh access token, and its family lives on. Outside the grace (later, two
/// generations back, or with the grace off) the same token is reuse and ends the family.
async fn a_retry_within_the_reuse_grace_gets_the_same_refresh_token(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    app.clock
        .freeze_at(latchkey::clock::Clock::now(&latchkey::clock::SystemClock));
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let rt1 = field(&first, "refresh_token");
    let (status, second) = refresh(&app, &client, &rt1, None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = field(&second, "refresh_token");
    app.clock.advance(10);
    let (status, retried) = refresh(&app, &client, &rt1, None).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(field(&retried, "refresh_token"), rt2, "the same successor");
    assert_ne!(retried["access_token"], second["access_token"]);
    let (status, third) = refresh(&app, &client, &rt2, None).await;
    assert_eq!(status, 200, "the successor rotates as usual: {third}");
    let rt3 = field(&third, "refresh_token");
    let (status, body) = refresh(&app, &client, &rt1, None).await;
    assert_error(status, &body, 400, "invalid_grant");
    let (status, body) = refresh(&app, &client, &rt3, None).await;
    assert_error(status, &body, 400, "invalid_grant");

    // Eleven seconds after the rotation (the default grace is ten): reuse.
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let rt1 = field(&first, "refresh_token");
    let (_, second) = refresh(&app, &client, &rt1, None).await;
    let rt2 = field(&second, "refresh_token");
    app.clock.advance(11);
    let (status, body) = refresh(&app, &client, &rt1, None).await;
    assert_error(status, &body, 400, "invalid_grant");
    let (status, body) = refresh(&app, &client, &rt2, None).await;
    assert_error(status, &body, 400, "invalid_grant");

    // With the grace off, an immediate retry is reuse.
    let (app, client) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", "0")]).await;
    let first = user_tokens(&app, &client, "openid offline_access").await;
    let rt1 = field(&first, "refresh_token");
    let (_, second) = refresh(&app, &client, &rt1, None).await;
    let rt2 = field(&second, "refresh_token");
    let (status, body) = refresh(&app, &client, &rt1, None).await;
    assert_error(status, &body, 400, "invalid_grant");
    let (status, body) = refresh(&app, &client, &rt2, None).await;
    assert_error(status, &body, 400, "invalid_grant");
}
