//! Assurance: `amr` and `acr` in tokens, `acr_values_supported`, step-up without the password,
//! and `prompt=none` when the level is not met.

use serde_json::json;

use super::{
    code_now, finish, freeze_mid_step, id_claims, password_step, provision_totp, sub_of, submit_otp,
};
use crate::both_backends;
use crate::helpers::{Backend, Browser, query_of, spawn_app_with_alice};

both_backends!(
    a_password_login_is_pwd_and_discovery_lists_the_levels,
    step_up_asks_only_for_the_missing_factor,
    prompt_none_with_the_level_unmet_is_interaction_required,
);

async fn a_password_login_is_pwd_and_discovery_lists_the_levels(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let doc = app.discovery().await;
    assert_eq!(doc["acr_values_supported"], json!(["pwd", "mfa", "phr"]));
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let query = finish(&browser, &client, step).await;
    let (id, access) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["acr"], "pwd");
    assert_eq!(access["acr"], "pwd");
}

async fn step_up_asks_only_for_the_missing_factor(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    freeze_mid_step(&app);
    let browser = Browser::new(&app);
    // A session with the password alone.
    let step = password_step(&browser, &client, &[]).await;
    finish(&browser, &client, step).await;
    // The user gets a TOTP; a request asking for two factors goes straight to the second
    // step, without the password again.
    let sub = sub_of(&app, "alice").await;
    let secret = provision_totp(&app, &sub).await;
    let stepped = browser
        .authorize_with(&client, "openid", &[("acr_values", "mfa"), ("state", "up")])
        .await;
    assert_eq!(stepped.status, 303);
    let location = stepped.location.unwrap();
    assert!(
        location.starts_with("/login/otp?"),
        "no login page: {location}"
    );
    let accepted = submit_otp(&browser, &location, &code_now(&app, &secret)).await;
    let query = finish(&browser, &client, accepted).await;
    assert_eq!(query["state"], "up");
    let (id, _) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "mfa");
    // The raised session now meets the level: no page at all.
    let again = browser
        .authorize_with(
            &client,
            "openid",
            &[("acr_values", "mfa"), ("prompt", "none")],
        )
        .await;
    let location = again.location.unwrap();
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    assert!(query_of(&location).contains_key("code"), "{location}");
}

async fn prompt_none_with_the_level_unmet_is_interaction_required(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    finish(&browser, &client, step).await;
    let silent = browser
        .authorize_with(
            &client,
            "openid",
            &[
                ("acr_values", "mfa"),
                ("prompt", "none"),
                ("state", "quiet"),
            ],
        )
        .await;
    let location = silent.location.unwrap();
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    let query = query_of(&location);
    assert_eq!(query["error"], "interaction_required");
    assert_eq!(query["state"], "quiet");
    // Without acr_values, the same silent request still gets a code (pwd is enough).
    let plain = browser
        .authorize_with(&client, "openid", &[("prompt", "none")])
        .await;
    assert!(query_of(&plain.location.unwrap()).contains_key("code"));
}
