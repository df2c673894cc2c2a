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
    jwt_part, query_of, spawn_app, spawn_app_with, spawn_node_with,
};
use crate::mfa::provisioned_totp;

both_backends!(
    a_registered_passkey_signs_in_with_hwk_and_mfa,
    answers_from_elsewhere_or_for_another_challenge_are_refused,
    a_replayed_assertion_is_refused,
    a_counter_that_goes_back_is_refused_and_audited,
    calls_without_csrf_token_or_origin_are_refused,
    another_browsers_interaction_cannot_be_used,
    of_fifty_racing_answers_exactly_one_signs_in,
    a_removed_passkey_no_longer_signs_in,
    the_last_second_factor_of_a_user_who_must_use_one_stays,
    an_issuer_on_an_address_has_no_passkeys,
    a_passkey_is_the_second_factor_a_flow_owes_and_reaches_phr,
    another_users_passkey_at_the_second_factor_step_is_a_new_login,
    a_user_with_only_passkeys_is_not_asked_for_an_app_code,
    a_flow_owing_a_factor_gets_nothing_from_the_passkey_endpoints,
    floods_of_passkey_ceremonies_by_strangers_write_nothing,
    a_password_session_cannot_add_a_passkey_once_a_factor_exists,
    of_fifty_racing_registrations_on_two_nodes_the_cap_holds,
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
    let path = format!("/admin/users/{}", sub_of(app, username).await);
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

/// Starts a sign-in ceremony on the login page of `interaction` and answers it with `key`.
async fn sign_in_with(
    browser: &Browser<'_>,
    origin: &str,
    interaction: &str,
    csrf: &str,
    key: &mut SoftAuthenticator,
) -> (u16, Value) {
    let options = login_options(browser, origin, interaction, csrf).await;
    login(browser, origin, interaction, csrf, &key.assert(&options)).await
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
    let (status, answer) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
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
    let (status, body) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
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
    let (status, _) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
    assert_eq!(status, 200, "counter 10");

    // A clone made before: its counter is behind.
    key.counter = 3;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let (status, body) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
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
    let (status, _) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
    assert_eq!(status, 403, "counter 10 again");
    let (status, body) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
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
    let bob_sub = sub_of(&app, "bob").await;
    let path = format!("/admin/users/{bob_sub}/factors/{id}");
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(app.admin(reqwest::Method::DELETE, &path, None).await.0, 404);
    assert!(factors_of(&app, "bob").await.is_empty());
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let (status, _) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut bobs).await;
    assert_eq!(status, 403, "an operator's removal holds too");

    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let (status, body) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
    assert_eq!(status, 403, "{body}");
}

/// A user who must use a second factor cannot remove their last one from the account page
/// (400) while another factor left behind lets the removal through; an operator can remove it
/// (the user is then led through enrolment at the next sign-in).
async fn the_last_second_factor_of_a_user_who_must_use_one_stays(backend: Backend) {
    let (app, _, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let sub = sub_of(&app, "alice").await;
    let totp = provisioned_totp(&app, &sub).await;
    let totp_id = totp["id"].as_str().unwrap().to_owned();
    let require = |on: bool| {
        let app = &app;
        let path = format!("/admin/users/{sub}");
        async move {
            let body = json!({ "mfa_required": on });
            let (status, answer) = app.admin(reqwest::Method::PATCH, &path, Some(&body)).await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    require(true).await;
    let alice = Browser::new(&app);
    let csrf = account_with_passkey(&alice, &origin, "alice", &mut key).await;
    let page = alice.get("/account").await.body;
    let passkey_id = hidden_field(&page, "passkey_id").unwrap();
    // The TOTP goes (the factor list's form has its own CSRF token): the passkey is left.
    let form = &page[..page.find(&format!(r#"value="{totp_id}""#)).unwrap()];
    let marker = r#"name="csrf_token" value=""#;
    let at = form.rfind(marker).unwrap() + marker.len();
    let factors_csrf = &form[at..at + form[at..].find('"').unwrap()];
    let removal = [("csrf_token", factors_csrf), ("factor", totp_id.as_str())];
    let removed = alice.post_form("/account/factors/remove", &removal).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    // The passkey is the last second factor now: the user cannot remove it.
    let removal = [
        ("csrf_token", csrf.as_str()),
        ("passkey_id", passkey_id.as_str()),
    ];
    let refused = alice.post_form("/account/passkeys/remove", &removal).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(factors_of(&app, "alice").await.len(), 1);
    assert_eq!(app.events("kind=factor_removed").await.len(), 1);
    // Once the user need not use one, it can go.
    require(false).await;
    let removed = alice.post_form("/account/passkeys/remove", &removal).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(factors_of(&app, "alice").await.is_empty());
    // An operator removes a required user's last factor (a lost authenticator): 204.
    let totp = provisioned_totp(&app, &sub).await;
    require(true).await;
    let last = totp["id"].as_str().unwrap();
    let path = format!("/admin/users/{sub}/factors/{last}");
    let (status, body) = app.admin(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "{body}");
    assert!(factors_of(&app, "alice").await.is_empty());
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
    // A user with a passkey only: no code form, the passkey box names the interaction.
    let interaction = query_of(&format!("http://x{second}"))["interaction"].clone();
    let csrf = meta_csrf(&page.body);
    let (status, answer) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut key).await;
    assert_eq!(status, 200, "{answer}");
    let next = answer["redirect"].as_str().unwrap();
    assert!(next.starts_with("/consent?"), "{next}");
    let (_, consented) = browser.consent(next, "allow").await;
    let code = query_of(&consented.location.unwrap())["code"].clone();
    let (status, tokens, _) = app.token(&client, &code_form(&client, &code, None)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "phr");
    assert_eq!(
        claims["amr"],
        json!(["pwd", "hwk", "mfa"]),
        "the passkey adds to the password session it raises (RFC 8176)"
    );
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(access["acr"], "phr", "the access token's acr follows");
    let raised = app.events("kind=login_succeeded").await;
    assert!(
        raised
            .iter()
            .any(|e| e["detail"]["amr"] == "pwd hwk mfa" && e["detail"]["method"] == "passkey"),
        "{raised:?}"
    );
}

/// At the second-factor step of alice's password session, bob's passkey is no second factor
/// of hers: it is a new login, as bob, with bob's passkey alone (nothing of alice's session
/// carries over).
async fn another_users_passkey_at_the_second_factor_step_is_a_new_login(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut alices = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut alices).await;
    let mut bobs = SoftAuthenticator::new(&origin);
    register(&app, &origin, "bob", "Phone", &mut bobs).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let step = browser.login(&location, "alice", PASSWORD).await;
    let second = step.location.unwrap();
    assert!(second.starts_with("/login/otp?"), "{second}");
    let page = browser.get(&second).await;
    // A user with a passkey only: no code form, the passkey box names the interaction.
    let interaction = query_of(&format!("http://x{second}"))["interaction"].clone();
    let csrf = meta_csrf(&page.body);
    let (status, answer) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut bobs).await;
    assert_eq!(status, 200, "{answer}");
    let next = answer["redirect"].as_str().unwrap();
    let (_, consented) = browser.consent(next, "allow").await;
    let code = query_of(&consented.location.unwrap())["code"].clone();
    let (status, tokens, _) = app.token(&client, &code_form(&client, &code, None)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));
    assert_eq!(
        claims["sub"],
        sub_of(&app, "bob").await,
        "the code is bob's"
    );
}

/// The `sub` of `username`, from the admin API.
async fn sub_of(app: &TestApp, username: &str) -> String {
    let (_, users) = app.admin(reqwest::Method::GET, "/admin/users", None).await;
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

/// Fifty registrations of one user at once, spread over two nodes, each with its own
/// ceremony and authenticator: exactly as many are stored as the cap allows (one passkey
/// was there before), the rest are refused with 400, never a 5xx.
async fn of_fifty_racing_registrations_on_two_nodes_the_cap_holds(backend: Backend) {
    const RACERS: usize = 50;
    let (app, _client, origin) = passkey_app(backend).await;
    let issuer = origin.clone();
    let second = spawn_node_with(&app, move |env| {
        for (key, value) in env.iter_mut() {
            if key == "LATCHKEY_ISSUER" {
                *value = issuer.clone();
            }
        }
    })
    .await;
    let mut first = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "First", &mut first).await;
    let browser = Browser::new(&app);
    let csrf = account_with_passkey(&browser, &origin, "alice", &mut first).await;
    let session = browser.cookie("latchkey_session").unwrap();

    let mut racers = Vec::new();
    for i in 0..RACERS {
        let (status, options) = call(
            &browser,
            "/webauthn/register/options",
            Some(&origin),
            Some(&csrf),
            &json!({ "name": format!("Key {i}") }),
        )
        .await;
        assert_eq!(status, 200, "{options}");
        let answer = SoftAuthenticator::new(&origin).register(&options["publicKey"]);
        let node = if i % 2 == 0 { &app.base } else { &second.base };
        let request = reqwest::Client::new()
            .post(format!("{node}/webauthn/register"))
            .header("origin", &origin)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .header(
                "cookie",
                format!(
                    "latchkey_session={session}; latchkey_webauthn={}",
                    ceremony_cookie(&browser)
                ),
            )
            .body(answer.to_string());
        racers.push(request);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = racers
        .into_iter()
        .map(|request| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                request.send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let stored = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!((stored, refused), (9, RACERS - 9), "{statuses:?}");
    let passkeys = factors_of(&app, "alice")
        .await
        .into_iter()
        .filter(|f| f["kind"] == "passkey")
        .count();
    assert_eq!(passkeys, 10);
}

/// The second-factor page of a user whose only factor is a passkey asks for the passkey, not
/// for an authenticator app's code; it has no code field when there are no recovery codes
/// either, and says (for browsers without script) that a passkey needs JavaScript. A user
/// with a TOTP and a passkey is offered both.
async fn a_user_with_only_passkeys_is_not_asked_for_an_app_code(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    for (locales, asks, never) in [
        (
            "en",
            "Confirm that it is you with your passkey.",
            "authenticator app",
        ),
        (
            "de",
            "Bestätigen Sie mit Ihrem Passkey, dass Sie es sind.",
            "Authenticator-App",
        ),
    ] {
        let browser = Browser::new(&app);
        let location = browser
            .authorize_with(&client, "openid", &[("ui_locales", locales)])
            .await
            .location
            .unwrap();
        let second = browser
            .login(&location, "alice", PASSWORD)
            .await
            .location
            .unwrap();
        let page = browser.get(&second).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(asks), "{locales}: {}", page.body);
        assert!(!page.body.contains(never), "{locales}: {}", page.body);
        assert!(!page.body.contains(r#"name="otp""#), "no code to enter");
        assert!(page.body.contains("passkey-sign-in"));
        assert!(page.body.contains(r#"id="passkey-needs-script""#));
        // The passkey box names the interaction itself (there is no form to read it from).
        let interaction = query_of(&format!("http://x{second}"))["interaction"].clone();
        assert!(
            page.body
                .contains(&format!(r#"data-interaction="{interaction}""#))
        );
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
    }

    // With a TOTP as well, the code field asks for the app's code and the passkey is offered.
    let sub = sub_of(&app, "alice").await;
    provisioned_totp(&app, &sub).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let second = browser
        .login(&location, "alice", PASSWORD)
        .await
        .location
        .unwrap();
    let page = browser.get(&second).await;
    assert!(page.body.contains("authenticator app"), "{}", page.body);
    assert!(page.body.contains(r#"name="otp""#));
    assert!(page.body.contains("passkey-sign-in"));
}

/// A flow at alice's second-factor step (someone has her password, not her factor) gets
/// nothing from the passkey endpoints: no answer without a ceremony, an unknown
/// authenticator's answer, a registration with the login page's token, or an answer
/// signed for another challenge. The flow still owes the factor afterwards, and nothing was
/// granted.
async fn a_flow_owing_a_factor_gets_nothing_from_the_passkey_endpoints(backend: Backend) {
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let second = browser
        .login(&location, "alice", PASSWORD)
        .await
        .location
        .unwrap();
    assert!(second.starts_with("/login/otp?"), "{second}");
    let page = browser.get(&second).await;
    let interaction = query_of(&format!("http://x{second}"))["interaction"].clone();
    let csrf = meta_csrf(&page.body);

    // No ceremony in this browser.
    let stranger = SoftAuthenticator::new(&origin);
    let forged = json!({
        "type": "public-key",
        "id": "AAAA",
        "rawId": "AAAA",
        "response": {},
    });
    let (status, _) = login(&browser, &origin, &interaction, &csrf, &forged).await;
    assert_eq!(status, 400);
    // An authenticator registered nowhere.
    let mut stranger = stranger;
    let (status, _) = sign_in_with(&browser, &origin, &interaction, &csrf, &mut stranger).await;
    assert_eq!(status, 403);
    // Alice's passkey, signing a challenge the server did not give.
    login_options(&browser, &origin, &interaction, &csrf).await;
    let made_up = key.assert_challenge("bm90LXRoZS1jaGFsbGVuZ2U");
    let (status, _) = login(&browser, &origin, &interaction, &csrf, &made_up).await;
    assert_eq!(status, 403);
    // Registering a passkey for alice from here: the login page's token is not the account
    // page's, and the password session does not meet her level.
    let (status, _) = call(
        &browser,
        "/webauthn/register/options",
        Some(&origin),
        Some(&csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 403);
    // The account page's step-up does not take the flow's token either.
    let (status, _) = call(
        &browser,
        "/webauthn/login/options",
        Some(&origin),
        Some(&csrf),
        &json!({}),
    )
    .await;
    assert_eq!(status, 403);

    let still = browser.get(&second).await;
    assert_eq!(
        still.status, 200,
        "the factor is still owed: {}",
        still.body
    );
    assert!(still.body.contains("passkey-sign-in"));
    let consent = browser
        .get(&format!("/consent?interaction={interaction}"))
        .await;
    assert_ne!(consent.status, 200, "no consent page");
    assert!(app.events("kind=consent_granted").await.is_empty());
    let logins = app.events("kind=login_succeeded").await;
    assert!(
        logins.iter().all(|e| e["detail"]["method"] != "passkey"),
        "{logins:?}"
    );
}

/// Passkey ceremonies started and answered wrongly by anyone, thousands of times, write no
/// row: options are sealed into a cookie, not stored, and an answer is written (its ceremony
/// spent, its counter moved) only once its signature holds.
async fn floods_of_passkey_ceremonies_by_strangers_write_nothing(backend: Backend) {
    use crate::refusals::{assert_growth, flood, row_counts};
    let (app, client, origin) = passkey_app(backend).await;
    let mut key = SoftAuthenticator::new(&origin);
    register(&app, &origin, "alice", "Laptop", &mut key).await;
    let (browser, interaction, csrf) = at_login(&app, &client).await;
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let options = login_options(&browser, &origin, &interaction, &csrf).await;
    let ceremony = ceremony_cookie(&browser);
    let wrong_challenge = key.assert_challenge("bm90LXRoZS1jaGFsbGVuZ2U");
    let _ = options;
    let counts = row_counts(&app).await;

    let request = |path: &'static str, body: Value| {
        let (http, url, origin, csrf) = (
            reqwest::Client::new(),
            app.url(path),
            origin.clone(),
            csrf.clone(),
        );
        let cookie = format!("latchkey_interaction={binding}; latchkey_webauthn={ceremony}");
        move |_| {
            http.post(&url)
                .header("origin", &origin)
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .header("cookie", &cookie)
                .body(body.to_string())
        }
    };
    let seen = flood(request(
        "/webauthn/login/options",
        json!({ "interaction": interaction }),
    ))
    .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen.contains_key(&200), "{seen:?}");
    let counts = assert_growth(&app, &counts, "passkey options", &[]).await;

    let seen = flood(request(
        "/webauthn/login",
        json!({ "interaction": interaction, "credential": wrong_challenge }),
    ))
    .await;
    assert_eq!(seen.keys().collect::<Vec<_>>(), [&403], "{seen:?}");
    assert_growth(&app, &counts, "wrong passkey answers", &[]).await;
}
