//! The account page's own sections (issue 20, point 5): the password change, the profile
//! claims the operator allows, and the sessions list with its sign-out buttons; each rule
//! positive and negative, the throttle under a burst, another user's session, and forms
//! posted without the page (or the factor) they belong to.
//!
//! This file holds what the test files share, never tests.

mod email;
mod password;
mod profile;
mod sessions;
mod skipped;

use crate::helpers::{
    Browser, PASSWORD, Step, TestApp, TestClient, code_form, hidden_field, jwt_part,
};

pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Signs `username` in on the account page's own login form in `browser`, and returns the
/// account page it then shows.
pub async fn sign_in(browser: &Browser<'_>, username: &str) -> Step {
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let step = browser
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(step.status, 303, "account login: {}", step.body);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(is_account_page(&page), "{}", page.body);
    page
}

/// Whether `page` is the account page itself (not its login form or second-factor step).
pub fn is_account_page(page: &Step) -> bool {
    page.body
        .contains("action=\"/account/sessions/end-others\"")
}

/// The CSRF token of the account page's own forms.
pub fn csrf(page: &Step) -> String {
    hidden_field(&page.body, "csrf_token").unwrap()
}

/// Signs alice in to `client` through the whole code flow in `browser`; returns the `sid`
/// of the session it ran in (from the ID token) and the refresh token.
pub async fn sign_in_to(
    app: &TestApp,
    browser: &Browser<'_>,
    client: &TestClient,
) -> (String, String) {
    let q = browser
        .code_flow(client, "openid offline_access", None, &[])
        .await;
    let (status, tokens, _) = app
        .token(client, &code_form(client, &q["code"], None))
        .await;
    assert_eq!(status, 200, "{tokens}");
    let id = tokens["id_token"].as_str().unwrap();
    (
        jwt_part(id, 1)["sid"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Whether the refresh token still works.
pub async fn refresh_works(app: &TestApp, client: &TestClient, refresh: &str) -> bool {
    let (status, _, _) = app
        .token(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    status == 200
}

/// Whether `browser` is still signed in (its account page is the page, not a login form).
pub async fn signed_in(browser: &Browser<'_>) -> bool {
    is_account_page(&browser.get("/account").await)
}
