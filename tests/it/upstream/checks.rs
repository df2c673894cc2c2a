//! The relying party's checks, each against an upstream that gets exactly that one thing
//! wrong: every failure ends at the client with `access_denied` (or
//! `temporarily_unavailable`), `state` and `iss`, and nobody is signed in.

use reqwest::Method;
use serde_json::json;

use super::{FakeUpstream, Twist, spawn, upstream_flow};
use crate::both_backends;
use crate::helpers::{Backend, Browser, jwt_part, redeem};

both_backends!(
    a_login_at_an_upstream_reaches_the_client_with_idp_and_fed,
    every_relying_party_check_refuses_a_wrong_answer,
    an_unreachable_upstream_is_temporarily_unavailable,
    a_rotated_upstream_key_is_fetched_once_and_accepted,
    the_callback_needs_the_browser_that_left,
);

async fn a_login_at_an_upstream_reaches_the_client_with_idp_and_fed(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "fake", json!({"create_users": true}))
        .await;
    for via_button in [false, true] {
        let browser = Browser::new(&app);
        let outcome = upstream_flow(&browser, &client, "fake", via_button).await;
        assert_eq!(outcome.query["state"], "state-123");
        assert_eq!(outcome.query["iss"], app.base);
        let code = outcome.query.get("code").expect("a code");
        let (status, tokens) = redeem(&app, &client, code, Some(&outcome.verifier)).await;
        assert_eq!(status, 200, "{tokens}");
        let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
        assert_eq!(id_token["idp"], "fake");
        assert_eq!(id_token["amr"], json!(["fed", "pwd", "mfa"]));
        assert_eq!(id_token["nonce"], "nonce-456");
        let sub = id_token["sub"].as_str().unwrap();
        let (status, user) = app
            .admin(Method::GET, &format!("/admin/users/{sub}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            user["identities"],
            json!([{"upstream": "fake", "subject": "upstream-user-1"}])
        );
        assert_eq!(user["email"], "alice@example.com");
        assert_eq!(user["email_verified"], true);
        assert_eq!(user["name"], "Alice Upstream");
    }
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        1,
        "the second login found the same user"
    );
}

async fn every_relying_party_check_refuses_a_wrong_answer(backend: Backend) {
    let (app, client) = spawn(backend).await;
    for (i, twist) in [
        Twist::WrongIss,
        Twist::WrongAud,
        Twist::WrongNonce,
        Twist::Expired,
        Twist::BadSignature,
        Twist::WrongState,
        Twist::WrongIssParameter,
        Twist::MissingIssParameter,
        Twist::Denied,
        Twist::AzpOther,
    ]
    .into_iter()
    .enumerate()
    {
        let upstream = FakeUpstream::start(twist).await;
        let id = format!("bad{i}");
        upstream
            .register(&app, &id, json!({"create_users": true}))
            .await;
        let browser = Browser::new(&app);
        let outcome = upstream_flow(&browser, &client, &id, false).await;
        assert_eq!(
            outcome.query.get("error").map(String::as_str),
            Some("access_denied"),
            "{twist:?}: {:?}",
            outcome.query
        );
        assert!(!outcome.query.contains_key("code"), "{twist:?}");
        assert_eq!(outcome.query["state"], "state-123", "{twist:?}");
        assert_eq!(outcome.query["iss"], app.base, "{twist:?}");
        assert!(
            browser.cookie("latchkey_session").is_none(),
            "{twist:?}: nobody is signed in"
        );
        if matches!(
            twist,
            Twist::WrongState
                | Twist::WrongIssParameter
                | Twist::MissingIssParameter
                | Twist::Denied
        ) {
            assert_eq!(
                upstream.token_requests(),
                0,
                "{twist:?}: the code is never redeemed"
            );
        }
    }
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    assert!(
        users["items"].as_array().unwrap().is_empty(),
        "no user was created"
    );
    let failures = app.events("kind=upstream_login_failed").await;
    assert_eq!(failures.len(), 10);
}

async fn an_unreachable_upstream_is_temporarily_unavailable(backend: Backend) {
    let (app, client) = spawn(backend).await;
    // Registered, then gone: discovery cannot be fetched.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (status, answer) = app
        .admin(
            Method::POST,
            "/admin/upstreams",
            Some(
                &json!({"id": "gone", "display_name": "Gone", "kind": "oidc",
                "issuer": format!("http://127.0.0.1:{port}"), "client_id": "c",
                "client_secret": "s"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "s-1"), ("upstream", "gone")])
        .await;
    assert_eq!(step.status, 303, "never a 5xx page: {}", step.body);
    let q = crate::helpers::query_of(&step.location.unwrap());
    assert_eq!(q["error"], "temporarily_unavailable");
    assert_eq!(q["state"], "s-1");
    assert_eq!(q["iss"], app.base);

    // The token endpoint failing is the same answer, at the callback.
    let failing = FakeUpstream::start(Twist::TokenEndpointFails).await;
    failing
        .register(&app, "failing", json!({"create_users": true}))
        .await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "failing", false).await;
    assert_eq!(outcome.query["error"], "temporarily_unavailable");

    // An unknown upstream id is the client's mistake.
    let step = Browser::new(&app)
        .authorize_with(&client, "openid", &[("state", "s-2"), ("upstream", "nope")])
        .await;
    let q = crate::helpers::query_of(&step.location.unwrap());
    assert_eq!(q["error"], "invalid_request");
}

async fn a_rotated_upstream_key_is_fetched_once_and_accepted(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::RotatedKey).await;
    upstream
        .register(&app, "rotating", json!({"create_users": true}))
        .await;
    let outcome = upstream_flow(&Browser::new(&app), &client, "rotating", false).await;
    assert!(outcome.query.contains_key("code"), "{:?}", outcome.query);
    // A forged kid right after is refused without another fetch being allowed yet; the
    // refreshed set (both keys) keeps serving.
    let again = upstream_flow(&Browser::new(&app), &client, "rotating", false).await;
    assert!(again.query.contains_key("code"), "{:?}", again.query);
}

async fn the_callback_needs_the_browser_that_left(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "fake", json!({"create_users": true}))
        .await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "s"), ("upstream", "fake")])
        .await;
    let at_upstream = step.location.unwrap();
    assert!(at_upstream.starts_with(&upstream.base), "{at_upstream}");
    let back = browser.get(&at_upstream).await.location.unwrap();
    // Another browser (no cookies) cannot finish it.
    let thief = Browser::new(&app);
    let stolen = thief.get(&back).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    // Nor can the callback of another upstream path.
    let other = back.replace("/upstream/fake/", "/upstream/other/");
    assert_eq!(browser.get(&other).await.status, 400);
    // The browser that left can, once.
    let done = browser.get(&back).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let again = browser.get(&back).await;
    assert_ne!(again.status, 303, "the trip cookie is cleared");
}
