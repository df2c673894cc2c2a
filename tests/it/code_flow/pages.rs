//! The login and consent pages as a browser meets them: generic login failures and rotated
//! sessions, CSRF tokens bound to their form and browser, pending interactions sealed and
//! expiring, and headers against framing and referrer leaks.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, authorize_params, hidden_field, query_of, spawn_app_with_alice,
};

both_backends!(
    login_failures_are_generic_and_sessions_rotate,
    forms_need_their_csrf_token_and_browser,
    pending_interactions_are_sealed_expire_and_cannot_be_altered,
    pages_resist_framing_and_referrer_leaks,
);

async fn login_failures_are_generic_and_sessions_rotate(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let wrong_password = browser.login(&location, "alice", "wrong password").await;
    let unknown_user = browser.login(&location, "mallory", "wrong password").await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_user.status, 401);
    let message = "The username or password is incorrect.";
    assert!(wrong_password.body.contains(message) && unknown_user.body.contains(message));
    assert_eq!(
        wrong_password.body.replace("alice", "USER"),
        unknown_user.body.replace("mallory", "USER").replace(
            &hidden_field(&unknown_user.body, "csrf_token").unwrap(),
            &hidden_field(&wrong_password.body, "csrf_token").unwrap()
        ),
        "the two failures look the same"
    );
    let first = browser.login(&location, "alice", PASSWORD).await;
    let cookie = session_cookie(&first);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http issuer: no Secure");
    // Logging in again gives a new session id.
    let params = authorize_params(&client, "openid", &[("prompt", "login"), ("state", "x")]);
    let location = browser.authorize(&params).await.location.unwrap();
    let second = browser.login(&location, "alice", PASSWORD).await;
    assert_ne!(
        cookie_value(&cookie),
        cookie_value(&session_cookie(&second))
    );
}

fn session_cookie(step: &crate::helpers::Step) -> String {
    step.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latchkey_session="))
        .expect("a session cookie")
}

fn cookie_value(cookie: &str) -> String {
    cookie.split(';').next().unwrap().to_owned()
}

async fn forms_need_their_csrf_token_and_browser(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let no_csrf = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 400);
    let bad_csrf = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(bad_csrf.status, 400);
    // Another browser (no binding cookie) cannot use this interaction, even with its token.
    let other = Browser::new(&app);
    assert_eq!(other.get(&location).await.status, 400);
    let stolen = other
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(stolen.status, 400);
    let ok = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    // Consent form: a token from the login form does not work there.
    let consent_url = ok.location.unwrap();
    let consent_page = browser.get(&consent_url).await;
    let consent_csrf = hidden_field(&consent_page.body, "csrf_token").unwrap();
    assert_ne!(consent_csrf, csrf);
    // The login moved the interaction on to consent, bound to its session.
    let interaction = hidden_field(&consent_page.body, "interaction").unwrap();
    let allow = async |csrf: &str| {
        browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", csrf),
                    ("decision", "allow"),
                ],
            )
            .await
            .status
    };
    assert_eq!(allow(&csrf).await, 400);
    // A finished interaction cannot be completed twice.
    assert_eq!(allow(&consent_csrf).await, 303);
    assert_eq!(allow(&consent_csrf).await, 400);
    // Wrong content type on a form endpoint.
    let json_body = browser
        .http
        .post(app.url("/login"))
        .json(&json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
}

/// The pending request travels sealed in the `interaction` parameter: changing one character
/// of it, or waiting past its 30 minutes, gives the expired page; a request too large to
/// travel in a URL is refused back to the client.
async fn pending_interactions_are_sealed_expire_and_cannot_be_altered(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let authorize = |state: String| {
        let browser = &browser;
        let client = &client;
        async move {
            browser
                .authorize_with(client, "openid", &[("state", &state)])
                .await
        }
    };
    let location = authorize("s".to_owned()).await.location.unwrap();
    let page = browser.get(&location).await;
    assert_eq!(page.status, 200);
    let interaction = hidden_field(&page.body, "interaction").unwrap();

    // Flip one character in the middle of the sealed request.
    let mut altered: Vec<char> = interaction.chars().collect();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let page = browser.get(&format!("/login?interaction={altered}")).await;
    assert_eq!(page.status, 400, "an altered interaction does not open");
    assert!(!page.body.contains("csrf_token"));

    // The request is not readable in the URL: the state does not show through.
    let secret_state = "state-that-must-not-be-readable-in-the-url";
    let hidden = authorize(secret_state.to_owned()).await.location.unwrap();
    assert!(!hidden.contains(secret_state));

    app.clock.advance(30 * 60 + 1);
    assert_eq!(
        browser.get(&location).await.status,
        400,
        "expired after 30 minutes"
    );
    app.clock.advance(-(30 * 60 + 1));
    assert_eq!(browser.get(&location).await.status, 200);

    // A request whose sealed form would not fit in a URL goes back to the client.
    // (Each parameter may be up to 8 KiB; together they may be more than fits.)
    let long = "x".repeat(6000);
    let huge = browser
        .authorize_with(&client, "openid", &[("state", &long), ("nonce", &long)])
        .await;
    assert_eq!(huge.status, 303);
    let back = huge.location.unwrap();
    assert!(back.starts_with(&client.redirect_uri), "{back}");
    assert_eq!(query_of(&back)["error"], "invalid_request");
}

async fn pages_resist_framing_and_referrer_leaks(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Scripts only from Latchkey's own files: never inline, never eval.
    assert!(
        !csp.contains("unsafe-inline")
            && !csp.contains("unsafe-eval")
            && csp.contains("script-src 'self';"),
        "{csp}"
    );
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.body.starts_with("<!doctype html>"));
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(
        page.body.contains("<label for=\"username\">")
            && page.body.contains("<label for=\"password\">")
    );
    assert!(page.body.contains(r#"name="username""#) && page.body.contains(r#"name="password""#));
    // Its one script (the show-password toggle) comes from /static; the page works without.
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script src=\"/static/").count()
    );
    assert!(page.body.contains("type=\"password\""));
    assert!(page.body.contains("name=\"viewport\""));
    // ui_locales picks the language.
    let location = browser
        .authorize_with(&client, "openid", &[("ui_locales", "de-CH en")])
        .await
        .location
        .unwrap();
    let german = browser.get(&location).await;
    assert!(german.body.contains("<html lang=\"de\">") && german.body.contains("Anmelden"));
    // login_hint prefills the username.
    let location = browser
        .authorize_with(&client, "openid", &[("login_hint", "alice")])
        .await
        .location
        .unwrap();
    assert!(
        browser
            .get(&location)
            .await
            .body
            .contains("value=\"alice\"")
    );
}
