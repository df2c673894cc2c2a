//! The token endpoint through the token lifecycle: refresh-token rotation, families and their
//! lifetimes, racing redemptions, the client_credentials and password grants, client
//! authentication (shared with the revocation and introspection endpoints), and the endpoint's
//! HTTP hygiene. The requests they make are in `crate::helpers`.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, TestApp, TestClient, assert_error, client_credentials, code_form,
    fetch_json, field, introspect, is_active, jwt_part, machine_client, pkce_pair, post_as,
    refresh, resource_server, scope_set, spawn_app, spawn_app_with_alice, spawn_app_with_alice_and,
    user_tokens, user_tokens_with, userinfo_status,
};

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Sends the same token request `n` times at once (all tasks released together by a
/// barrier, over one shared reqwest client); returns every (status, body).
async fn race(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    n: usize,
) -> Vec<(u16, Value)> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let http = app.http.clone();
        let url = app.url("/token");
        let form = form.clone();
        let id = client.client_id.clone();
        let secret = client.secret.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let request = http.post(url).basic_auth(id, secret).form(&form);
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    tasks.join_all().await
}

fn assert_exactly_one_success(results: &[(u16, Value)]) {
    let successes = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(successes, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_error(*status, body, 400, "invalid_grant");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

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
    disabling_the_user_ends_their_token_families,
    deleting_the_user_ends_their_token_families,
    deleting_the_client_ends_its_token_families,
    a_code_redeemed_in_a_race_of_20_succeeds_exactly_once,
    a_refresh_token_used_in_a_race_of_20_rotates_exactly_once,
    client_credentials_is_for_confidential_clients_that_register_it,
    client_credentials_scope_defaults_to_and_stays_within_the_registered_scope,
    client_credentials_tokens_are_rfc9068_jwts_about_the_client_without_refresh_token,
    client_credentials_audience_is_the_requested_resource_only_when_allowed,
    a_refreshed_access_token_keeps_the_resource_of_its_grant,
    the_password_grant_is_off_unless_enabled_server_wide,
    the_password_grant_works_only_for_clients_that_register_it,
    password_grant_failures_do_not_tell_unknown_users_from_wrong_passwords,
    failed_client_authentication_is_401_invalid_client_with_a_basic_challenge,
    client_secret_post_authenticates_at_every_endpoint,
    two_client_authentication_methods_at_once_are_an_invalid_request,
    basic_credentials_are_form_url_decoded,
    public_clients_use_their_client_id_at_the_token_endpoint_but_cannot_introspect,
    token_responses_are_never_cached,
    the_token_endpoint_takes_only_form_posts,
    malformed_token_requests_are_refused_with_the_right_error,
    garbage_bodies_get_a_json_4xx_never_a_5xx,
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

async fn a_code_redeemed_in_a_race_of_20_succeeds_exactly_once(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(&client, "openid offline_access", Some(&challenge), &[])
        .await;
    let form = code_form(&client, &query["code"], Some(&verifier));
    assert_exactly_one_success(&race(&app, &client, &form, 20).await);
}

async fn a_refresh_token_used_in_a_race_of_20_rotates_exactly_once(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let tokens = user_tokens(&app, &client, "openid offline_access").await;
    let refresh_token = field(&tokens, "refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    assert_exactly_one_success(&race(&app, &client, &form, 20).await);
}

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

/// A confidential client registered for the password grant (and refresh tokens).
async fn password_client(app: &TestApp) -> TestClient {
    machine_client(
        &app.create_client(json!({
            "client_name": "Legacy App",
            "grant_types": ["password", "refresh_token"],
            "scope": "openid email offline_access",
        }))
        .await,
    )
}

async fn the_password_grant_is_off_unless_enabled_server_wide(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let legacy = password_client(&app).await;
    let (status, body, _) = app
        .token(
            &legacy,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_error(status, &body, 400, "unsupported_grant_type");
}

async fn the_password_grant_works_only_for_clients_that_register_it(backend: Backend) {
    let (app, web) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]).await;
    let legacy = password_client(&app).await;
    let (status, body, headers) = app
        .token(
            &legacy,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "openid email offline_access"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        scope_set(&body["scope"]),
        scope_set(&json!("openid email offline_access"))
    );
    let access = field(&body, "access_token");
    assert_eq!(jwt_part(&access, 1)["client_id"], legacy.client_id.as_str());
    assert_eq!(userinfo_status(&app, &access).await, 200);
    let (status, refreshed) = refresh(&app, &legacy, &field(&body, "refresh_token"), None).await;
    assert_eq!(status, 200, "{refreshed}");

    let (status, body, _) = app
        .token(
            &web,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_error(status, &body, 400, "unauthorized_client");
}

async fn password_grant_failures_do_not_tell_unknown_users_from_wrong_passwords(backend: Backend) {
    let (app, _) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]).await;
    let legacy = password_client(&app).await;
    let attempt = |username: &'static str, password: &'static str| {
        let (app, legacy) = (&app, &legacy);
        async move {
            let (status, body, _) = app
                .token(
                    legacy,
                    &[
                        ("grant_type", "password"),
                        ("username", username),
                        ("password", password),
                    ],
                )
                .await;
            (status, body)
        }
    };
    let (status, wrong_password) = attempt("alice", "not the password").await;
    assert_error(status, &wrong_password, 400, "invalid_grant");
    let (status, unknown_user) = attempt("mallory", "not the password").await;
    assert_error(status, &unknown_user, 400, "invalid_grant");
    assert_eq!(
        wrong_password, unknown_user,
        "the two failures look the same"
    );
    let (status, odd_user) = attempt("al\0ice", PASSWORD).await;
    assert_eq!(
        (status, odd_user["error"].as_str()),
        (400, Some("invalid_request")),
        "a NUL in any parameter is refused before any lookup"
    );
}

/// The three endpoints that authenticate clients, each with a request that is valid apart
/// from client authentication.
async fn authenticated_endpoints(
    app: &TestApp,
) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            app.endpoint("token_endpoint").await,
            vec![("grant_type", "client_credentials")],
        ),
        (
            app.endpoint("revocation_endpoint").await,
            vec![("token", "some-token")],
        ),
        (
            app.endpoint("introspection_endpoint").await,
            vec![("token", "some-token")],
        ),
    ]
}

fn assert_invalid_client(status: u16, body: &Value, headers: &HeaderMap, basic_challenge: bool) {
    assert_error(status, body, 401, "invalid_client");
    assert_eq!(headers["cache-control"], "no-store");
    if basic_challenge {
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }
}

async fn failed_client_authentication_is_401_invalid_client_with_a_basic_challenge(
    backend: Backend,
) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let wrong_secret = TestClient {
        secret: Some("wrong".into()),
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    let unknown = TestClient {
        client_id: "no-such-client".into(),
        ..TestClient::from_registration(&app.create_web_client().await)
    };
    let id_only = TestClient {
        secret: None,
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
    };
    for (url, form) in authenticated_endpoints(&app).await {
        let (status, body, headers) = post_as(&app, &url, &wrong_secret, &form).await;
        assert_invalid_client(status, &body, &headers, true);
        let (status, body, headers) = post_as(&app, &url, &unknown, &form).await;
        assert_invalid_client(status, &body, &headers, true);
        // client_secret_post with a wrong secret, and a confidential client without its secret.
        let mut posted = form.clone();
        posted.extend([
            ("client_id", client.client_id.as_str()),
            ("client_secret", "wrong"),
        ]);
        let r = app.http.post(&url).form(&posted).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        assert_invalid_client(status, &r.json().await.unwrap(), &headers, false);
        let (status, body, headers) = post_as(&app, &url, &id_only, &form).await;
        assert_invalid_client(status, &body, &headers, false);
        // No credentials at all.
        let r = app.http.post(&url).form(&form).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        assert_invalid_client(status, &r.json().await.unwrap(), &headers, false);
    }
}

async fn client_secret_post_authenticates_at_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let reg = app
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "api.read",
        }))
        .await;
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let post = |url: String, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut fields: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.extend([("client_id", id), ("client_secret", secret)]);
            let r = app.http.post(url).form(&fields).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = post(
        app.endpoint("token_endpoint").await,
        vec![("grant_type", "client_credentials".into())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = field(&body, "access_token");
    let introspection = app.endpoint("introspection_endpoint").await;
    let (status, body) = post(introspection.clone(), vec![("token", access.clone())]).await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    let (status, _) = post(
        app.endpoint("revocation_endpoint").await,
        vec![("token", access.clone())],
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = post(introspection, vec![("token", access)]).await;
    assert_eq!(
        body,
        json!({"active": false}),
        "revoked through client_secret_post"
    );
}

async fn two_client_authentication_methods_at_once_are_an_invalid_request(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let secret = client.secret.clone().unwrap();
    for (url, form) in authenticated_endpoints(&app).await {
        let mut fields = form.clone();
        fields.push(("client_secret", &secret));
        let r = app
            .http
            .post(&url)
            .basic_auth(&client.client_id, Some(&secret))
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_error(status, &r.json().await.unwrap(), 400, "invalid_request");
    }
}

async fn basic_credentials_are_form_url_decoded(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. Encoding every
    // byte is a legal (if extreme) encoding that a server must decode.
    let encode_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let credentials = format!(
        "{}:{}",
        encode_all(&client.client_id),
        encode_all(client.secret.as_deref().unwrap())
    );
    let header = format!("Basic {}", STANDARD.encode(credentials));
    let r = app
        .http
        .post(app.endpoint("token_endpoint").await)
        .header("authorization", &header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app
        .http
        .post(app.endpoint("introspection_endpoint").await)
        .header("authorization", &header)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Decoding is not guessing: an encoded id with a wrong secret still fails.
    let wrong = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:%41", encode_all(&client.client_id)))
    );
    let r = app
        .http
        .post(app.endpoint("token_endpoint").await)
        .header("authorization", wrong)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn public_clients_use_their_client_id_at_the_token_endpoint_but_cannot_introspect(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let public = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Native App",
            "redirect_uris": ["http://127.0.0.1:7777/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access",
        }))
        .await,
    );
    let tokens = user_tokens(&app, &public, "openid offline_access").await;
    let (status, refreshed) = refresh(&app, &public, &field(&tokens, "refresh_token"), None).await;
    assert_eq!(status, 200, "{refreshed}");

    let (status, body) = introspect(&app, &public, &field(&refreshed, "access_token")).await;
    assert_error(status, &body, 401, "invalid_client");
    // A public client has no secret: presenting one is a failed authentication.
    let (status, body, _) = app
        .token(
            &public,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&refreshed, "refresh_token")),
                ("client_secret", "guess"),
            ],
        )
        .await;
    assert_error(status, &body, 401, "invalid_client");
}

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
    let cases: [(&[(&str, &str)], &str); 7] = [
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
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            "unsupported_grant_type",
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
