//! The resource owner password grant: off unless enabled server-wide, then only for clients
//! that register it, and failing alike for unknown users and wrong passwords.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, PASSWORD, TestApp, TestClient, assert_error, field, jwt_part, machine_client, refresh,
    scope_set, spawn_app_with_alice, spawn_app_with_alice_and, userinfo_status,
};

both_backends!(
    the_password_grant_is_off_unless_enabled_server_wide,
    the_password_grant_works_only_for_clients_that_register_it,
    password_grant_failures_do_not_tell_unknown_users_from_wrong_passwords,
);

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
