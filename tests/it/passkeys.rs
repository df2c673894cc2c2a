//! Passkeys at the JSON level, with a software authenticator (`SoftAuthenticator`):
//! registration from the account page, discoverable sign-in from the login page, and the
//! refusals (wrong origin, wrong challenge, replay, a counter that goes back, missing CSRF or
//! Origin, another browser's interaction, a race of one answer).
//!
//! WebAuthn relying-party ids are domain names, so these servers' issuer is
//! `http://localhost:PORT` (the tests still connect to 127.0.0.1).

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, SoftAuthenticator, TestApp, TestClient, code_form, hidden_field,
    jwt_part, query_of, spawn_app, spawn_app_with,
};

both_backends!(
    a_registered_passkey_signs_in_with_hwk_and_mfa,
    answers_from_elsewhere_or_for_another_challenge_are_refused,
    a_replayed_assertion_is_refused,
    a_counter_that_goes_back_is_refused_and_audited,
    calls_without_csrf_token_or_origin_are_refused,
    another_browsers_interaction_cannot_be_used,
    of_fifty_racing_answers_exactly_one_signs_in,
    a_removed_passkey_no_longer_signs_in,
    an_issuer_on_an_address_has_no_passkeys,
    a_passkey_is_the_second_factor_a_flow_owes_and_reaches_phr,
    a_password_session_cannot_add_a_passkey_once_a_factor_exists,
);

/// A server whose issuer is `http://localhost:PORT`, with alice and a web client.
async fn passkey_app(backend: Backend) -> (TestApp, TestClient, String) {
    let app = spawn_app_with(backend, |env| {
        for (key, value) in env.iter_mut() {
            if key == "LATCHKEY_ISSUER" {
                *value = value.replace("127.0.0.1", "localhost");
            }
        }
    })
    .await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let origin = app.base.replace("127.0.0.1", "localhost");
    (app, client, origin)
}

/// The content of the page's `<meta name="csrf-token">`.
fn meta_csrf(html: &str) -> String {
    let start = html
        .find(r#"<meta name="csrf-token" content=""#)
        .expect("csrf meta")
        + 33;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// A POST of JSON to the app with this origin and CSRF token (either may be left out).
async fn call(
    browser: &Browser<'_>,
    path: &str,
    origin: Option<&str>,
    csrf: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = browser
        .http
        .post(browser.app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(o) = origin {
        request = request.header("origin", o);
    }
    if let Some(c) = csrf {
        request = request.header("x-csrf-token", c);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs `username` in on the account page; returns the page and its CSRF token.
async fn account_session(browser: &Browser<'_>, username: &str) -> String {
    let page = browser.get("/account").await;
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let signed_in = browser
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let page = browser.get("/account").await;
    assert!(page.body.contains("/static/passkeys.js"));
    meta_csrf(&page.body)
}

/// Registers a passkey named `name` for `username` with `authenticator`.
async fn register(
    app: &TestApp,
    origin: &str,
    username: &str,
    name: &str,
    authenticator: &mut SoftAuthenticator,
) {
    let browser = Browser::new(app);
    let csrf = account_session(&browser, username).await;
    let (status, options) = call(
        &browser,
        "/webauthn/register/options",
        Some(origin),
        Some(&csrf),
        &json!({ "name": name }),
    )
    .await;
    assert_eq!(status, 200, "{options}");
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let answer = authenticator.register(public_key);
    let (status, body) = call(
        &browser,
        "/webauthn/register",
        Some(origin),
        Some(&csrf),
        &answer,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], name);
    // A factor like the others: the admin API lists it.
    let factors = factors_of(app, username).await;
    assert!(
        factors
            .iter()
            .any(|f| f["kind"] == "passkey" && f["name"] == name && f["id"] == body["id"]),
        "{factors:?}"
    );
}

/// The factors `GET /admin/users/{sub}` lists for `username`.
async fn factors_of(app: &TestApp, username: &str) -> Vec<Value> {
    let (_, users) = app.admin(reqwest::Method::GET, "/admin/users", None).await;
    let items = users["items"]
        .as_array()
        .or(users.as_array())
        .unwrap()
        .clone();
    let user = items.iter().find(|u| u["username"] == username).unwrap();
    let path = format!("/admin/users/{}", user["sub"].as_str().unwrap());
    let (status, body) = app.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body["factors"].as_array().unwrap().clone()
}

/// Signs `username` in on the account page with the password, then confirms the session
/// with the passkey (the step-up a user with a second factor gets); returns the account
/// page's CSRF token.
async fn account_with_passkey(
    browser: &Browser<'_>,
    origin: &str,
    username: &str,
    key: &mut SoftAuthenticator,
) -> String {
    let csrf = account_session(browser, username).await;
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("passkey-sign-in"),
        "the step-up offers the passkey"
    );
    assert!(
        !page.body.contains("passkey-name"),
        "no list before the step-up"
    );
    let options_path = "/webauthn/login/options";
    let (status, options) =
        call(browser, options_path, Some(origin), Some(&csrf), &json!({})).await;
    assert_eq!(status, 200, "{options}");
    let answer = json!({ "credential": key.assert(&options["publicKey"]) });
    let (status, body) = call(
        browser,
        "/webauthn/login",
        Some(origin),
        Some(&csrf),
        &answer,
    )
    .await;
    assert_eq!(
        (status, body["redirect"].as_str()),
        (200, Some("/account")),
        "{body}"
    );
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("passkey-name"),
        "the account page after the step-up"
    );
    meta_csrf(&page.body)
}

/// A fresh browser at the login page of an authorization request: (browser, interaction,
/// CSRF token).
async fn at_login<'a>(app: &'a TestApp, client: &TestClient) -> (Browser<'a>, String, String) {
    let browser = Browser::new(app);
    let location = browser.authorize_location(client, "openid").await;
    let page = browser.get(&location).await;
    assert!(page.body.contains("passkey-sign-in"));
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = meta_csrf(&page.body);
    assert_eq!(csrf, hidden_field(&page.body, "csrf_token").unwrap());
    (browser, interaction, csrf)
}

/// Login options for the interaction: the `publicKey` member.
async fn login_options(
    browser: &Browser<'_>,
    origin: &str,
    interaction: &str,
    csrf: &str,
) -> Value {
    let (status, options) = call(
        browser,
        "/webauthn/login/options",
        Some(origin),
        Some(csrf),
        &json!({ "interaction": interaction }),
    )
    .await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    options["publicKey"].clone()
}

async fn login(
    browser: &Browser<'_>,
    origin: &str,
    interaction: &str,
    csrf: &str,
    credential: &Value,
) -> (u16, Value) {
    call(
        browser,
        "/webauthn/login",
        Some(origin),
        Some(csrf),
        &json!({ "interaction": interaction, "credential": credential }),
    )
    .await
}

/// The ceremony cookie as a `Cookie` header value for a hand-made request.
fn ceremony_cookie(browser: &Browser<'_>) -> String {
    browser
        .cookie("latchkey_webauthn")
        .expect("ceremony cookie")
}

async fn a_registered_passkey_signs_in_with_hwk_and_mfa(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;

    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, answer) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let next = answer["redirect"].as_str().unwrap();
    assert!(next.starts_with("/consent?interaction="), "{next}");
    let (_, consented) = browser.consent(next, "allow").await;
    let location = consented.location.unwrap();
    assert!(location.starts_with(&client.redirect_uri));
    let code = query_of(&location)["code"].clone();
    let (status, tokens, _) = app.token(&client, &code_form(&client, &code, None)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));

    let events = app.events("kind=factor_enrolled").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["kind"], "passkey");
    let page = browser.get("/account").await;
    assert!(page.body.contains("Laptop"));
    assert!(!page.body.contains("never"), "its last use is shown");
}

async fn answers_from_elsewhere_or_for_another_challenge_are_refused(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let (browser, interaction, csrf) = at_login(&app, &client).await;

    // A phishing page's origin, in clientDataJSON.
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    key.origin = origin.replace("localhost", "login.localhost.evil.test");
    let (status, body) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    key.origin = origin.clone();

    // A challenge of another ceremony.
    let first = login_options(&browser, &origin, &interaction, &csrf).await;
    let _second = login_options(&browser, &origin, &interaction, &csrf).await;
    let stale = key.assert(&first);
    let (status, body) = login(&browser, &origin, &interaction, &csrf, &stale).await;
    assert_eq!(status, 403, "{body}");
    let made_up = key.assert_challenge("bm90LXRoZS1jaGFsbGVuZ2U");
    login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, _) = login(&browser, &origin, &interaction, &csrf, &made_up).await;
    assert_eq!(status, 403);

    // Malformed answers are 400s.
    login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, body) = login(&browser, &origin, &interaction, &csrf, &json!({"id": 1})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = call(
        &browser,
        "/webauthn/login",
        Some(&origin),
        Some(&csrf),
        &json!({ "interaction": interaction }),
    )
    .await;
    assert_eq!(status, 400);
    // Without a ceremony (no cookie), nothing can be finished.
    let fresh = Browser::new(&app);
    let (status, body) = login(&fresh, &origin, &interaction, &csrf, &key.assert(&options)).await;
    assert_eq!(status, 400, "{body}");

    // The right answer still works afterwards.
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, body) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn a_replayed_assertion_is_refused(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    for (counts, username) in [(true, "alice"), (false, "bob")] {
        let mut key = SoftAuthenticator::new(&origin);
        key.counts = counts;
        register(&app, &origin, username, "Phone", &mut key).await;
        let (browser, interaction, csrf) = at_login(&app, &client).await;
        let options = login_options(&browser, &origin, &interaction, &csrf).await;
        let cookie = ceremony_cookie(&browser);
        let answer = key.assert(&options);
        let (status, _) = login(&browser, &origin, &interaction, &csrf, &answer).await;
        assert_eq!(status, 200);
        // The same answer with the same ceremony cookie, sent again.
        let url = url::Url::parse(&app.base).unwrap();
        browser
            .jar
            .add_cookie_str(&format!("latchkey_webauthn={cookie}"), &url);
        let (status, body) = login(&browser, &origin, &interaction, &csrf, &answer).await;
        assert_eq!(status, 403, "counter {counts}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "a replay, not a clone: {body}"
        );
    }
    assert!(app.events("kind=passkey_clone_suspected").await.is_empty());
}

async fn a_counter_that_goes_back_is_refused_and_audited(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Key", &mut key).await;
    key.counter = 9;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, _) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 200, "counter 10");

    // A clone made before: its counter is behind.
    key.counter = 3;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, body) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    assert!(browser.cookie("latchkey_session").is_none(), "no session");
    let events = app.events("kind=passkey_clone_suspected").await;
    assert_eq!(events.len(), 1, "{events:?}");
    // The same counter again is no better; a higher one is accepted.
    key.counter = 9;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, _) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 403, "counter 10 again");
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, body) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 200, "counter 11: {body}");
}

async fn calls_without_csrf_token_or_origin_are_refused(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let body = json!({ "interaction": interaction });
    let path = "/webauthn/login/options";
    for (origin, csrf) in [
        (None, Some(csrf.as_str())),
        (Some("http://evil.test"), Some(csrf.as_str())),
        (Some(app.base.as_str()), Some(csrf.as_str())),
        (Some(origin.as_str()), None),
        (Some(origin.as_str()), Some("forged")),
    ] {
        let (status, answer) = call(&browser, path, origin, csrf, &body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("access_denied"))
        );
    }
    assert!(
        browser.cookie("latchkey_webauthn").is_none(),
        "no ceremony started"
    );
    // Not JSON.
    let response = browser
        .http
        .post(app.url(path))
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .form(&[("interaction", &interaction)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Registration: the account page's token, bound to the session.
    let account = Browser::new(&app);
    let account_csrf = account_session(&account, "alice").await;
    let path = "/webauthn/register/options";
    let (status, _) = call(&account, path, Some(&origin), None, &json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = call(&account, path, None, Some(&account_csrf), &json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = call(&account, path, Some(&origin), Some(&csrf), &json!({})).await;
    assert_eq!(
        status, 403,
        "the login page's token is not the account page's"
    );
    let (status, body) = call(
        &browser,
        path,
        Some(&origin),
        Some(&account_csrf),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("login_required"))
    );
    let (status, _) = call(
        &account,
        path,
        Some(&origin),
        Some(&account_csrf),
        &json!({"name": 5}),
    )
    .await;
    assert_eq!(status, 400);
    let long = "x".repeat(65);
    let (status, _) = call(
        &account,
        path,
        Some(&origin),
        Some(&account_csrf),
        &json!({ "name": long }),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &account,
        path,
        Some(&origin),
        Some(&account_csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &account,
        "/webauthn/register",
        Some(&origin),
        Some(&account_csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 400, "not a RegistrationResponseJSON");
}

async fn another_browsers_interaction_cannot_be_used(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let (victim, victim_interaction, victim_csrf) = at_login(&app, &client).await;
    let (attacker, interaction, csrf) = at_login(&app, &client).await;
    // The victim's interaction in the attacker's browser: it opens only where it started.
    let (status, _) = call(
        &attacker,
        "/webauthn/login/options",
        Some(&origin),
        Some(&victim_csrf),
        &json!({ "interaction": victim_interaction }),
    )
    .await;
    assert_eq!(status, 400);
    // A ceremony started for one interaction does not finish another of the same browser.
    let options = login_options(&attacker, &origin, &interaction, &csrf).await;
    let answer = key.assert(&options);
    let location = attacker.authorize_location(&client, "openid profile").await;
    let page = attacker.get(&location).await;
    let other = hidden_field(&page.body, "interaction").unwrap();
    let other_csrf = meta_csrf(&page.body);
    let (status, _) = login(&attacker, &origin, &other, &other_csrf, &answer).await;
    assert_eq!(status, 400);
    let _ = victim;
}

async fn of_fifty_racing_answers_exactly_one_signs_in(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    key.counts = false;
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let cookie = ceremony_cookie(&browser);
    let body = json!({ "interaction": interaction, "credential": key.assert(&options) });
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let http = reqwest::Client::new();
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let request = http
                .post(app.url("/webauthn/login"))
                .header("origin", &origin)
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .header(
                    "cookie",
                    format!("latchkey_webauthn={cookie}; latchkey_interaction={binding}"),
                )
                .body(body.to_string());
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "{statuses:?}"
    );
}

async fn a_removed_passkey_no_longer_signs_in(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Old key", &mut key).await;
    // Bob cannot remove it; alice can, with the account page's form (no script needed),
    // once she has confirmed her session with the passkey (or with nothing it is refused).
    let bob = Browser::new(&app);
    let bob_csrf = account_session(&bob, "bob").await;
    let alice = Browser::new(&app);
    let csrf = account_with_passkey(&alice, &origin, "alice", &mut key).await;
    let page = alice.get("/account").await;
    let id = hidden_field(&page.body, "passkey_id").unwrap();
    let removal = [
        ("csrf_token", bob_csrf.as_str()),
        ("passkey_id", id.as_str()),
    ];
    assert_eq!(
        bob.post_form("/account/passkeys/remove", &removal)
            .await
            .status,
        400
    );
    let forged = [("csrf_token", "forged"), ("passkey_id", id.as_str())];
    assert_eq!(
        alice
            .post_form("/account/passkeys/remove", &forged)
            .await
            .status,
        400
    );
    let removal = [("csrf_token", csrf.as_str()), ("passkey_id", id.as_str())];
    assert_eq!(
        alice
            .post_form("/account/passkeys/remove", &removal)
            .await
            .status,
        303
    );
    assert!(!alice.get("/account").await.body.contains("Old key"));
    assert_eq!(app.events("kind=factor_removed").await.len(), 1);
    assert!(factors_of(&app, "alice").await.is_empty());

    // An operator removes a passkey as a factor: DELETE /admin/users/{sub}/factors/{id}.
    let mut bobs = SoftAuthenticator::new(&origin);
    register(&app, &origin, "bob", "Bob's key", &mut bobs).await;
    let id = factors_of(&app, "bob").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, users) = app.admin(reqwest::Method::GET, "/admin/users", None).await;
    let bob_sub = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/users/{bob_sub}/factors/{id}");
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, 404);
    assert!(factors_of(&app, "bob").await.is_empty());
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, _) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &bobs.assert(&options),
    )
    .await;
    assert_eq!(status, 403, "an operator's removal holds too");

    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, body) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

async fn an_issuer_on_an_address_has_no_passkeys(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    assert!(!page.body.contains("passkey"), "no passkey button");
    assert!(
        !page.body.contains("passkeys.js"),
        "the login page needs no passkey script"
    );
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let (status, _) = call(
        &browser,
        "/webauthn/login/options",
        Some(&app.base),
        Some(&csrf),
        &json!({ "interaction": interaction }),
    )
    .await;
    assert_eq!(status, 404);
}

async fn a_passkey_is_the_second_factor_a_flow_owes_and_reaches_phr(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    // A password login owes the second factor (alice has one); the request asks for phr.
    let browser = Browser::new(&app);
    let location = browser
        .authorize_with(&client, "openid", &[("acr_values", "phr")])
        .await
        .location
        .unwrap();
    let step = browser.login(&location, "alice", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    let second = step.location.unwrap();
    assert!(second.starts_with("/login/otp?"), "{second}");
    let page = browser.get(&second).await;
    assert!(
        page.body.contains("passkey-sign-in"),
        "the second-factor page offers the passkey"
    );
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = meta_csrf(&page.body);
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let (status, answer) = login(
        &browser,
        &origin,
        &interaction,
        &csrf,
        &key.assert(&options),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let next = answer["redirect"].as_str().unwrap();
    assert!(next.starts_with("/consent?"), "{next}");
    let (_, consented) = browser.consent(next, "allow").await;
    let code = query_of(&consented.location.unwrap())["code"].clone();
    let (status, tokens, _) = app.token(&client, &code_form(&client, &code, None)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "phr");
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));
}

async fn a_password_session_cannot_add_a_passkey_once_a_factor_exists(backend: Backend) {
    let (app, _client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    // Someone with alice's password alone: the account page asks for the factor, and the
    // endpoints refuse to add another passkey (it would skip the factor).
    let browser = Browser::new(&app);
    let csrf = account_session(&browser, "alice").await;
    let (status, body) = call(
        &browser,
        "/webauthn/register/options",
        Some(&origin),
        Some(&csrf),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    // Another user's passkey does not confirm alice's session.
    let mut bobs = SoftAuthenticator::new(&origin);
    register(&app, &origin, "bob", "Bob's", &mut bobs).await;
    let (status, options) = call(
        &browser,
        "/webauthn/login/options",
        Some(&origin),
        Some(&csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let answer = json!({ "credential": bobs.assert(&options["publicKey"]) });
    let (status, _) = call(
        &browser,
        "/webauthn/login",
        Some(&origin),
        Some(&csrf),
        &answer,
    )
    .await;
    assert_eq!(status, 403);
    assert!(!browser.get("/account").await.body.contains("passkey-name"));
    // Her own passkey does, and then she may add another.
    let browser = Browser::new(&app);
    let csrf = account_with_passkey(&browser, &origin, "alice", &mut key).await;
    let (status, _) = call(
        &browser,
        "/webauthn/register/options",
        Some(&origin),
        Some(&csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
}
