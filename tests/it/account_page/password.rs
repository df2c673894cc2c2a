//! The password change: the current password is required and throttled like a login; a
//! change ends every other session and every refresh family, and keeps this session.

use super::{csrf, refresh_works, sign_in, sign_in_to, signed_in};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, TestApp, TestClient, fire, spawn_app, spawn_app_with_alice,
    spawn_node,
};

both_backends!(
    a_password_change_needs_the_current_password_and_ends_everything_else,
    a_guessable_new_password_is_refused_like_at_sign_up_and_reset,
    refusals_are_shown_in_german_next_to_their_field,
    racing_wrong_current_passwords_get_exactly_the_free_attempts,
    racing_changes_with_the_right_password_change_it_once,
);

/// Posts the password form of `browser`'s account page (its CSRF token `token`).
async fn change(
    browser: &Browser<'_>,
    token: &str,
    current: &str,
    new: &str,
) -> crate::helpers::Step {
    browser
        .post_form(
            "/account/password",
            &[
                ("csrf_token", token),
                ("current_password", current),
                ("password", new),
            ],
        )
        .await
}

/// Whether `password` signs alice in (on a fresh browser).
async fn password_works(app: &TestApp, password: &str) -> bool {
    let browser = Browser::new(app);
    let page = browser.get("/account").await;
    let step = browser
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf(&page)),
                ("username", "alice"),
                ("password", password),
            ],
        )
        .await;
    step.status == 303
}

async fn a_password_change_needs_the_current_password_and_ends_everything_else(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let here = Browser::new(&app);
    let page = sign_in(&here, "alice").await;
    let token = csrf(&page);
    let elsewhere = Browser::new(&app);
    sign_in(&elsewhere, "alice").await;
    let (_, refresh) = sign_in_to(&app, &Browser::new(&app), &client).await;

    // A wrong current password: refused next to the field, nothing changes.
    let wrong = change(
        &here,
        &token,
        "not my password",
        "a brand new lantern quartet",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The current password is incorrect."));
    assert!(
        wrong
            .body
            .contains("aria-describedby=\"current-password-error\""),
        "{}",
        wrong.body
    );
    // A new password against the policy, or the same as now: refused, and the current one
    // is not looked at (no guess is counted for them).
    let short = change(&here, &token, "not my password either", "short").await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 8 characters"));
    let same = change(&here, &token, PASSWORD, PASSWORD).await;
    assert_eq!(same.status, 400);
    assert!(same.body.contains("must differ"));
    assert_eq!(
        app.events("kind=login_failed").await.len(),
        1,
        "one guess counted"
    );
    assert!(signed_in(&elsewhere).await);
    assert!(refresh_works(&app, &client, &refresh).await);
    assert!(app.events("kind=password_changed").await.is_empty());

    let done = change(&here, &token, PASSWORD, "a brand new lantern quartet").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=password"));
    let page = here.get("/account?done=password").await;
    assert!(
        page.body.contains("Your password was changed."),
        "{}",
        page.body
    );
    // This session stays; the other one and every refresh family end.
    assert!(signed_in(&here).await);
    assert!(!signed_in(&elsewhere).await);
    assert!(!refresh_works(&app, &client, &refresh).await);
    assert!(!password_works(&app, PASSWORD).await);
    assert!(password_works(&app, "a brand new lantern quartet").await);
    let events = app.events("kind=password_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["by"], "user");
    // The old password no longer changes anything.
    let again = change(&here, &token, PASSWORD, "yet another unusual passphrase").await;
    assert_eq!(again.status, 401);
}

/// The account page applies the policy of every password a person chooses
/// (`password_policy`): the common ones and those made from the user's own name are refused
/// next to the new password's field, before the current password is looked at.
async fn a_guessable_new_password_is_refused_like_at_sign_up_and_reset(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let here = Browser::new(&app);
    let token = csrf(&sign_in(&here, "alice").await);
    for guessable in ["password123", "iloveyou1", "alice2024", "qwertyuiop"] {
        let refused = change(&here, &token, "not even the password", guessable).await;
        assert_eq!(refused.status, 400, "{guessable}");
        assert!(
            refused.body.contains("too easy to guess"),
            "{guessable}: {}",
            refused.body
        );
        assert!(refused.body.contains("id=\"new-password-error\""));
        assert!(
            refused
                .body
                .contains("aria-describedby=\"password-hint new-password-error\"")
        );
        assert!(!refused.body.contains("id=\"current-password-error\""));
    }
    // None of them counted as a guess of the current password, and none was set.
    assert!(app.events("kind=login_failed").await.is_empty());
    assert!(password_works(&app, PASSWORD).await);
    let done = change(&here, &token, PASSWORD, "umbrella quinoa trombone").await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// A browser that chose German gets the page's refusals in German, each next to the field
/// it concerns.
async fn refusals_are_shown_in_german_next_to_their_field(backend: Backend) {
    let (app, _) = spawn_app_with_alice(backend).await;
    let here = Browser::new(&app);
    let token = csrf(&sign_in(&here, "alice").await);
    let switched = here.get("/language?lang=de&return=/account").await;
    assert_eq!(switched.status, 303);
    let page = here.get("/account").await;
    assert!(page.body.contains("Passwort ändern"), "{}", page.body);

    let wrong = change(
        &here,
        &token,
        "nicht mein Passwort",
        "umbrella quinoa trombone",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let field = wrong.body.find("id=\"current_password\"").unwrap();
    let error = wrong
        .body
        .find("<p class=\"field-error\" id=\"current-password-error\"")
        .unwrap();
    let next_field = wrong.body.find("id=\"new-password\"").unwrap();
    assert!(field < error && error < next_field, "{}", wrong.body);
    assert!(wrong.body.contains("Das aktuelle Passwort ist falsch."));

    let weak = change(&here, &token, PASSWORD, "password1").await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("zu leicht zu erraten"), "{}", weak.body);
    let short = change(&here, &token, PASSWORD, "kurz").await;
    assert!(
        short.body.contains("mindestens 8 Zeichen"),
        "{}",
        short.body
    );
    let same = change(&here, &token, PASSWORD, PASSWORD).await;
    assert!(same.body.contains("muss sich vom aktuellen unterscheiden"));

    // The browser's Accept-Language alone is enough too.
    let other = Browser::new(&app);
    let token = csrf(&sign_in(&other, "alice").await);
    let answer = other
        .http
        .post(app.url("/account/password"))
        .header("accept-language", "de-DE,de;q=0.9,en;q=0.5")
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", "falsch"),
            ("password", "umbrella quinoa trombone"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("Das aktuelle Passwort ist falsch.")
    );
}

/// The two layouts of a race: every racer on one node, or alternately on two.
async fn layouts(backend: Backend) -> Vec<(TestApp, Option<TestApp>)> {
    let one = spawn_app(backend).await;
    let two = spawn_app(backend).await;
    let second = spawn_node(&two).await;
    vec![(one, None), (two, Some(second))]
}

/// Stops every node's clock at one second, so that a one-second back-off cannot run out in
/// the middle of a burst.
fn freeze(first: &TestApp, second: Option<&TestApp>) {
    let now = latchkey::clock::Clock::now(&latchkey::clock::SystemClock);
    first.clock.freeze_at(now);
    if let Some(second) = second {
        second.clock.freeze_at(now);
    }
}

/// Fifty wrong current passwords at once, in one signed-in session: the login throttle's
/// five free attempts and the sixth (which locks the account) are checked, the other 44 are
/// refused before any hash, and the right password right after the burst is refused too,
/// on the form and at the login. The form is no way around the login throttle.
async fn racing_wrong_current_passwords_get_exactly_the_free_attempts(backend: Backend) {
    const RACERS: usize = 50;
    for (first, second) in layouts(backend).await {
        first.create_user("alice").await;
        let browser = Browser::new(&first);
        let token = csrf(&sign_in(&browser, "alice").await);
        freeze(&first, second.as_ref());
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let base = match (&second, i % 2) {
                    (Some(node), 1) => node.base.clone(),
                    _ => first.base.clone(),
                };
                let http = browser.http.clone();
                let token = token.clone();
                async move {
                    http.post(format!("{base}/account/password"))
                        .form(&[
                            ("csrf_token", token.as_str()),
                            ("current_password", "a wrong guess"),
                            ("password", "a brand new lantern quartet"),
                        ])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            })
            .collect();
        let statuses = fire(racers).await;
        let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
        assert_eq!(count(401), 6, "checked: {statuses:?}");
        assert_eq!(count(429), RACERS - 6, "refused: {statuses:?}");
        let right = change(&browser, &token, PASSWORD, "a brand new lantern quartet").await;
        assert_eq!(right.status, 429, "the lock holds on the form");
        assert!(right.headers.contains_key("retry-after"));
        assert!(!password_works(&first, PASSWORD).await, "and at the login");
        assert_eq!(first.events("kind=login_failed&limit=100").await.len(), 6);
        assert!(first.events("kind=password_changed").await.is_empty());
    }
}

/// Fifty changes at once, all with the right current password: exactly one wins, and the
/// stored password is the winner's; every other is refused (the current password it proved
/// is no longer current, or the throttle stopped it first).
async fn racing_changes_with_the_right_password_change_it_once(backend: Backend) {
    const RACERS: usize = 50;
    let (app, _client): (TestApp, TestClient) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let token = csrf(&sign_in(&browser, "alice").await);
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let http = browser.http.clone();
            let url = app.url("/account/password");
            let token = token.clone();
            async move {
                let new = format!("lantern quartet oboe number {i:02}");
                let status = http
                    .post(url)
                    .form(&[
                        ("csrf_token", token.as_str()),
                        ("current_password", PASSWORD),
                        ("password", new.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                (status, new)
            }
        })
        .collect();
    let answers = fire(racers).await;
    let winners: Vec<_> = answers.iter().filter(|(s, _)| *s == 303).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| [303, 401, 429].contains(s)),
        "{answers:?}"
    );
    assert_eq!(app.events("kind=password_changed").await.len(), 1);
    let user = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.app
            .passwords
            .verify(&winners[0].1, Some(&user.password_hash))
            .await
            .unwrap(),
        "the stored password is the winner's"
    );
    assert!(
        signed_in(&browser).await,
        "the session it was made in stays"
    );
}
