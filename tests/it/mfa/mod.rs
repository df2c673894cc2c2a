//! Second factors (issue 14): TOTP and recovery codes at login, the policies that demand a
//! second factor (and lead to enrolment), step-up, assurance in tokens, the admin API, and
//! the pages a flow that owes a factor cannot skip. Codes are computed with `totp-rs`, the
//! crate the server uses, at the server's (frozen) time.
//!
//! This file holds what the test files share, never tests.

mod admin;
mod enrolment;
mod login;
mod skipped;
mod tokens;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, Step, TestApp, TestClient, hidden_field, query_of};

/// Stops the server's clock in the middle of a 30-second step, so that a code computed here
/// is valid for exactly that step whatever the machine's speed; `app.clock.advance(30)` then
/// moves to the next step.
pub fn freeze_mid_step(app: &TestApp) {
    let now = latchkey::clock::Clock::now(&latchkey::clock::SystemClock);
    app.clock.freeze_at(now - now % 30 + 15);
}

/// The TOTP code of the base32 `secret` at Unix time `at` (RFC 6238, SHA-1, 6 digits, 30 s).
pub fn code_at(secret: &str, at: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(bytes.as_ref().to_vec())
        .with_account_name("test")
        .build()
        .unwrap();
    totp.generate(u64::try_from(at).unwrap()).to_string()
}

/// The code for the server's current time.
pub fn code_now(app: &TestApp, secret: &str) -> String {
    code_at(secret, app.app.now())
}

/// The `sub` of the user `username`.
pub async fn sub_of(app: &TestApp, username: &str) -> String {
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Provisions a TOTP for `sub` through the admin API; returns its base32 secret.
pub async fn provision_totp(app: &TestApp, sub: &str) -> String {
    provisioned_totp(app, sub).await["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Provisions a TOTP for `sub` through the admin API; returns the whole answer (`id`,
/// `secret`, ...).
pub async fn provisioned_totp(app: &TestApp, sub: &str) -> Value {
    let (status, body) = app
        .admin(Method::POST, &format!("/admin/users/{sub}/totp"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Sets `mfa_required` of `sub`.
pub async fn require_mfa(app: &TestApp, sub: &str) {
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"mfa_required": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mfa_required"], true);
}

/// Authorize as `client` with `extra`, then log in as alice: the step after the password.
pub async fn password_step(
    browser: &Browser<'_>,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> Step {
    let mut params = vec![("state", "s-1"), ("nonce", "n-1")];
    params.extend_from_slice(extra);
    let step = browser.authorize_with(client, "openid", &params).await;
    assert_eq!(step.status, 303, "authorize: {}", step.body);
    let location = step.location.unwrap();
    assert!(location.starts_with("/login?"), "{location}");
    let step = browser.login(&location, "alice", PASSWORD).await;
    assert_eq!(step.status, 303, "login: {}", step.body);
    step
}

/// Loads the second-factor page at `location` and submits `otp` on it.
pub async fn submit_otp(browser: &Browser<'_>, location: &str, otp: &str) -> Step {
    assert!(location.starts_with("/login/otp?"), "{location}");
    let page = browser.get(location).await;
    assert_eq!(page.status, 200, "otp page: {}", page.body);
    assert!(page.body.contains(r#"name="otp""#));
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    browser
        .post_form(
            "/login/otp",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("otp", otp),
            ],
        )
        .await
}

/// Follows the flow from `step` (consent if asked) to the client's redirect; its query.
pub async fn finish(browser: &Browser<'_>, client: &TestClient, step: Step) -> Value {
    assert_eq!(step.status, 303, "{}", step.body);
    let mut location = step.location.unwrap();
    if location.starts_with("/consent") {
        let (_, answer) = browser.consent(&location, "allow").await;
        assert_eq!(answer.status, 303, "consent: {}", answer.body);
        location = answer.location.unwrap();
    }
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    json!(query_of(&location))
}

/// Redeems the code of a finished flow; the ID token's claims and the access token.
pub async fn id_claims(app: &TestApp, client: &TestClient, query: &Value) -> (Value, Value) {
    let code = query["code"].as_str().unwrap();
    let (status, body) = crate::helpers::redeem(app, client, code, None).await;
    assert_eq!(status, 200, "{body}");
    let id = crate::helpers::jwt_part(body["id_token"].as_str().unwrap(), 1);
    let access = crate::helpers::jwt_part(body["access_token"].as_str().unwrap(), 1);
    (id, access)
}

/// The enrolment page at `location` (`/account/totp`, maybe with `?interaction=`): its secret
/// and form fields.
pub struct EnrolPage {
    pub secret: String,
    pub interaction: String,
    pub csrf: String,
    pub enrolment: String,
}

pub async fn enrol_page(browser: &Browser<'_>, location: &str) -> EnrolPage {
    let page = browser.get(location).await;
    assert_eq!(page.status, 200, "enrolment page: {}", page.body);
    assert!(page.body.contains("<svg"), "a QR code");
    assert!(page.body.contains(r#"name="code""#));
    let marker = r#"id="totp-secret">"#;
    let start = page.body.find(marker).unwrap() + marker.len();
    let end = page.body[start..].find('<').unwrap();
    EnrolPage {
        secret: page.body[start..start + end].to_owned(),
        interaction: hidden_field(&page.body, "interaction").unwrap_or_default(),
        csrf: hidden_field(&page.body, "csrf_token").unwrap(),
        enrolment: hidden_field(&page.body, "enrolment").unwrap(),
    }
}

/// Submits an enrolment form with `code`.
pub async fn submit_enrolment(browser: &Browser<'_>, page: &EnrolPage, code: &str) -> Step {
    browser
        .post_form(
            "/account/totp",
            &[
                ("interaction", &page.interaction),
                ("csrf_token", &page.csrf),
                ("enrolment", &page.enrolment),
                ("code", code),
            ],
        )
        .await
}

/// The recovery codes of a page that shows them (each in an `<li>` in `#recovery-codes`).
pub fn recovery_codes(body: &str) -> Vec<String> {
    let start = body
        .find(r#"id="recovery-codes""#)
        .expect("recovery codes shown");
    let list = &body[start..body[start..].find("</ul>").unwrap() + start];
    list.split("<li>")
        .skip(1)
        .map(|item| {
            let inner = item.split("</li>").next().unwrap();
            inner
                .replace("<code>", "")
                .replace("</code>", "")
                .trim()
                .to_owned()
        })
        .collect()
}

/// Signs alice in on the account page (password only): the browser then holds a session.
pub async fn account_login(app: &TestApp, browser: &Browser<'_>) -> Step {
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let step = browser
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let _ = app;
    step
}
