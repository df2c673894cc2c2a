//! The second step of a login: a TOTP code (each accepted once, one step of drift either way)
//! or a recovery code (each used once), throttled per account like passwords.

use std::sync::Arc;

use super::{
    code_at, code_now, finish, freeze_mid_step, id_claims, password_step, provision_totp, sub_of,
    submit_otp,
};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, Step, TestApp, TestClient, hidden_field, spawn_app_with_alice, spawn_node,
};

both_backends!(
    a_user_with_totp_gives_a_code_after_the_password,
    a_code_is_accepted_once,
    one_step_of_drift_is_accepted_two_are_not,
    racing_wrong_codes_get_exactly_the_free_attempts,
    the_password_grant_refuses_a_user_with_a_second_factor,
    the_account_page_says_when_a_factor_was_last_used_in_words,
    on_two_nodes_racing_wrong_codes_get_exactly_the_free_attempts,
    on_two_nodes_fifty_racing_uses_of_one_code_are_accepted_once,
    a_forced_password_change_continues_the_one_sign_in,
);

async fn setup(backend: Backend) -> (TestApp, TestClient, String) {
    let (app, client) = spawn_app_with_alice(backend).await;
    freeze_mid_step(&app);
    let sub = sub_of(&app, "alice").await;
    let secret = provision_totp(&app, &sub).await;
    (app, client, secret)
}

async fn a_user_with_totp_gives_a_code_after_the_password(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let otp_page = step.location.unwrap();
    assert!(otp_page.starts_with("/login/otp?"), "{otp_page}");

    let right = code_now(&app, &secret);
    let not_it = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let wrong = submit_otp(&browser, &otp_page, not_it).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains(r#"name="otp""#), "the form again");

    let accepted = submit_otp(&browser, &otp_page, &right).await;
    let query = finish(&browser, &client, accepted).await;
    assert_eq!(query["state"], "s-1");
    let (id, access) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "mfa");
    assert_eq!(
        access["acr"], "mfa",
        "RFC 9470: resource servers see the level"
    );
    let kinds: Vec<String> = app
        .events("kind=factor_used")
        .await
        .iter()
        .map(|e| e["detail"]["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["totp"]);
    assert_eq!(app.events("kind=factor_failed").await.len(), 1);
}

async fn a_code_is_accepted_once(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let code = code_now(&app, &secret);
    let first = Browser::new(&app);
    let step = password_step(&first, &client, &[]).await;
    let accepted = submit_otp(&first, &step.location.unwrap(), &code).await;
    finish(&first, &client, accepted).await;

    // The same code in another browser, within its step: refused.
    let second = Browser::new(&app);
    let step = password_step(&second, &client, &[]).await;
    let otp_page = step.location.unwrap();
    let again = submit_otp(&second, &otp_page, &code).await;
    assert_eq!(again.status, 401, "a used code is refused: {}", again.body);
    // So is the code of the step before (it is older than the one used).
    let older = submit_otp(&second, &otp_page, &code_at(&secret, app.app.now() - 30)).await;
    assert_eq!(older.status, 401);
    // The next step's code works.
    app.clock.advance(30);
    let next = submit_otp(&second, &otp_page, &code_now(&app, &secret)).await;
    finish(&second, &client, next).await;
}

async fn one_step_of_drift_is_accepted_two_are_not(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let otp_page = step.location.unwrap();
    let now = app.app.now();
    for off in [-60, 60, -90, 90] {
        let refused = submit_otp(&browser, &otp_page, &code_at(&secret, now + off)).await;
        assert_eq!(refused.status, 401, "{off} s off is refused");
    }
    let behind = submit_otp(&browser, &otp_page, &code_at(&secret, now - 30)).await;
    finish(&browser, &client, behind).await;

    let ahead_browser = Browser::new(&app);
    let step = password_step(&ahead_browser, &client, &[]).await;
    let ahead = submit_otp(
        &ahead_browser,
        &step.location.unwrap(),
        &code_at(&secret, now + 30),
    )
    .await;
    finish(&ahead_browser, &client, ahead).await;
}

/// Fifty wrong codes for one account at once: the five free ones and the sixth (which locks
/// the account for a second) are checked, every other one is refused before any check; the
/// right code right after the burst waits too.
async fn racing_wrong_codes_get_exactly_the_free_attempts(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let otp_page = step.location.unwrap();
    let page = browser.get(&otp_page).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let right = code_now(&app, &secret);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, barrier) =
                (browser.http.clone(), app.url("/login/otp"), barrier.clone());
            let form = vec![
                ("interaction", interaction.clone()),
                ("csrf_token", csrf.clone()),
                ("otp", wrong.to_owned()),
            ];
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (6, 44), "{statuses:?}");
    let late = submit_otp(&browser, &otp_page, &right).await;
    assert_eq!(late.status, 429, "even the right code waits");
    assert!(late.headers.get("retry-after").is_some());
}

async fn the_password_grant_refuses_a_user_with_a_second_factor(backend: Backend) {
    let (app, client) = crate::helpers::spawn_app_with_alice_and(
        backend,
        &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")],
    )
    .await;
    let registration = app
        .create_client(serde_json::json!({
            "client_name": "Legacy",
            "redirect_uris": ["https://legacy.example.test/cb"],
            "grant_types": ["password"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid",
        }))
        .await;
    let legacy = TestClient::from_registration(&registration);
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", crate::helpers::PASSWORD),
        ("scope", "openid"),
    ];
    let (status, _, _) = app.token(&legacy, &form).await;
    assert_eq!(status, 200, "no factor yet: the password grant works");
    let sub = sub_of(&app, "alice").await;
    provision_totp(&app, &sub).await;
    let (status, body, _) = app.token(&legacy, &form).await;
    crate::helpers::assert_error(status, &body, 400, "invalid_grant");
    let _ = client;
}

/// The account page shows a factor's last use as a date and time in words of the browser's
/// language (`Accept-Language`), with the machine-readable time in `<time datetime>`; never a
/// raw Unix timestamp.
async fn the_account_page_says_when_a_factor_was_last_used_in_words(backend: Backend) {
    use latchkey::http::ui::text::{DE, EN, Text};
    let (app, client, secret) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = password_step(&browser, &client, &[]).await;
    let used_at = app.app.now();
    let accepted = submit_otp(&browser, &step.location.unwrap(), &code_now(&app, &secret)).await;
    finish(&browser, &client, accepted).await;

    let account = |language: Option<&'static str>| {
        let mut request = browser.http.get(app.url("/account"));
        if let Some(language) = language {
            request = request.header("accept-language", language);
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let machine = format!(r#"<time datetime="{}">"#, Text::machine_time(used_at));
    for (language, text, words) in [
        (None, &EN, ["last used", "authenticator app"]),
        (
            Some("en-GB,en;q=0.9"),
            &EN,
            ["last used", "authenticator app"],
        ),
        (
            Some("de-DE,de;q=0.9,en;q=0.5"),
            &DE,
            ["zuletzt verwendet", "Authenticator-App"],
        ),
        (
            Some("fr, de;q=0.8, en;q=0.4"),
            &DE,
            ["zuletzt verwendet", "Authenticator-App"],
        ),
    ] {
        let page = account(language).await;
        assert!(page.contains(&format!(r#"lang="{}""#, text.lang)), "{page}");
        let when = format!("{machine}{}</time>", text.when(used_at));
        assert!(page.contains(&when), "{language:?}: {when} in {page}");
        for word in words {
            assert!(page.contains(word), "{language:?}: {word}");
        }
        assert!(
            !page.contains(&used_at.to_string()),
            "no raw timestamp: {page}"
        );
    }
}

/// A second node over alice's database, its clock stopped at the first node's time.
async fn second_node(app: &TestApp) -> TestApp {
    let second = spawn_node(app).await;
    second.clock.freeze_at(app.app.now());
    second
}

/// `RACERS` POSTs of `otp` on the second-factor page at `otp_page` of `browser`'s flow, all
/// released at once, alternating between `nodes`; their answers.
async fn race_codes(
    browser: &Browser<'_>,
    otp_page: &str,
    otp: &str,
    nodes: [&str; 2],
) -> Vec<Step> {
    const RACERS: usize = 50;
    let page = browser.get(otp_page).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            // The browser's cookies hold for both nodes (cookies ignore ports).
            let request = browser
                .http
                .post(format!("{}/login/otp", nodes[i % 2]))
                .form(&[
                    ("interaction", interaction.as_str()),
                    ("csrf_token", csrf.as_str()),
                    ("otp", otp),
                ]);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                Browser::step(request.send().await.unwrap()).await
            })
        })
        .collect();
    let mut steps = Vec::new();
    for t in tasks {
        steps.push(t.await.unwrap());
    }
    steps
}

/// As `racing_wrong_codes_get_exactly_the_free_attempts`, with the racers spread over two
/// nodes: the throttle is counted in the database, so the nodes together allow no more.
async fn on_two_nodes_racing_wrong_codes_get_exactly_the_free_attempts(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let second = second_node(&app).await;
    let browser = Browser::new(&app);
    let otp_page = password_step(&browser, &client, &[])
        .await
        .location
        .unwrap();
    let right = code_now(&app, &secret);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let steps = race_codes(
        &browser,
        &otp_page,
        wrong,
        [app.base.as_str(), second.base.as_str()],
    )
    .await;
    let statuses: Vec<u16> = steps.iter().map(|s| s.status).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (6, 44), "{statuses:?}");
    let late = submit_otp(&browser, &otp_page, &right).await;
    assert_eq!(late.status, 429, "even the right code waits");
}

/// Fifty submissions of the right code at once, over two nodes: the code is accepted once
/// (one conditional update of the last accepted step), so exactly one racer moves the flow
/// on and one `factor_used` is recorded; none gets a 5xx.
async fn on_two_nodes_fifty_racing_uses_of_one_code_are_accepted_once(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let second = second_node(&app).await;
    let browser = Browser::new(&app);
    let otp_page = password_step(&browser, &client, &[])
        .await
        .location
        .unwrap();
    let right = code_now(&app, &secret);
    let steps = race_codes(
        &browser,
        &otp_page,
        &right,
        [app.base.as_str(), second.base.as_str()],
    )
    .await;
    let moved_on = steps
        .iter()
        .filter(|s| {
            s.status == 303
                && s.location
                    .as_deref()
                    .is_some_and(|l| !l.starts_with("/login?"))
        })
        .count();
    assert_eq!(
        moved_on,
        1,
        "{:?}",
        steps
            .iter()
            .map(|s| (s.status, &s.location))
            .collect::<Vec<_>>()
    );
    assert!(
        steps.iter().all(|s| [303, 401, 429].contains(&s.status)),
        "{:?}",
        steps.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    assert_eq!(app.events("kind=factor_used").await.len(), 1);
}

/// A user with a TOTP whom an operator told to choose a new password: the password, the new
/// password and the code are one sign-in, as if the change had not been asked for. One
/// session holds it; the ID token's `amr` says password and code, its `auth_time` is the
/// sign-in's and its `sid` that session's; the password's `login_succeeded` is recorded with
/// the session it starts, once the new password is set (not before).
async fn a_forced_password_change_continues_the_one_sign_in(backend: Backend) {
    let (app, client, secret) = setup(backend).await;
    let sub = sub_of(&app, "alice").await;
    let (status, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&serde_json::json!({"password_reset_required": true})),
        )
        .await;
    assert_eq!(status, 200);
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "s-1"), ("nonce", "n-1")])
        .await;
    let form = browser
        .login(&step.location.unwrap(), "alice", crate::helpers::PASSWORD)
        .await;
    assert_eq!(form.status, 200, "the password form: {}", form.body);
    assert!(
        app.events("kind=login_succeeded").await.is_empty(),
        "not signed in before the new password is set"
    );
    let store = &app.app.store;
    let now = app.app.now();
    assert!(
        store
            .list_sessions_of_user(&sub, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let interaction = hidden_field(&form.body, "interaction").unwrap();
    let ticket = hidden_field(&form.body, "csrf_token").unwrap();
    app.clock.advance(1);
    let changed = browser
        .post_form(
            "/password",
            &[
                ("interaction", interaction.as_str()),
                ("sub", sub.as_str()),
                ("csrf_token", ticket.as_str()),
                ("new_password", "a brand new password"),
                ("confirm_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let otp_page = changed.location.unwrap();
    let signed_in_at = app.app.now();
    let accepted = submit_otp(&browser, &otp_page, &code_now(&app, &secret)).await;
    let query = finish(&browser, &client, accepted).await;
    let (id, access) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "mfa");
    assert_eq!(access["acr"], "mfa");
    let sessions = store
        .list_sessions_of_user(&sub, app.app.now(), 10)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "one sign-in, one session: {sessions:?}");
    assert_eq!(id["sid"], sessions[0].sid.as_str());
    assert_eq!(id["auth_time"], sessions[0].auth_time);
    assert_eq!(sessions[0].auth_time, signed_in_at);
    // Newest first: the code raised the sign-in that the password (and its change) began,
    // exactly the two events of a login without the change.
    let logins = app.events("kind=login_succeeded").await;
    let amrs: Vec<&str> = logins
        .iter()
        .map(|e| e["detail"]["amr"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(amrs, ["pwd otp mfa", "pwd"], "{logins:?}");
    assert!(
        logins
            .iter()
            .all(|e| e["client_id"] == client.client_id.as_str()),
        "{logins:?}"
    );
}
