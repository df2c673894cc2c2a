//! Mail, against a real SMTP server (`MailSink`): "Forgot password?" and its reset link, and
//! email verification. What a mail carries arrives, its link works once, and an expired,
//! used, or outdated link (the password changed since) does nothing.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

/// A password the policy accepts.
const NEW_PASSWORD: &str = "umbrella quinoa trombone";
const ALICE_MAIL: &str = "alice@example.test";

async fn forgot(app: &TestApp, login: &str) -> (u16, String) {
    let answer = app
        .http
        .post(app.url("/password/forgot"))
        .form(&[("login", login)])
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn get(app: &TestApp, url: &str) -> (u16, String) {
    let answer = app.http.get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn set_password(base: &str, token: &str, password: &str, confirm: &str) -> (u16, String) {
    let answer = no_redirect_client(false)
        .post(format!("{base}/password/reset"))
        .form(&[
            ("token", token),
            ("password", password),
            ("password_confirm", confirm),
        ])
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn token_of(link: &str) -> String {
    query_of(link)["token"].clone()
}

/// Asks for a reset of alice's password and returns the link of the mail that arrives.
async fn reset_link(app: &TestApp, sink: &MailSink, nth: usize) -> String {
    let (status, _) = forgot(app, "alice").await;
    assert_eq!(status, 200);
    let mails = sink.wait_for(ALICE_MAIL, nth).await;
    mails[nth - 1].link(&format!("{}/password/reset?token=", app.base))
}

async fn password_is(app: &TestApp, password: &str) -> bool {
    let user = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    app.app
        .passwords
        .verify(password, Some(&user.password_hash))
        .await
        .unwrap()
}

async fn a_reset_link_arrives_works_once_and_ends_every_session_and_family(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let user = app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    // A browser session and a refresh-token family won with the old password.
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(&client, "openid offline_access", Some(&challenge), &[])
        .await;
    let (_, tokens) = redeem(&app, &client, &query["code"], Some(&verifier)).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, page) = forgot(&app, "alice").await;
    assert_eq!(status, 200, "{page}");
    let mail = sink.wait_for(ALICE_MAIL, 1).await.remove(0);
    assert_eq!(mail.from, MAIL_FROM);
    assert!(
        mail.subject.contains("Reset your password"),
        "{}",
        mail.subject
    );
    let link = mail.link(&format!("{}/password/reset?token=", app.base));
    assert!(
        mail.html.contains(&link),
        "the HTML body carries the link too"
    );
    // The queued mail was sealed: neither the link's token nor the address sat readable in
    // the database.
    let sub = user["sub"].as_str().unwrap();
    let queued = app.app.store.list_outbox("mail", sub, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].payload.contains(&token_of(&link)));
    assert!(!queued[0].payload.contains(ALICE_MAIL));

    let (status, form) = get(&app, &link).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("name=\"password\"") && form.contains("name=\"password_confirm\""));
    let token = token_of(&link);
    let (status, done) = set_password(&app.base, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{done}");
    assert!(password_is(&app, NEW_PASSWORD).await);

    // Once only.
    let (status, _) = set_password(
        &app.base,
        &token,
        "another unusual passphrase",
        "another unusual passphrase",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(get(&app, &link).await.0, 400);
    assert!(password_is(&app, NEW_PASSWORD).await);

    // The family is revoked and the session is gone: the browser must sign in again.
    let (status, body) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let again = browser.authorize_for(&client, "openid").await;
    assert!(
        again
            .location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/login"),
        "{:?}",
        again.location
    );
}

/// A reset takes the one path every password change by its user takes
/// (`UserStore::change_password`): every session of the user ends, each client that was in
/// one hears of it through back-channel logout, and every refresh-token family ends.
async fn a_reset_ends_every_session_with_back_channel_logout_and_every_family(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(
        backend,
        &[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")],
    )
    .await;
    app.create_user("alice").await;
    // Nothing listens there: the notifications stay queued, which is what is looked at.
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "RP",
            "redirect_uris": ["https://app.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access",
            "backchannel_logout_uri": "http://127.0.0.1:9/logout",
            "backchannel_logout_session_required": true,
        }))
        .await,
    );
    let sign_in = || async {
        let browser = Browser::new(&app);
        let query = browser
            .code_flow(&client, "openid offline_access", None, &[])
            .await;
        let (status, tokens, _) = app
            .token(&client, &code_form(&client, &query["code"], None))
            .await;
        assert_eq!(status, 200, "{tokens}");
        let sid = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        (sid, tokens["refresh_token"].as_str().unwrap().to_owned())
    };
    let (sid_one, refresh_one) = sign_in().await;
    let (sid_two, refresh_two) = sign_in().await;

    let link = reset_link(&app, &sink, 1).await;
    let (status, done) =
        set_password(&app.base, &token_of(&link), NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{done}");

    let (status, body) = app
        .admin(
            Method::GET,
            &format!("/admin/clients/{}/logout-deliveries", client.client_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut notified: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sid"].as_str().unwrap())
        .collect();
    notified.sort_unstable();
    let mut expected = vec![sid_one.as_str(), sid_two.as_str()];
    expected.sort_unstable();
    assert_eq!(notified, expected, "both of alice's sessions");
    let sub = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .sub;
    assert!(
        app.app
            .store
            .list_sessions_of_user(&sub, app.app.now(), 50)
            .await
            .unwrap()
            .is_empty()
    );
    for family in [refresh_one, refresh_two] {
        let (status, _) = refresh(&app, &client, &family, None).await;
        assert_eq!(status, 400);
    }
}

async fn a_reset_link_dies_when_it_expires(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.create_user("alice").await;
    let link = reset_link(&app, &sink, 1).await;
    app.clock.advance(30 * 60 + 1);
    assert_eq!(get(&app, &link).await.0, 400);
    let (status, _) = set_password(&app.base, &token_of(&link), NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(password_is(&app, PASSWORD).await);
}

async fn a_reset_link_dies_when_the_password_changes_another_way(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let user = app.create_user("alice").await;
    let link = reset_link(&app, &sink, 1).await;
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{}", user["sub"].as_str().unwrap()),
            Some(&json!({ "password": "operator set this one" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, &link).await.0, 400);
    let (status, _) = set_password(&app.base, &token_of(&link), NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(password_is(&app, "operator set this one").await);
}

async fn a_newer_link_replaces_the_older_one(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.create_user("alice").await;
    let first = reset_link(&app, &sink, 1).await;
    let second = reset_link(&app, &sink, 2).await;
    assert_ne!(first, second);
    assert_eq!(get(&app, &first).await.0, 400);
    assert_eq!(get(&app, &second).await.0, 200);
}

async fn common_or_mismatched_passwords_are_refused_and_the_link_stays_usable(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.create_user("alice").await;
    let token = token_of(&reset_link(&app, &sink, 1).await);
    for (password, confirm, says) in [
        ("password123", "password123", "most common"),
        ("short", "short", "at least 8"),
        (NEW_PASSWORD, "something else entirely", "differ"),
    ] {
        let (status, page) = set_password(&app.base, &token, password, confirm).await;
        assert_eq!(status, 400, "{password}");
        assert!(page.contains(says), "{password}: {page}");
        assert!(page.contains("name=\"token\""), "the form is shown again");
    }
    assert!(password_is(&app, PASSWORD).await);
    let (status, _) = set_password(&app.base, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200);
}

/// The same answer, status and page for an existing account (by name or address), an
/// unknown name and an unknown address; only the real account gets mail.
async fn forgot_password_does_not_tell_who_exists(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.create_user("alice").await;
    let mut answers = HashSet::new();
    let mut slowest = std::time::Duration::ZERO;
    for login in ["alice", ALICE_MAIL, "mallory", "nobody@example.test"] {
        let started = std::time::Instant::now();
        answers.insert(forgot(&app, login).await);
        slowest = slowest.max(started.elapsed());
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (status, page) = answers.into_iter().next().unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("If an account matches"), "{page}");
    // No answer waits for the account to be found or mailed (that runs detached), so each
    // comes back in the time of a throttle count.
    assert!(slowest < std::time::Duration::from_secs(2), "{slowest:?}");
    assert_eq!(sink.wait_for(ALICE_MAIL, 2).await.len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(sink.received("nobody@example.test").is_empty());
}

/// A flood of requests for one account leaves one outstanding link, and the account's
/// throttle stops the mails after a few; the address's throttle then refuses outright.
async fn forgot_password_requests_are_bounded_per_account_and_address(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let user = app.create_user("alice").await;
    let sub = user["sub"].as_str().unwrap().to_owned();
    let answers = futures_util::future::join_all((0..40).map(|_| forgot(&app, "alice"))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "the address is throttled: {statuses:?}"
    );
    // Let the detached work settle, then count.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let queued = app.app.store.list_outbox("mail", &sub, 100).await.unwrap();
    assert!(
        (1..=6).contains(&queued.len()),
        "at most the account's allowance of mails: {}",
        queued.len()
    );
    let outstanding = count_rows(&app, "SELECT COUNT(*) AS n FROM email_token").await;
    assert_eq!(outstanding, 1, "one outstanding link per account");
    drop(sink);
}

async fn count_rows(app: &TestApp, sql: &str) -> i64 {
    use sqlx::Row;
    match app.backend {
        Backend::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            sqlx::query(sql).fetch_one(&pool).await.unwrap().get("n")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).fetch_one(&pool).await.unwrap().get("n")
        }
    }
}

/// Fifty simultaneous submissions of one link, spread over two nodes: exactly one sets its
/// password.
async fn fifty_concurrent_redemptions_on_two_nodes_have_one_winner(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let other = spawn_node_with(&app, |env| {
        env.push(("LATCHKEY_SMTP_URL".into(), sink.url()));
        env.push(("LATCHKEY_EMAIL_FROM".into(), MAIL_FROM.into()));
    })
    .await;
    app.create_user("alice").await;
    let token = token_of(&reset_link(&app, &sink, 1).await);
    let passwords: Vec<String> = (0..50)
        .map(|i| format!("racing unusual passphrase {i}"))
        .collect();
    let answers = futures_util::future::join_all(passwords.iter().enumerate().map(|(i, p)| {
        let base = if i % 2 == 0 { &app.base } else { &other.base };
        set_password(base, &token, p, p)
    }))
    .await;
    let winners: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, (status, _))| *status == 200)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 400));
    assert!(password_is(&app, &passwords[winners[0]]).await);
}

/// A reset does not sign anyone in, and the next sign-in still asks for the second factor.
async fn a_reset_does_not_skip_the_second_factor(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let user = app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("/admin/users/{}/totp", user["sub"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let token = token_of(&reset_link(&app, &sink, 1).await);
    let (status, done) = set_password(&app.base, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200);
    assert!(!done.contains("Set-Cookie"));
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    let step = browser.login(&login, "alice", NEW_PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert!(
        step.location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/login/otp"),
        "{:?}",
        step.location
    );
}

/// Without SMTP the pages do not exist and the login page does not link them.
async fn without_smtp_there_is_no_forgot_password(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    assert_eq!(get(&app, &app.url("/password/forgot")).await.0, 404);
    assert_eq!(forgot(&app, "alice").await.0, 404);
    assert_eq!(get(&app, &app.url("/password/reset?token=x")).await.0, 404);
    assert_eq!(get(&app, &app.url("/email/verify?token=x")).await.0, 404);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&login).await;
    assert!(!page.body.contains("/password/forgot"));
}

async fn the_login_page_links_forgot_password_keeping_the_request(backend: Backend) {
    let (app, _sink) = spawn_app_with_mail(backend, &[]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&login).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let href = format!("/password/forgot?interaction={interaction}");
    assert!(page.body.contains(&href), "{}", page.body);
    let forgot_page = browser.get(&href).await;
    assert_eq!(forgot_page.status, 200);
    assert!(forgot_page.body.contains("name=\"login\""));
    assert!(
        forgot_page
            .body
            .contains(&format!("/login?interaction={interaction}"))
    );
}

async fn a_german_browser_gets_german_pages_and_mail(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.create_user("alice").await;
    let answer = app
        .http
        .post(app.url("/password/forgot"))
        .header("accept-language", "de-DE,de;q=0.9,en;q=0.5")
        .form(&[("login", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("Sehen Sie in Ihre Mails")
    );
    let mail = sink.wait_for(ALICE_MAIL, 1).await.remove(0);
    assert!(
        mail.subject.contains("Passwort zurücksetzen"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Hallo alice"));
}

/// Setting or changing an address sends a link that confirms it; `email_verified` comes
/// from it, and the link works once, only for the address it was sent to.
async fn a_new_address_is_verified_by_its_link(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    let (status, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": "bob", "password": PASSWORD, "email": "bob@example.test"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email_verified"], json!(false));
    let sub = user["sub"].as_str().unwrap().to_owned();
    let mail = sink.wait_for("bob@example.test", 1).await.remove(0);
    let link = mail.link(&format!("{}/email/verify?token=", app.base));
    assert!(mail.subject.contains("Confirm your email address"));

    let (status, page) = get(&app, &link).await;
    assert_eq!(status, 200, "{page}");
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(user["email_verified"], json!(true));
    assert_eq!(get(&app, &link).await.0, 400, "once only");

    // A changed address is unverified until its own link is used; the old link never
    // confirms the new address.
    let (status, user) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"email": "bob@elsewhere.test"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(user["email_verified"], json!(false));
    let mail = sink.wait_for("bob@elsewhere.test", 1).await.remove(0);
    let second = mail.link(&format!("{}/email/verify?token=", app.base));
    // The address changes again before the link is used: it confirms nothing.
    app.admin(
        Method::PATCH,
        &format!("/admin/users/{sub}"),
        Some(&json!({"email": "bob@third.test", "email_verified": true})),
    )
    .await;
    assert_eq!(get(&app, &second).await.0, 400);
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(user["email"], json!("bob@third.test"));

    // An operator who declares an address verified sends no mail.
    app.admin(
        Method::POST,
        "/admin/users",
        Some(&json!({"username": "carol", "password": PASSWORD, "email": "carol@example.test", "email_verified": true})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(sink.received("carol@example.test").is_empty());
}

async fn a_verification_link_expires_after_a_day(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[]).await;
    app.admin(
        Method::POST,
        "/admin/users",
        Some(&json!({"username": "bob", "password": PASSWORD, "email": "bob@example.test"})),
    )
    .await;
    let mail = sink.wait_for("bob@example.test", 1).await.remove(0);
    let link = mail.link(&format!("{}/email/verify?token=", app.base));
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(get(&app, &link).await.0, 400);
}

/// With `LATCHKEY_REQUIRE_VERIFIED_EMAIL`, a login of an unverified user stops at "check
/// your mail"; no other page, no later URL and no `prompt=none` gets past it; the link in the
/// mail lets the flow go on to the client.
async fn a_login_waits_for_a_verified_address(backend: Backend) {
    let (app, sink) =
        spawn_app_with_mail(backend, &[("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": "bob", "password": PASSWORD, "email": "bob@example.test"})),
        )
        .await;
    assert_eq!(status, 201);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid email").await;
    let step = browser.login(&login, "bob", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    let waiting = step.location.unwrap();
    assert!(
        waiting.starts_with("/email/pending?interaction="),
        "{waiting}"
    );
    let page = browser.get(&waiting).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Check your mail") && page.body.contains("b•••@example.test"));
    let interaction = query_of(&format!("http://x{waiting}"))["interaction"].clone();

    // Skipping ahead gets nothing: not the consent page, not a code, not prompt=none.
    let consent = browser
        .get(&format!("/consent?interaction={interaction}"))
        .await;
    let skipped_to = consent.location.as_deref().unwrap_or_default();
    assert!(
        consent.status == 400 || !skipped_to.starts_with(&client.redirect_uri),
        "the consent page gives nothing at this stage: {} {skipped_to}",
        consent.status
    );
    let again = browser.authorize_for(&client, "openid email").await;
    assert!(
        again
            .location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/email/pending"),
        "{:?}",
        again.location
    );
    let silent = browser
        .authorize_with(
            &client,
            "openid email",
            &[("prompt", "none"), ("state", "s")],
        )
        .await;
    let to_client = query_of(silent.location.as_deref().unwrap());
    assert_eq!(to_client["error"], "interaction_required");
    assert!(!to_client.contains_key("code"));
    // Still waiting: the page shows itself again.
    assert_eq!(browser.get(&waiting).await.status, 200);

    // Ask for the link again: a new one arrives and every earlier one stops working.
    let before = sink.wait_for("bob@example.test", 1).await.len();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let resent = browser
        .post_form(
            "/email/pending",
            &[("interaction", &interaction), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let mails = sink.wait_for("bob@example.test", before + 1).await;
    let prefix = format!("{}/email/verify?token=", app.base);
    let (newest, earlier) = mails.split_last().unwrap();
    for stale in earlier {
        assert_eq!(get(&app, &stale.link(&prefix)).await.0, 400);
    }
    assert_eq!(get(&app, &newest.link(&prefix)).await.0, 200);

    // Verified: the waiting page lets the flow go on (consent, then the code).
    let next = browser.get(&waiting).await;
    assert_eq!(next.status, 303, "{}", next.body);
    let mut location = next.location.unwrap();
    if location.starts_with("/consent") {
        let (_, answer) = browser.consent(&location, "allow").await;
        location = answer.location.unwrap();
    }
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    assert!(query_of(&location).contains_key("code"));
}

async fn a_verified_user_is_not_stopped(backend: Backend) {
    let (app, _sink) =
        spawn_app_with_mail(backend, &[("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    app.create_user("alice").await;
    let query = Browser::new(&app)
        .code_flow(&client, "openid", None, &[])
        .await;
    assert!(query.contains_key("code"));
}

/// Fills in the sign-up form of the login page `login` in `browser`.
async fn sign_up(
    browser: &Browser<'_>,
    login: &str,
    username: &str,
    email: &str,
    password: &str,
) -> Step {
    let page = browser.get(login).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let href = format!("/signup?interaction={interaction}");
    assert!(page.body.contains(&href), "the login page links sign-up");
    let form = browser.get(&href).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = hidden_field(&form.body, "csrf_token").unwrap();
    browser
        .post_form(
            "/signup",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", username),
                ("email", email),
                ("password", password),
            ],
        )
        .await
}

/// Sign-up in the middle of an authorization request: no account until the address is
/// confirmed; the link, opened in the same browser, signs the new user in and returns them
/// to the client.
async fn a_sign_up_returns_to_the_client_once_its_address_is_confirmed(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[("LATCHKEY_SIGNUP", "true")]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid email").await;
    let sent = sign_up(
        &browser,
        &login,
        "newbie",
        "newbie@example.test",
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("Almost done"));
    assert!(
        app.app
            .store
            .get_user_by_username("newbie")
            .await
            .unwrap()
            .is_none(),
        "no account before the address is confirmed"
    );
    let mail = sink.wait_for("newbie@example.test", 1).await.remove(0);
    assert!(
        mail.subject.contains("finish signing up"),
        "{}",
        mail.subject
    );
    let link = mail.link(&format!("{}/email/verify?token=", app.base));
    let opened = browser.get(&link).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let mut location = opened.location.unwrap();
    if location.starts_with("/consent") {
        let (_, answer) = browser.consent(&location, "allow").await;
        location = answer.location.unwrap();
    }
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    assert!(query_of(&location).contains_key("code"));
    let user = app
        .app
        .store
        .get_user_by_username("newbie")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.claims.email_verified, Some(true));
    assert!(
        app.app
            .passwords
            .verify(NEW_PASSWORD, Some(&user.password_hash))
            .await
            .unwrap()
    );
    // Once only.
    assert_eq!(get(&app, &link).await.0, 400);
}

/// Opened in another browser, the link creates the account but signs nobody in.
async fn a_sign_up_link_in_another_browser_only_creates_the_account(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[("LATCHKEY_SIGNUP", "true")]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    sign_up(
        &browser,
        &login,
        "newbie",
        "newbie@example.test",
        NEW_PASSWORD,
    )
    .await;
    let link = sink.wait_for("newbie@example.test", 1).await[0]
        .link(&format!("{}/email/verify?token=", app.base));
    let elsewhere = Browser::new(&app);
    let opened = elsewhere.get(&link).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(opened.body.contains("Account created"));
    assert!(elsewhere.cookie("latchkey_session").is_none());
    assert!(
        app.app
            .store
            .get_user_by_username("newbie")
            .await
            .unwrap()
            .is_some()
    );
}

/// A taken username is said so (unavoidable); an address that has an account is not: the
/// same answer, and no account, no mail.
async fn sign_up_does_not_tell_which_addresses_have_accounts(backend: Backend) {
    let (app, sink) = spawn_app_with_mail(backend, &[("LATCHKEY_SIGNUP", "true")]).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    let taken = sign_up(
        &browser,
        &login,
        "alice",
        "someone@example.test",
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(taken.status, 400);
    assert!(taken.body.contains("taken"));
    let existing = sign_up(&browser, &login, "alice2", ALICE_MAIL, NEW_PASSWORD).await;
    let fresh = sign_up(
        &browser,
        &login,
        "carol",
        "carol@example.test",
        NEW_PASSWORD,
    )
    .await;
    assert_eq!((existing.status, fresh.status), (200, 200));
    assert_eq!(existing.body, fresh.body);
    sink.wait_for("carol@example.test", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(sink.received(ALICE_MAIL).is_empty());
    assert!(
        app.app
            .store
            .get_user_by_username("alice2")
            .await
            .unwrap()
            .is_none()
    );
    // A common password or a bad address is refused before anything is sent.
    for (name, address, password, says) in [
        ("dave", "dave@example.test", "password1", "most common"),
        (
            "dave",
            "not-an-address",
            NEW_PASSWORD,
            "not an email address",
        ),
        ("", "dave@example.test", NEW_PASSWORD, "username"),
    ] {
        let refused = sign_up(&browser, &login, name, address, password).await;
        assert_eq!(refused.status, 400, "{name} {address}");
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
    }
}

async fn without_the_setting_there_is_no_sign_up(backend: Backend) {
    let (app, _sink) = spawn_app_with_mail(backend, &[]).await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let login = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&login).await;
    assert!(!page.body.contains("/signup"));
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    assert_eq!(
        browser
            .get(&format!("/signup?interaction={interaction}"))
            .await
            .status,
        404
    );
}

both_backends!(
    the_pages_around_mail_can_be_overridden,
    a_reset_ends_every_session_with_back_channel_logout_and_every_family,
    a_sign_up_returns_to_the_client_once_its_address_is_confirmed,
    a_sign_up_link_in_another_browser_only_creates_the_account,
    sign_up_does_not_tell_which_addresses_have_accounts,
    without_the_setting_there_is_no_sign_up,
    a_login_waits_for_a_verified_address,
    a_verified_user_is_not_stopped,
    a_reset_link_arrives_works_once_and_ends_every_session_and_family,
    a_reset_link_dies_when_it_expires,
    a_reset_link_dies_when_the_password_changes_another_way,
    a_newer_link_replaces_the_older_one,
    common_or_mismatched_passwords_are_refused_and_the_link_stays_usable,
    forgot_password_does_not_tell_who_exists,
    forgot_password_requests_are_bounded_per_account_and_address,
    fifty_concurrent_redemptions_on_two_nodes_have_one_winner,
    a_reset_does_not_skip_the_second_factor,
    without_smtp_there_is_no_forgot_password,
    the_login_page_links_forgot_password_keeping_the_request,
    a_german_browser_gets_german_pages_and_mail,
    a_new_address_is_verified_by_its_link,
    a_verification_link_expires_after_a_day,
);

/// An operator's `forgot.html`, `reset.html` and `notice.html` replace the built-in pages, with
/// the variables those get, and the flow works through them; an override naming a variable
/// the page does not have stops the start.
async fn the_pages_around_mail_can_be_overridden(backend: Backend) {
    let dir =
        std::env::temp_dir().join(format!("latchkey-mail-templates-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("forgot.html"),
        r#"{% extends "base.html" %}{% block content %}<h1 id="custom-forgot">{{ e.forgot_title }}</h1>
<form method="post" action="/password/forgot"><input type="hidden" name="interaction" value="{{ interaction }}">
<input name="login"><button type="submit">{{ e.forgot_button }}</button></form>{% endblock %}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("notice.html"),
        r#"{% extends "base.html" %}{% block content %}<h1 id="custom-notice">{{ title }}</h1><p>{{ message }}</p>{% if back %}<a href="{{ back }}">back</a>{% endif %}{% endblock %}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("reset.html"),
        r#"{% extends "base.html" %}{% block content %}<h1 id="custom-reset">{{ e.reset_title }}</h1>{% if error %}<p id="custom-error">{{ error }}</p>{% endif %}
<form method="post" action="/password/reset"><input type="hidden" name="token" value="{{ token }}">
<input name="password" type="password"><input name="password_confirm" type="password"><button type="submit">go</button></form>{% endblock %}"#,
    )
    .unwrap();
    let (app, sink) = spawn_app_with_mail(
        backend,
        &[("LATCHKEY_TEMPLATES_DIR", dir.to_str().unwrap())],
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    app.create_user("alice").await;
    let (status, page) = get(&app, &app.url("/password/forgot")).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"custom-forgot\""), "{page}");
    let (status, page) = forgot(&app, "alice").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"custom-notice\""), "{page}");
    let link =
        sink.wait_for(ALICE_MAIL, 1).await[0].link(&format!("{}/password/reset?token=", app.base));
    let (status, page) = get(&app, &link).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"custom-reset\""), "{page}");
    let (status, page) = set_password(&app.base, &token_of(&link), NEW_PASSWORD, "different").await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"custom-error\""), "{page}");
    let (status, page) =
        set_password(&app.base, &token_of(&link), NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"custom-notice\""), "{page}");
    assert!(password_is(&app, NEW_PASSWORD).await);

    // A variable the page does not have: the server refuses to start, naming the file.
    let broken =
        std::env::temp_dir().join(format!("latchkey-mail-templates-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("signup.html"), "{{ no_such_variable }}").unwrap();
    let result = latchkey::http::ui::overrides::Overrides::load(&broken);
    std::fs::remove_dir_all(&broken).unwrap();
    let error = result.err().expect("refused").to_string();
    assert!(error.contains("signup.html"), "{error}");
}
