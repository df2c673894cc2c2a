//! The account page's forms act only for the session and the page they were made for: a
//! browser without a session, with another session's form, or whose session lacks the
//! second factor its user now has, gets nothing they guard.

use reqwest::Method;

use super::{csrf, sign_in, signed_in};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, MailSink, PASSWORD, TestApp, hidden_field, spawn_app_with_mail,
};

both_backends!(
    account_forms_without_a_session_do_nothing,
    a_form_works_only_in_the_session_it_was_made_for,
    a_session_without_the_users_second_factor_gets_nothing_the_page_guards,
);

/// The account page's POSTs, each with the fields it acts on (and `csrf_token` added).
const FORMS: [(&str, &[(&str, &str)]); 5] = [
    (
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("password", "a brand new password"),
        ],
    ),
    ("/account/profile", &[("name", "Mallory")]),
    (
        "/account/email",
        &[
            ("email", "mallory@example.test"),
            ("current_password", PASSWORD),
        ],
    ),
    ("/account/sessions/end", &[("sid", "")]),
    ("/account/sessions/end-others", &[]),
];

/// A server with every form of the page on (the email section needs mail); the sink must
/// live as long as the server.
async fn server(backend: Backend) -> (TestApp, MailSink) {
    let (app, sink) = spawn_app_with_mail(
        backend,
        &[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", "name,email")],
    )
    .await;
    app.create_user("alice").await;
    (app, sink)
}

/// Posts every form with `token`, naming the session `sid` where a form names one.
async fn post_all(browser: &Browser<'_>, token: &str, sid: &str) -> Vec<(u16, Option<String>)> {
    let mut answers = Vec::new();
    for (path, fields) in FORMS {
        let mut form = vec![("csrf_token", token)];
        for &(name, value) in fields {
            form.push((name, if name == "sid" { sid } else { value }));
        }
        let step = browser.post_form(path, &form).await;
        answers.push((step.status, step.location));
    }
    answers
}

/// What the forms guard is as it was: the password, the name, the address, the other session.
async fn nothing_changed(app: &TestApp, other: &Browser<'_>) {
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    let user = &users["items"][0];
    assert_eq!(user["name"], "alice Example");
    assert_eq!(user["email"], "alice@example.test");
    let stored = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.app
            .passwords
            .verify(PASSWORD, Some(&stored.password_hash))
            .await
            .unwrap()
    );
    assert!(signed_in(other).await, "the other session lives");
    assert!(app.events("kind=password_changed").await.is_empty());
    assert!(app.events("kind=sessions_ended").await.is_empty());
}

async fn account_forms_without_a_session_do_nothing(backend: Backend) {
    let (app, _sink) = server(backend).await;
    let other = Browser::new(&app);
    let page = sign_in(&other, "alice").await;
    let sid = hidden_field(&page.body, "sid").unwrap();
    // A browser with no session at all, even holding a real form's token: back to the page
    // (which asks to sign in).
    let stranger = Browser::new(&app);
    for answer in post_all(&stranger, &csrf(&page), &sid).await {
        assert_eq!(answer, (303, Some("/account".to_owned())));
    }
    nothing_changed(&app, &other).await;
}

async fn a_form_works_only_in_the_session_it_was_made_for(backend: Backend) {
    let (app, _sink) = server(backend).await;
    let other = Browser::new(&app);
    let other_page = sign_in(&other, "alice").await;
    let other_sid = hidden_field(&other_page.body, "sid").unwrap();
    // Alice's second browser posts the first one's forms (or forged ones): expired.
    let here = Browser::new(&app);
    sign_in(&here, "alice").await;
    for token in [csrf(&other_page), "forged".to_owned(), String::new()] {
        for (status, _) in post_all(&here, &token, &other_sid).await {
            assert_eq!(status, 400);
        }
    }
    nothing_changed(&app, &other).await;
}

async fn a_session_without_the_users_second_factor_gets_nothing_the_page_guards(backend: Backend) {
    let (app, _sink) = server(backend).await;
    let other = Browser::new(&app);
    let other_page = sign_in(&other, "alice").await;
    let other_sid = hidden_field(&other_page.body, "sid").unwrap();
    // A password-only session loads the page while alice has no second factor...
    let here = Browser::new(&app);
    let page = sign_in(&here, "alice").await;
    // ...then she gets one: the session (and its form) now lacks it.
    let sub = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .sub;
    let (status, _) = app
        .admin(Method::POST, &format!("/admin/users/{sub}/totp"), None)
        .await;
    assert_eq!(status, 201);
    let asked = here.get("/account").await;
    assert!(
        asked.body.contains("action=\"/account/otp\""),
        "the page asks for the factor first"
    );
    for answer in post_all(&here, &csrf(&page), &other_sid).await {
        assert_eq!(answer, (303, Some("/account".to_owned())));
    }
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(users["items"][0]["name"], "alice Example");
    let stored = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.app
            .passwords
            .verify(PASSWORD, Some(&stored.password_hash))
            .await
            .unwrap()
    );
    // The other session lives (it lacks the factor too, so its page asks for it, but it
    // was not ended).
    let sessions = app
        .app
        .store
        .list_sessions_of_user(&sub, app.app.now(), 10)
        .await
        .unwrap();
    assert!(sessions.iter().any(|s| s.sid == other_sid));
    assert!(app.events("kind=password_changed").await.is_empty());
}
