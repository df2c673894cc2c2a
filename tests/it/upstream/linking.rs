//! The linking rules: a linked identity is its user; `verified_email` links only an email
//! the upstream verified, to the one local user who verified it too; an unverified email
//! never links; no rule, no account.

use reqwest::Method;
use serde_json::{Value, json};

use super::{FakeUpstream, Person, Twist, spawn, upstream_flow};
use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, jwt_part, redeem};

both_backends!(
    a_verified_email_links_to_the_local_user,
    an_unverified_email_never_links,
    without_a_rule_an_unknown_identity_is_refused,
    a_shared_email_links_to_nobody,
    a_disabled_user_cannot_log_in_through_an_upstream,
);

fn person(email_verified: Value) -> Person {
    Person {
        sub: "up-7".into(),
        email: "alice@example.com".into(),
        email_verified,
        amr: vec![],
    }
}

async fn create_local(app: &crate::helpers::TestApp, username: &str, verified: bool) -> String {
    let (status, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": username, "password": PASSWORD,
                "email": "alice@example.com", "email_verified": verified})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    user["sub"].as_str().unwrap().to_owned()
}

async fn identities(app: &crate::helpers::TestApp, sub: &str) -> Value {
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    user["identities"].clone()
}

async fn a_verified_email_links_to_the_local_user(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let alice = create_local(&app, "alice", true).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.set_person(person(json!(true)));
    upstream
        .register(&app, "corp", json!({"link_existing": "verified_email"}))
        .await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    let (status, tokens) = redeem(
        &app,
        &client,
        &outcome.query["code"],
        Some(&outcome.verifier),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"],
        alice
    );
    assert_eq!(
        identities(&app, &alice).await,
        json!([{"upstream": "corp", "subject": "up-7"}])
    );
    assert_eq!(app.events("kind=identity_linked").await.len(), 1);
}

async fn an_unverified_email_never_links(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let alice = create_local(&app, "alice", true).await;
    for (i, claim) in [json!(false), json!("false"), Value::Null]
        .into_iter()
        .enumerate()
    {
        let upstream = FakeUpstream::start(Twist::None).await;
        upstream.set_person(person(claim.clone()));
        let id = format!("corp{i}");
        upstream
            .register(&app, &id, json!({"link_existing": "verified_email"}))
            .await;
        let outcome = upstream_flow(&Browser::new(&app), &client, &id, false).await;
        assert_eq!(outcome.query["error"], "access_denied", "{claim}");
    }
    assert_eq!(identities(&app, &alice).await, json!([]));

    // With create_users, the unverified identity gets a user of its own, never alice.
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.set_person(person(json!(false)));
    upstream
        .register(
            &app,
            "corp-create",
            json!({"link_existing": "verified_email", "create_users": true}),
        )
        .await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "corp-create", false).await;
    let (_, tokens) = redeem(
        &app,
        &client,
        &outcome.query["code"],
        Some(&outcome.verifier),
    )
    .await;
    let sub = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(sub, alice);
    let (_, created) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(created["email_verified"], false, "not verified here either");
    assert_eq!(identities(&app, &alice).await, json!([]));
}

async fn without_a_rule_an_unknown_identity_is_refused(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let alice = create_local(&app, "alice", true).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.set_person(person(json!(true)));
    upstream.register(&app, "corp", json!({})).await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    assert_eq!(outcome.query["error"], "access_denied");
    assert_eq!(identities(&app, &alice).await, json!([]));
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
}

async fn a_shared_email_links_to_nobody(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let alice = create_local(&app, "alice", true).await;
    let other = create_local(&app, "alice2", true).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.set_person(person(json!(true)));
    upstream
        .register(&app, "corp", json!({"link_existing": "verified_email"}))
        .await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    assert_eq!(outcome.query["error"], "access_denied");
    assert_eq!(identities(&app, &alice).await, json!([]));
    assert_eq!(identities(&app, &other).await, json!([]));
}

async fn a_disabled_user_cannot_log_in_through_an_upstream(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let alice = create_local(&app, "alice", true).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream.set_person(person(json!(true)));
    upstream
        .register(&app, "corp", json!({"link_existing": "verified_email"}))
        .await;
    let first = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    assert!(first.query.contains_key("code"));
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{alice}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let second = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    assert_eq!(second.query["error"], "access_denied");
}
