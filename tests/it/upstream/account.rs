//! Linked sign-ins on the account page: a signed-in user links an upstream identity (a
//! CSRF-protected form, a round trip sealed for this browser and finished only in this
//! session) and unlinks it; an identity of another user is never taken; the last way to sign
//! in is never unlinked; a user the upstream created, who has no password, is offered no
//! form that asks for one.

use reqwest::Method;
use serde_json::{Value, json};

use super::{FakeUpstream, Person, Twist, spawn};
use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, Step, TestApp, hidden_field};

both_backends!(
    a_signed_in_user_links_and_unlinks_an_identity,
    a_link_needs_the_form_the_session_and_a_free_identity,
    the_last_way_to_sign_in_is_never_unlinked,
    a_user_without_a_password_is_not_asked_for_one,
);

async fn create_local(app: &TestApp, username: &str) -> String {
    let (status, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    user["sub"].as_str().unwrap().to_owned()
}

async fn identities(app: &TestApp, sub: &str) -> Value {
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    user["identities"].clone()
}

/// Signs `username` in on the account page with the password.
async fn sign_in(browser: &Browser<'_>, username: &str) {
    let page = browser.get("/account").await;
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
    assert_eq!(step.status, 303, "{}", step.body);
}

/// The account page's CSRF token (the one of its consent, passkey and identity forms).
async fn account_csrf(browser: &Browser<'_>) -> (String, String) {
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page
        .body
        .split(r#"action="/account/identities/link""#)
        .nth(1)
        .expect("a link form");
    (hidden_field(form, "csrf_token").unwrap(), page.body)
}

/// Posts the link form for `upstream`, goes through the upstream and back: the callback's
/// answer.
async fn link(browser: &Browser<'_>, csrf: &str, upstream: &str) -> Step {
    let started = browser
        .post_form(
            "/account/identities/link",
            &[("csrf_token", csrf), ("upstream", upstream)],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let at_upstream = browser.get(&started.location.unwrap()).await;
    assert_eq!(at_upstream.status, 303, "{}", at_upstream.body);
    browser.get(&at_upstream.location.unwrap()).await
}

async fn a_signed_in_user_links_and_unlinks_an_identity(backend: Backend) {
    let (app, _) = spawn(backend).await;
    let alice = create_local(&app, "alice").await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.register(&app, "corp", json!({})).await;
    let browser = Browser::new(&app);
    sign_in(&browser, "alice").await;
    let (csrf, page) = account_csrf(&browser).await;
    assert!(page.contains(r#"name="upstream" value="corp""#), "{page}");
    let back = link(&browser, &csrf, "corp").await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/account?done=linked"));
    assert_eq!(
        identities(&app, &alice).await,
        json!([{"upstream": "corp", "subject": "upstream-user-1"}])
    );
    let linked = app.events("kind=identity_linked").await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["sub"], alice.as_str());
    let (_, page) = account_csrf(&browser).await;
    assert!(page.contains("upstream-user-1"), "the page lists it");
    // Linking it again changes nothing.
    let again = link(&browser, &csrf, "corp").await;
    assert_eq!(again.location.as_deref(), Some("/account?done=linked"));
    assert_eq!(app.events("kind=identity_linked").await.len(), 1);
    // Now alice signs in through the upstream, without a linking rule.
    let client = crate::helpers::TestClient::from_registration(&app.create_web_client().await);
    let outcome = super::upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    let (status, tokens) = crate::helpers::redeem(
        &app,
        &client,
        &outcome.query["code"],
        Some(&outcome.verifier),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        crate::helpers::jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"],
        alice.as_str()
    );
    // Unlinking: with a password, the identity may go.
    let unlinked = browser
        .post_form(
            "/account/identities/unlink",
            &[
                ("csrf_token", &csrf),
                ("upstream", "corp"),
                ("subject", "upstream-user-1"),
            ],
        )
        .await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    assert_eq!(identities(&app, &alice).await, json!([]));
    assert_eq!(app.events("kind=identity_unlinked").await.len(), 1);
}

async fn a_link_needs_the_form_the_session_and_a_free_identity(backend: Backend) {
    let (app, _) = spawn(backend).await;
    let alice = create_local(&app, "alice").await;
    let bob = create_local(&app, "bob").await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.register(&app, "corp", json!({})).await;
    let browser = Browser::new(&app);
    sign_in(&browser, "alice").await;
    let (csrf, _) = account_csrf(&browser).await;
    // A forged form (no or another session's token) goes nowhere.
    for token in ["", "forged", csrf.as_str()] {
        let other = Browser::new(&app);
        sign_in(&other, "bob").await;
        let forged = other
            .post_form(
                "/account/identities/link",
                &[("csrf_token", token), ("upstream", "corp")],
            )
            .await;
        let to = forged.location.unwrap_or_default();
        assert!(!to.contains("/authorize"), "{token}: went upstream: {to}");
    }
    // Without a session, the form leads to the sign-in page.
    let anonymous = Browser::new(&app);
    let refused = anonymous
        .post_form(
            "/account/identities/link",
            &[("csrf_token", &csrf), ("upstream", "corp")],
        )
        .await;
    assert_eq!(refused.location.as_deref(), Some("/account"));
    // A round trip finishes only in the session that started it: when that session ends on
    // the way (an operator ends alice's sessions), the callback links nothing.
    let started = browser
        .post_form(
            "/account/identities/link",
            &[("csrf_token", &csrf), ("upstream", "corp")],
        )
        .await;
    let at_upstream = browser.get(&started.location.unwrap()).await;
    let (status, _) = app
        .admin(
            Method::DELETE,
            &format!("/admin/users/{alice}/sessions"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let late = browser.get(&at_upstream.location.unwrap()).await;
    assert_ne!(
        late.location.as_deref(),
        Some("/account?done=linked"),
        "{}",
        late.body
    );
    assert_eq!(identities(&app, &alice).await, json!([]));
    sign_in(&browser, "alice").await;
    // Bob links the identity; alice cannot take it.
    let bobs = Browser::new(&app);
    sign_in(&bobs, "bob").await;
    let (bob_csrf, _) = account_csrf(&bobs).await;
    let linked = link(&bobs, &bob_csrf, "corp").await;
    assert_eq!(linked.location.as_deref(), Some("/account?done=linked"));
    let (csrf, _) = account_csrf(&browser).await;
    let taken = link(&browser, &csrf, "corp").await;
    assert_eq!(taken.status, 400, "{}", taken.body);
    assert!(taken.body.contains("another account"), "{}", taken.body);
    assert_eq!(identities(&app, &alice).await, json!([]));
    assert_eq!(
        identities(&app, &bob).await,
        json!([{"upstream": "corp", "subject": "upstream-user-1"}])
    );
    // Nor unlink it from bob: the same answer as for no link at all.
    let theirs = browser
        .post_form(
            "/account/identities/unlink",
            &[
                ("csrf_token", &csrf),
                ("upstream", "corp"),
                ("subject", "upstream-user-1"),
            ],
        )
        .await;
    let nobody = browser
        .post_form(
            "/account/identities/unlink",
            &[
                ("csrf_token", &csrf),
                ("upstream", "corp"),
                ("subject", "nobody"),
            ],
        )
        .await;
    assert_eq!(theirs.status, 400);
    assert_eq!(theirs.body, nobody.body, "nothing tells whose it is");
    assert_eq!(identities(&app, &bob).await.as_array().unwrap().len(), 1);
}

async fn the_last_way_to_sign_in_is_never_unlinked(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"create_users": true}))
        .await;
    let other = FakeUpstream::start(Twist::None).await;
    other.set_person(Person {
        sub: "other-7".into(),
        email: "someone@example.com".into(),
        email_verified: json!(true),
        amr: vec![],
    });
    other.register(&app, "other", json!({})).await;
    // A user created by the upstream: no password. The login leaves a session.
    let browser = Browser::new(&app);
    let outcome = super::upstream_flow(&browser, &client, "corp", false).await;
    assert!(outcome.query.contains_key("code"), "{:?}", outcome.query);
    let sub = app.events("kind=identity_linked").await[0]["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let (csrf, _) = account_csrf(&browser).await;
    let unlink = |subject: &'static str, upstream: &'static str| {
        let csrf = csrf.clone();
        let browser = &browser;
        async move {
            browser
                .post_form(
                    "/account/identities/unlink",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("upstream", upstream),
                        ("subject", subject),
                    ],
                )
                .await
        }
    };
    let refused = unlink("upstream-user-1", "corp").await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("only way to sign in"),
        "{}",
        refused.body
    );
    assert_eq!(identities(&app, &sub).await.as_array().unwrap().len(), 1);
    // With a second identity linked, the first may go, and then the second may not.
    let linked = link(&browser, &csrf, "other").await;
    assert_eq!(
        linked.location.as_deref(),
        Some("/account?done=linked"),
        "{}",
        linked.body
    );
    let done = unlink("upstream-user-1", "corp").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let last = unlink("other-7", "other").await;
    assert_eq!(last.status, 400, "{}", last.body);
    assert_eq!(
        identities(&app, &sub).await,
        json!([{"upstream": "other", "subject": "other-7"}])
    );
}

async fn a_user_without_a_password_is_not_asked_for_one(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"create_users": true}))
        .await;
    let browser = Browser::new(&app);
    let outcome = super::upstream_flow(&browser, &client, "corp", false).await;
    assert!(outcome.query.contains_key("code"), "{:?}", outcome.query);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains(r#"action="/account/password""#),
        "no password form for a user without one: {}",
        page.body
    );
    assert!(
        page.body.contains("Your account has no password"),
        "{}",
        page.body
    );
    // The form posted anyway (an old page, a script) is refused without counting a guess.
    let csrf = hidden_field(
        page.body
            .split(r#"action="/account/sessions/end""#)
            .nth(1)
            .expect("a session form"),
        "csrf_token",
    )
    .unwrap();
    for _ in 0..3 {
        let refused = browser
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("current_password", "anything at all"),
                    ("password", "a brand new passphrase 42"),
                ],
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("Your account has no password"),
            "{}",
            refused.body
        );
    }
    assert!(app.events("kind=login_failed").await.is_empty());
    assert!(app.events("kind=password_changed").await.is_empty());
}
