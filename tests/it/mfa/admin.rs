//! The admin API of second factors: listing (never a secret), provisioning, removal (audited),
//! `mfa_required` and a client's `require_mfa`.

use reqwest::Method;
use serde_json::json;

use super::{code_now, freeze_mid_step, password_step, sub_of, submit_otp};
use crate::both_backends;
use crate::helpers::{Backend, Browser, spawn_app_with_alice};

both_backends!(
    operators_provision_list_and_remove_factors,
    mfa_required_and_require_mfa_round_trip,
);

async fn operators_provision_list_and_remove_factors(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    freeze_mid_step(&app);
    let sub = sub_of(&app, "alice").await;
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(user["factors"], json!([]));

    let (status, provisioned) = app
        .admin(Method::POST, &format!("/admin/users/{sub}/totp"), None)
        .await;
    assert_eq!(status, 201, "{provisioned}");
    let secret = provisioned["secret"].as_str().unwrap();
    let id = provisioned["id"].as_str().unwrap();
    let uri = provisioned["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(secret),
        "{uri}"
    );

    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    let factors = user["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1);
    let factor = &factors[0];
    assert_eq!(factor["id"], id);
    assert_eq!(factor["kind"], "totp");
    assert!(factor["name"].is_string() && factor["created_at"].is_i64());
    assert!(factor["last_used_at"].is_null());
    assert!(!user.to_string().contains(secret), "never the secret");

    // The provisioned secret works at login; its use shows in the listing.
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let accepted = submit_otp(&browser, &step.location.unwrap(), &code_now(&app, secret)).await;
    assert_eq!(accepted.status, 303);
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(user["factors"][0]["last_used_at"], app.app.now());

    let path = format!("/admin/users/{sub}/factors/{id}");
    let (status, _) = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app
        .admin(Method::DELETE, "/admin/users/nobody/factors/x", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .admin(Method::POST, "/admin/users/nobody/totp", None)
        .await;
    assert_eq!(status, 404);
    let removed = app.events("kind=factor_removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["detail"]["by"], "admin");

    // Without a factor the password is enough again.
    let other = Browser::new(&app);
    let step = password_step(&other, &client, &[]).await;
    assert!(!step.location.unwrap().starts_with("/login/otp"));
}

async fn mfa_required_and_require_mfa_round_trip(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let sub = sub_of(&app, "alice").await;
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(user["mfa_required"], false);
    let (status, user) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"mfa_required": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(user["mfa_required"], true);
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"mfa_required": "yes"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");

    let created = app
        .create_client(json!({
            "client_name": "Strict",
            "redirect_uris": ["https://strict.example.test/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid",
            "require_mfa": true,
        }))
        .await;
    assert_eq!(created["require_mfa"], true);
    let id = created["client_id"].as_str().unwrap();
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/clients/{id}"), None)
        .await;
    assert_eq!(shown["require_mfa"], true);
}
