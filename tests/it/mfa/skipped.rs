//! A flow that owes a second factor cannot reach a code through any other page: not the
//! consent page (even with a valid CSRF token), not the continuation of an enrolment, not
//! the enrolment page, not the device page, not the account page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{freeze_mid_step, password_step, provision_totp, require_mfa, sub_of};
use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp, query_of, spawn_app_with_alice};

both_backends!(
    no_page_skips_an_owed_second_factor,
    no_page_skips_an_owed_enrolment,
    the_account_page_asks_for_the_factor_first,
);

fn interaction_of(location: &str) -> String {
    query_of(&format!("http://x{location}"))["interaction"].clone()
}

/// A consent CSRF token as the server computes it (only the server's key makes one).
fn valid_consent_csrf(app: &TestApp, browser: &Browser<'_>, interaction: &str) -> String {
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let session = browser.cookie("latchkey_session").unwrap();
    let session_hash = URL_SAFE_NO_PAD.encode(app.app.hasher.hash(&session));
    latchkey::http::ui::csrf_token(&app.app, "consent", interaction, &binding, &session_hash)
}

/// Tries every other page with an interaction that owes a second factor (or an enrolment);
/// none may answer with the client's redirect.
async fn try_other_pages(app: &TestApp, browser: &Browser<'_>, location: &str) {
    let interaction = interaction_of(location);
    let consent_page = browser
        .get(&format!("/consent?interaction={interaction}"))
        .await;
    assert_ne!(
        consent_page.status, 200,
        "no consent page: {}",
        consent_page.body
    );
    let csrf = valid_consent_csrf(app, browser, &interaction);
    for decision in ["allow", "deny"] {
        let answer = browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", decision),
                ],
            )
            .await;
        let to = answer.location.unwrap_or_default();
        assert!(!to.contains("code="), "consent issued a code: {to}");
        assert!(
            !to.starts_with("https://"),
            "consent went to the client: {to}"
        );
    }
    let resume = browser
        .post_form(
            "/login/resume",
            &[("interaction", &interaction), ("csrf_token", "x")],
        )
        .await;
    assert_eq!(resume.status, 400, "no resume: {}", resume.body);
    assert!(
        app.events("kind=consent_granted").await.is_empty(),
        "no consent was recorded"
    );
}

async fn no_page_skips_an_owed_second_factor(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    freeze_mid_step(&app);
    let sub = sub_of(&app, "alice").await;
    provision_totp(&app, &sub).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let location = step.location.unwrap();
    assert!(location.starts_with("/login/otp?"), "{location}");
    try_other_pages(&app, &browser, &location).await;
    let enrol = browser
        .get(&format!(
            "/account/totp?interaction={}",
            interaction_of(&location)
        ))
        .await;
    assert_eq!(enrol.status, 400, "not the enrolment page either");
    // A new request with the password-only session goes to the second step, silently to an
    // error.
    let again = browser.authorize_for(&client, "openid").await;
    assert!(again.location.unwrap().starts_with("/login/otp?"));
    let silent = browser
        .authorize_with(&client, "openid", &[("prompt", "none")])
        .await;
    assert_eq!(
        query_of(&silent.location.unwrap())["error"],
        "interaction_required"
    );
}

async fn no_page_skips_an_owed_enrolment(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let sub = sub_of(&app, "alice").await;
    require_mfa(&app, &sub).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let location = step.location.unwrap();
    assert!(
        location.starts_with("/account/totp?interaction="),
        "{location}"
    );
    try_other_pages(&app, &browser, &location).await;
    let otp = browser
        .get(&format!(
            "/login/otp?interaction={}",
            interaction_of(&location)
        ))
        .await;
    assert_eq!(otp.status, 400, "no second-factor page without a factor");
}

async fn the_account_page_asks_for_the_factor_first(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let sub = sub_of(&app, "alice").await;
    provision_totp(&app, &sub).await;
    let browser = Browser::new(&app);
    let step = super::account_login(&app, &browser).await;
    assert_eq!(step.status, 303);
    let page = browser.get("/account").await;
    assert!(page.body.contains(r#"name="otp""#), "{}", page.body);
    assert!(
        !page.body.contains("/account/factors/remove"),
        "no factor list yet"
    );
    // Neither a new enrolment (which would replace the factor) nor new recovery codes.
    let enrol = browser.get("/account/totp").await;
    assert_eq!(enrol.status, 303);
    let csrf = crate::helpers::hidden_field(&page.body, "csrf_token").unwrap();
    let codes = browser
        .post_form("/account/recovery-codes", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(codes.status, 303, "{}", codes.body);
    assert!(!codes.body.contains("recovery-codes"));
}
