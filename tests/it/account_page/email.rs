//! The email address on the account page (`email` in `LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`):
//! the current password is required; a change stores the address unverified and mails a
//! link to it, which verifies it once (not when reused, expired, or after another change;
//! of fifty racing redemptions exactly one); changes are throttled per account; without
//! the setting there is no such form.

use reqwest::Method;
use serde_json::{Value, json};

use super::{csrf, sign_in};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, MailSink, PASSWORD, Step, TestApp, fire, hidden_field, spawn_app_with_alice,
    spawn_app_with_mail,
};

both_backends!(
    a_changed_address_is_unverified_until_its_link_is_followed_once,
    a_wrong_password_or_a_bad_address_changes_nothing,
    an_expired_link_verifies_nothing,
    a_link_for_an_address_changed_since_verifies_nothing,
    fifty_racing_redemptions_of_a_link_verify_once,
    racing_changes_get_exactly_the_free_changes,
    someone_elses_address_typed_into_an_account_does_not_take_its_reset,
    without_the_setting_there_is_no_email_form,
);

const NEW: &str = "alice@new.example.test";

async fn server(backend: Backend) -> (TestApp, MailSink, String) {
    let (app, sink) = spawn_app_with_mail(
        backend,
        &[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", "name,email")],
    )
    .await;
    let user = app.create_user("alice").await;
    (app, sink, user["sub"].as_str().unwrap().to_owned())
}

async fn change(browser: &Browser<'_>, token: &str, email: &str, password: &str) -> Step {
    browser
        .post_form(
            "/account/email",
            &[
                ("csrf_token", token),
                ("email", email),
                ("current_password", password),
            ],
        )
        .await
}

async fn user(app: &TestApp, sub: &str) -> Value {
    let (status, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(status, 200, "{user}");
    user
}

fn verify_link(app: &TestApp, sink: &MailSink, to: &str, nth: usize) -> String {
    let mails = sink.received(to);
    mails[nth - 1].link(&format!("{}/email/verify?token=", app.base))
}

async fn get_status(app: &TestApp, url: &str) -> u16 {
    app.http.get(url).send().await.unwrap().status().as_u16()
}

async fn a_changed_address_is_unverified_until_its_link_is_followed_once(backend: Backend) {
    let (app, sink, sub) = server(backend).await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    assert!(page.body.contains("id=\"email\""), "{}", page.body);
    assert!(page.body.contains("alice@example.test"));
    assert!(page.body.contains("autocomplete=\"email\""));

    let step = change(&browser, &csrf(&page), &format!("  {NEW} "), PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert_eq!(step.location.as_deref(), Some("/account?done=email"));
    let stored = user(&app, &sub).await;
    assert_eq!(stored["email"], json!(NEW));
    assert_eq!(stored["email_verified"], json!(false));
    let page = browser.get("/account?done=email").await;
    assert!(page.body.contains("not verified yet"), "{}", page.body);
    assert!(page.body.contains("A link is on its way"));

    sink.wait_for(NEW, 1).await;
    let link = verify_link(&app, &sink, NEW, 1);
    // The previous (verified) address is told, with the new address and the account page,
    // and no link that verifies anything.
    let told = sink.wait_for("alice@example.test", 1).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].subject.contains("Your email address was changed"),
        "{told:?}"
    );
    assert!(told[0].text.contains(NEW), "{}", told[0].text);
    assert!(
        told[0].text.contains(&format!("{}/account", app.base)),
        "{}",
        told[0].text
    );
    assert!(!told[0].text.contains("token="), "{}", told[0].text);
    assert_eq!(get_status(&app, &link).await, 200);
    assert_eq!(user(&app, &sub).await["email_verified"], json!(true));
    // A reused link fails and changes nothing.
    assert_eq!(get_status(&app, &link).await, 400);
    assert_eq!(user(&app, &sub).await["email_verified"], json!(true));

    // The verified address again: nothing to do, no mail.
    let step = change(&browser, &csrf(&page), NEW, PASSWORD).await;
    assert_eq!(
        step.location.as_deref(),
        Some("/account?done=email-unchanged")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(sink.received(NEW).len(), 1);
}

async fn a_wrong_password_or_a_bad_address_changes_nothing(backend: Backend) {
    let (app, sink, sub) = server(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);

    let step = change(&browser, &token, NEW, "not the password").await;
    assert_eq!(step.status, 401, "{}", step.body);
    // The message sits next to the email form's password field, which keeps what was typed.
    assert!(
        step.body.contains("id=\"email-password-error\""),
        "{}",
        step.body
    );
    assert!(step.body.contains("The current password is incorrect."));
    assert!(step.body.contains(&format!("value=\"{NEW}\"")));
    assert!(!step.body.contains("id=\"current-password-error\""));

    for bad in ["", "not an address", "alice@", "a b@example.test"] {
        let step = change(&browser, &token, bad, PASSWORD).await;
        assert_eq!(step.status, 400, "{bad}: {}", step.body);
        assert!(step.body.contains("id=\"new-email-error\""), "{bad}");
    }
    // A foreign form (no CSRF token of this session) is refused before anything.
    let step = change(&browser, "forged", NEW, PASSWORD).await;
    assert_ne!(step.status, 303);

    let stored = user(&app, &sub).await;
    assert_eq!(stored["email"], json!("alice@example.test"));
    assert_eq!(stored["email_verified"], json!(true));
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(sink.received(NEW).is_empty());
}

async fn an_expired_link_verifies_nothing(backend: Backend) {
    let (app, sink, sub) = server(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);
    assert_eq!(change(&browser, &token, NEW, PASSWORD).await.status, 303);
    sink.wait_for(NEW, 1).await;
    let link = verify_link(&app, &sink, NEW, 1);
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(get_status(&app, &link).await, 400);
    assert_eq!(user(&app, &sub).await["email_verified"], json!(false));
}

/// The address changes again before the first link is used: the first link confirms
/// nothing (it was replaced, and its address is no longer the user's); the second does.
async fn a_link_for_an_address_changed_since_verifies_nothing(backend: Backend) {
    let (app, sink, sub) = server(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);
    assert_eq!(change(&browser, &token, NEW, PASSWORD).await.status, 303);
    sink.wait_for(NEW, 1).await;
    let first = verify_link(&app, &sink, NEW, 1);
    let other = "alice@other.example.test";
    assert_eq!(change(&browser, &token, other, PASSWORD).await.status, 303);
    sink.wait_for(other, 1).await;
    let second = verify_link(&app, &sink, other, 1);
    assert_eq!(get_status(&app, &first).await, 400);
    assert_eq!(user(&app, &sub).await["email_verified"], json!(false));
    assert_eq!(get_status(&app, &second).await, 200);
    let stored = user(&app, &sub).await;
    assert_eq!(
        (stored["email"].clone(), stored["email_verified"].clone()),
        (json!(other), json!(true))
    );
}

async fn fifty_racing_redemptions_of_a_link_verify_once(backend: Backend) {
    const RACERS: usize = 50;
    let (app, sink, sub) = server(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);
    assert_eq!(change(&browser, &token, NEW, PASSWORD).await.status, 303);
    sink.wait_for(NEW, 1).await;
    let link = verify_link(&app, &sink, NEW, 1);
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let http = app.http.clone();
            let link = link.clone();
            async move { http.get(link).send().await.unwrap().status().as_u16() }
        })
        .collect();
    let statuses = fire(racers).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        RACERS - 1,
        "{statuses:?}"
    );
    assert_eq!(user(&app, &sub).await["email_verified"], json!(true));
}

/// Fifty changes at once from one session, each to its own address: exactly the three free
/// changes of an hour go through, and the fourth, whose count starts the back-off (as every
/// throttle of `accounts::throttle` counts); each mails its address. The rest are told to
/// wait.
async fn racing_changes_get_exactly_the_free_changes(backend: Backend) {
    const RACERS: usize = 50;
    // `EMAIL_CHANGE.free`, and the attempt that starts the back-off.
    const ADMITTED: usize = 3 + 1;
    let (app, sink, _) = server(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);
    app.clock.freeze_at(app.app.now());
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let http = browser.http.clone();
            let url = app.url("/account/email");
            let token = token.clone();
            async move {
                let address = format!("alice{i}@example.test");
                let answer = http
                    .post(url)
                    .form(&[
                        ("csrf_token", token.as_str()),
                        ("email", address.as_str()),
                        ("current_password", PASSWORD),
                    ])
                    .send()
                    .await
                    .unwrap();
                (answer.status().as_u16(), address)
            }
        })
        .collect();
    let answers = fire(racers).await;
    let changed: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 303)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(changed.len(), ADMITTED, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 429).count(),
        RACERS - ADMITTED,
        "{answers:?}"
    );
    for address in changed {
        sink.wait_for(address, 1).await;
    }
    // A throttled answer says so next to the address field, and how long to wait.
    let step = change(&browser, &token, "late@example.test", PASSWORD).await;
    assert_eq!(step.status, 429);
    assert!(step.headers.contains_key("retry-after"));
    assert!(step.body.contains("id=\"new-email-error\""));
}

/// Bob types alice's address into his own account (he cannot verify it, but it is stored,
/// unverified). Alice's "Forgot password?" by address still reaches her account: of the
/// accounts with that address, hers is the one that verified it.
async fn someone_elses_address_typed_into_an_account_does_not_take_its_reset(backend: Backend) {
    let (app, sink, alice) = server(backend).await;
    app.create_user("bob").await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "bob").await);
    let step = change(&browser, &token, "ALICE@example.test", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    // Bob's verification link went to alice's mailbox; she ignores it.
    sink.wait_for("alice@example.test", 1).await;

    let answer = app
        .http
        .post(app.url("/password/forgot"))
        .form(&[("login", "alice@example.test")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mails = sink.wait_for("alice@example.test", 2).await;
    let reset = mails
        .iter()
        .find(|m| m.subject.contains("Reset your password"))
        .expect("a reset mail");
    assert!(reset.text.contains("alice"), "{}", reset.text);
    assert!(!reset.text.contains("bob"), "{}", reset.text);
    let link = reset.link(&format!("{}/password/reset?token=", app.base));
    let token = crate::helpers::query_of(&link)["token"].clone();
    let new = "umbrella quinoa trombone";
    let answer = app
        .http
        .post(app.url("/password/reset"))
        .form(&[
            ("token", token.as_str()),
            ("password", new),
            ("password_confirm", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let stored = app.app.store.get_user(&alice).await.unwrap().unwrap();
    assert!(
        app.app
            .passwords
            .verify(new, Some(&stored.password_hash))
            .await
            .unwrap()
    );
}

async fn without_the_setting_there_is_no_email_form(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    assert!(!page.body.contains("action=\"/account/email\""));
    let token = hidden_field(&page.body, "csrf_token").unwrap();
    let step = change(&browser, &token, NEW, PASSWORD).await;
    assert_eq!(step.status, 404);
}
