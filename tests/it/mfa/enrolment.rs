//! Enrolment: on the account page, and inside a flow for a user who must use a second factor
//! but has none (forced by the user's `mfa_required`, the client's `require_mfa`, or
//! `acr_values`); recovery codes shown once, each usable once, regenerable.

use reqwest::Method;
use serde_json::json;

use super::{
    account_login, code_now, enrol_page, finish, freeze_mid_step, id_claims, password_step,
    recovery_codes, require_mfa, sub_of, submit_enrolment, submit_otp,
};
use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp, TestClient, hidden_field, spawn_app_with_alice};

both_backends!(
    enrolment_on_the_account_page_shows_ten_recovery_codes,
    a_recovery_code_works_once_and_regenerating_kills_the_old_set,
    mfa_required_leads_to_enrolment_inside_the_flow,
    require_mfa_of_the_client_leads_to_enrolment,
    acr_values_mfa_leads_to_enrolment,
);

async fn setup(backend: Backend) -> (TestApp, TestClient) {
    let (app, client) = spawn_app_with_alice(backend).await;
    freeze_mid_step(&app);
    (app, client)
}

/// Enrols a TOTP for alice on the account page; returns the secret and the recovery codes.
async fn enrol_on_account_page(app: &TestApp, browser: &Browser<'_>) -> (String, Vec<String>) {
    let step = account_login(app, browser).await;
    assert_eq!(step.status, 303, "{}", step.body);
    let page = enrol_page(browser, "/account/totp").await;
    let wrong = submit_enrolment(browser, &page, "abcdef").await;
    assert_eq!(
        wrong.status, 400,
        "a wrong code enrols nothing: {}",
        wrong.body
    );
    assert!(
        wrong.body.contains(&page.secret),
        "the same secret, to try again"
    );
    let done = submit_enrolment(browser, &page, &code_now(app, &page.secret)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes = recovery_codes(&done.body);
    (page.secret, codes)
}

async fn enrolment_on_the_account_page_shows_ten_recovery_codes(backend: Backend) {
    let (app, _) = setup(backend).await;
    let browser = Browser::new(&app);
    let (secret, codes) = enrol_on_account_page(&app, &browser).await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    let sub = sub_of(&app, "alice").await;
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    let mut kinds: Vec<&str> = user["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["recovery_codes", "totp"]);
    let text = user.to_string();
    assert!(!text.contains(&secret), "the secret is never listed");
    assert_eq!(app.events("kind=factor_enrolled").await.len(), 1);
    // The code that confirmed the enrolment cannot also pass a login.
    let other = Browser::new(&app);
    let page = other.get("/account").await;
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    other
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    let asked = other.get("/account").await;
    assert!(
        asked.body.contains(r#"name="otp""#),
        "the account page asks for the factor"
    );
    let csrf = hidden_field(&asked.body, "csrf_token").unwrap();
    let reused = other
        .post_form(
            "/account/otp",
            &[("csrf_token", &csrf), ("otp", &code_now(&app, &secret))],
        )
        .await;
    assert_eq!(reused.status, 401, "the enrolment's code is used up");
}

async fn a_recovery_code_works_once_and_regenerating_kills_the_old_set(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    let (_, codes) = enrol_on_account_page(&app, &browser).await;

    let first = Browser::new(&app);
    let step = password_step(&first, &client, &[]).await;
    let used = submit_otp(&first, &step.location.unwrap(), &codes[0].to_uppercase()).await;
    let query = finish(&first, &client, used).await;
    let (id, _) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));

    let second = Browser::new(&app);
    let step = password_step(&second, &client, &[]).await;
    let otp_page = step.location.unwrap();
    let again = submit_otp(&second, &otp_page, &codes[0]).await;
    assert_eq!(again.status, 401, "a recovery code works once");

    // New codes from the account page (its session used the factor): the old set dies.
    let account = browser.get("/account").await;
    assert_eq!(account.status, 200);
    let csrf = hidden_field(&account.body, "csrf_token").unwrap();
    let csrf_factors = account
        .body
        .split(r#"action="/account/recovery-codes""#)
        .nth(1)
        .and_then(|rest| hidden_field(rest, "csrf_token"))
        .unwrap_or(csrf);
    let fresh = browser
        .post_form("/account/recovery-codes", &[("csrf_token", &csrf_factors)])
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let new_codes = recovery_codes(&fresh.body);
    assert_eq!(new_codes.len(), 10);
    let old = submit_otp(&second, &otp_page, &codes[1]).await;
    assert_eq!(old.status, 401, "the old set died");
    let new = submit_otp(&second, &otp_page, &new_codes[1]).await;
    finish(&second, &client, new).await;
    assert_eq!(app.events("kind=recovery_codes_regenerated").await.len(), 1);
}

/// The flow of a user who must use a second factor and has none: password, then the
/// enrolment page inside the flow, the recovery codes, and on to the client.
async fn enrol_in_flow(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) {
    let browser = Browser::new(app);
    let step = password_step(&browser, client, extra).await;
    let location = step.location.unwrap();
    assert!(
        location.starts_with("/account/totp?interaction="),
        "{location}"
    );
    let page = enrol_page(&browser, &location).await;
    assert!(!page.interaction.is_empty());
    let done = submit_enrolment(&browser, &page, &code_now(app, &page.secret)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(recovery_codes(&done.body).len(), 10);
    let interaction = hidden_field(&done.body, "interaction").unwrap();
    let csrf = hidden_field(&done.body, "csrf_token").unwrap();
    let resumed = browser
        .post_form(
            "/login/resume",
            &[("interaction", &interaction), ("csrf_token", &csrf)],
        )
        .await;
    let query = finish(&browser, client, resumed).await;
    let (id, _) = id_claims(app, client, &query).await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "mfa");
}

async fn mfa_required_leads_to_enrolment_inside_the_flow(backend: Backend) {
    let (app, client) = setup(backend).await;
    let sub = sub_of(&app, "alice").await;
    require_mfa(&app, &sub).await;
    enrol_in_flow(&app, &client, &[]).await;
}

async fn require_mfa_of_the_client_leads_to_enrolment(backend: Backend) {
    let (app, _) = setup(backend).await;
    let registration = app
        .create_client(json!({
            "client_name": "Strict",
            "redirect_uris": ["https://strict.example.test/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid",
            "require_mfa": true,
        }))
        .await;
    assert_eq!(registration["require_mfa"], true);
    let strict = TestClient::from_registration(&registration);
    enrol_in_flow(&app, &strict, &[]).await;
}

async fn acr_values_mfa_leads_to_enrolment(backend: Backend) {
    let (app, client) = setup(backend).await;
    enrol_in_flow(&app, &client, &[("acr_values", "mfa")]).await;
}
