//! Races on upstream identities, fired by `RACERS` concurrent requests: the callbacks of one
//! new identity create exactly one user and one link (the loser of the insert uses the
//! winner's user), and unlinks of a user's identities never remove the last way in.

use reqwest::Method;
use serde_json::json;

use super::{FakeUpstream, Person, Twist, spawn};
use crate::both_backends;
use crate::helpers::{Backend, Browser, RACERS, fire, hidden_field};

both_backends!(
    racing_callbacks_of_a_new_identity_create_one_user,
    racing_unlinks_keep_one_way_in,
);

async fn user_count(app: &crate::helpers::TestApp) -> usize {
    let (status, users) = app.admin(Method::GET, "/admin/users?limit=200", None).await;
    assert_eq!(status, 200, "{users}");
    users["items"].as_array().unwrap().len()
}

async fn racing_callbacks_of_a_new_identity_create_one_user(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"create_users": true}))
        .await;
    let before = user_count(&app).await;
    // Every racer is a browser that went to the upstream and holds its way back.
    let mut racers = Vec::new();
    let browsers: Vec<Browser> = (0..RACERS).map(|_| Browser::new(&app)).collect();
    for browser in &browsers {
        let (_, challenge) = crate::helpers::pkce_pair();
        let step = browser
            .authorize_with(
                &client,
                "openid",
                &[
                    ("state", "s"),
                    ("nonce", "n"),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256"),
                    ("upstream", "corp"),
                ],
            )
            .await;
        assert_eq!(step.status, 303, "{}", step.body);
        let at_upstream = browser.get(&step.location.unwrap()).await;
        assert_eq!(at_upstream.status, 303, "{}", at_upstream.body);
        let back = app.url(&at_upstream.location.unwrap().replace(&app.base, ""));
        let http = browser.http.clone();
        racers.push(async move { http.get(back).send().await.unwrap().status().as_u16() });
    }
    let statuses = fire(racers).await;
    // Every callback finishes the login (to consent or the client), none fails.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 303),
        "{statuses:?}"
    );
    assert_eq!(user_count(&app).await, before + 1, "exactly one user");
    assert_eq!(app.events("kind=identity_linked").await.len(), 1);
    let linked = app.events("kind=identity_linked").await;
    let sub = linked[0]["sub"].as_str().unwrap();
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(
        user["identities"],
        json!([{"upstream": "corp", "subject": "upstream-user-1"}])
    );
}

async fn identities(app: &crate::helpers::TestApp, sub: &str) -> usize {
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    user["identities"].as_array().unwrap().len()
}

async fn racing_unlinks_keep_one_way_in(backend: Backend) {
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
    // A user created by the upstream (no password), with a second identity linked.
    let browser = Browser::new(&app);
    let outcome = super::upstream_flow(&browser, &client, "corp", false).await;
    assert!(outcome.query.contains_key("code"), "{:?}", outcome.query);
    let sub = app.events("kind=identity_linked").await[0]["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = browser.get("/account").await;
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let started = browser
        .post_form(
            "/account/identities/link",
            &[("csrf_token", &csrf), ("upstream", "other")],
        )
        .await;
    let at_upstream = browser.get(&started.location.unwrap()).await;
    let back = browser.get(&at_upstream.location.unwrap()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(identities(&app, &sub).await, 2);
    // Half the racers unlink one identity, half the other: one unlink may win, never both.
    let racers = (0..RACERS)
        .map(|i| {
            let http = browser.http.clone();
            let url = app.url("/account/identities/unlink");
            let (upstream, subject) = if i % 2 == 0 {
                ("corp", "upstream-user-1")
            } else {
                ("other", "other-7")
            };
            let form = [
                ("csrf_token", csrf.clone()),
                ("upstream", upstream.to_owned()),
                ("subject", subject.to_owned()),
            ];
            async move {
                http.post(url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .collect();
    let statuses = fire(racers).await;
    let done = statuses.iter().filter(|s| **s == 303).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!((done, refused), (1, RACERS - 1), "{statuses:?}");
    assert_eq!(identities(&app, &sub).await, 1, "one way in is left");
    assert_eq!(app.events("kind=identity_unlinked").await.len(), 1);
}
