//! The sessions list: device, address, started and last used (written at most once a
//! minute), a sign-out per session and one for everywhere else, each ending sessions the way
//! every logout does (their clients are notified), and never another user's session.

use reqwest::Method;
use serde_json::json;

use super::{CHROME_WINDOWS, FIREFOX_LINUX, csrf, sign_in, sign_in_to, signed_in};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, TestApp, TestClient, hidden_field, settings, spawn_app_with,
};

both_backends!(
    sessions_are_listed_with_device_address_and_last_use,
    signing_sessions_out_notifies_their_clients_and_keeps_this_one,
    another_users_session_is_refused_like_one_that_does_not_exist,
);

async fn server(backend: Backend) -> (TestApp, TestClient) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")]),
    )
    .await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    // Nothing listens there: notifications stay queued, which is all these tests look at.
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
    (app, client)
}

/// The sids that logout notifications were queued for, for `client`.
async fn notified(app: &TestApp, client: &TestClient) -> Vec<String> {
    let (status, body) = app
        .admin(
            Method::GET,
            &format!("/admin/clients/{}/logout-deliveries", client.client_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut sids: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sid"].as_str().unwrap().to_owned())
        .collect();
    sids.sort();
    sids
}

/// The last use the store holds for `sid` of the user `sub`.
async fn last_use(app: &TestApp, sub: &str, sid: &str) -> i64 {
    let sessions = app
        .app
        .store
        .list_sessions_of_user(sub, app.app.now(), 50)
        .await
        .unwrap();
    sessions.iter().find(|s| s.sid == sid).unwrap().last_used_at
}

async fn sessions_are_listed_with_device_address_and_last_use(backend: Backend) {
    let (app, client) = server(backend).await;
    let firefox = Browser::with_user_agent(&app, FIREFOX_LINUX);
    let chrome = Browser::with_user_agent(&app, CHROME_WINDOWS);
    let (chrome_sid, _) = sign_in_to(&app, &chrome, &client).await;
    let page = sign_in(&firefox, "alice").await;
    assert!(page.body.contains("Firefox, Linux"), "{}", page.body);
    assert!(page.body.contains("Chrome, Windows"));
    assert!(page.body.contains("127.0.0.1"));
    assert!(page.body.contains("This device"));
    assert_eq!(page.body.matches("This device").count(), 1);
    assert!(page.body.contains(&format!("value=\"{chrome_sid}\"")));
    // The User-Agent header itself is never stored or shown.
    assert!(!page.body.contains("AppleWebKit"));

    // Last use moves when the session is used, but at most once a minute.
    let sub = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .sub;
    let started = last_use(&app, &sub, &chrome_sid).await;
    app.clock.advance(30);
    chrome.authorize_for(&client, "openid").await;
    assert_eq!(
        last_use(&app, &sub, &chrome_sid).await,
        started,
        "within the minute"
    );
    app.clock.advance(40);
    chrome.authorize_for(&client, "openid").await;
    let used = last_use(&app, &sub, &chrome_sid).await;
    assert!(used >= started + 70, "{used} vs {started}");
    let page = firefox.get("/account").await;
    assert!(page.body.contains("Last used"));
}

async fn signing_sessions_out_notifies_their_clients_and_keeps_this_one(backend: Backend) {
    let (app, client) = server(backend).await;
    let here = Browser::with_user_agent(&app, FIREFOX_LINUX);
    let (here_sid, _) = sign_in_to(&app, &here, &client).await;
    let one = Browser::new(&app);
    let (one_sid, one_refresh) = sign_in_to(&app, &one, &client).await;
    let two = Browser::new(&app);
    let (two_sid, _) = sign_in_to(&app, &two, &client).await;
    let three = Browser::new(&app);
    let (three_sid, _) = sign_in_to(&app, &three, &client).await;
    let page = here.get("/account").await;
    assert!(page.body.contains(&format!("value=\"{one_sid}\"")));

    // One session.
    let ended = here
        .post_form(
            "/account/sessions/end",
            &[("csrf_token", &csrf(&page)), ("sid", &one_sid)],
        )
        .await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/account?done=session"));
    assert!(!signed_in(&one).await);
    assert!(signed_in(&two).await);
    assert_eq!(
        notified(&app, &client).await,
        std::slice::from_ref(&one_sid)
    );
    let page = here.get("/account?done=session").await;
    assert!(!page.body.contains(&one_sid), "no longer listed");
    assert!(page.body.contains("That session was signed out."));
    // Signing a session out is not withdrawing consent: its refresh family lives on.
    assert!(super::refresh_works(&app, &client, &one_refresh).await);
    assert_eq!(app.events("kind=logout").await.len(), 1);

    // Everywhere else.
    let ended = here
        .post_form(
            "/account/sessions/end-others",
            &[("csrf_token", &csrf(&page))],
        )
        .await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/account?done=sessions"));
    assert!(signed_in(&here).await);
    assert!(!signed_in(&two).await);
    assert!(!signed_in(&three).await);
    let mut expected = vec![one_sid, two_sid, three_sid];
    expected.sort();
    assert_eq!(notified(&app, &client).await, expected);
    assert!(!notified(&app, &client).await.contains(&here_sid));
    let events = app.events("kind=sessions_ended").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["count"], 2);
    let page = here.get("/account?done=sessions").await;
    assert!(page.body.contains("You were signed out everywhere else."));
    assert_eq!(
        page.body.matches("name=\"sid\"").count(),
        1,
        "only this one"
    );

    // This session's own button signs out here.
    let ended = here
        .post_form(
            "/account/sessions/end",
            &[("csrf_token", &csrf(&page)), ("sid", &here_sid)],
        )
        .await;
    assert_eq!(ended.status, 303);
    assert!(!signed_in(&here).await);
    assert!(notified(&app, &client).await.contains(&here_sid));
}

async fn another_users_session_is_refused_like_one_that_does_not_exist(backend: Backend) {
    let (app, client) = server(backend).await;
    let alice = Browser::new(&app);
    let page = sign_in(&alice, "alice").await;
    let bob = Browser::new(&app);
    let bob_page = sign_in(&bob, "bob").await;
    let bob_sid = hidden_field(&bob_page.body, "sid").unwrap();
    let logouts_before = app.events("kind=logout").await.len();

    let answer = |sid: String| {
        let alice = &alice;
        let token = csrf(&page);
        async move {
            alice
                .post_form(
                    "/account/sessions/end",
                    &[("csrf_token", &token), ("sid", &sid)],
                )
                .await
        }
    };
    let foreign = answer(bob_sid.clone()).await;
    let unknown = answer("no-such-session-id".to_owned()).await;
    // The same answer: nothing tells alice that bob's session exists.
    assert_eq!(foreign.status, unknown.status);
    assert_eq!(foreign.location, unknown.location);
    assert_eq!(foreign.body, unknown.body);
    assert!(signed_in(&bob).await, "bob's session lives");
    assert!(signed_in(&alice).await);
    assert_eq!(app.events("kind=logout").await.len(), logouts_before);
    assert!(notified(&app, &client).await.is_empty());
    // "Everywhere else" is only alice's everywhere.
    let ended = alice
        .post_form(
            "/account/sessions/end-others",
            &[("csrf_token", &csrf(&page))],
        )
        .await;
    assert_eq!(ended.status, 303);
    assert!(signed_in(&bob).await);
    // Bob's page never lists alice's session either.
    let bob_page = bob.get("/account").await;
    assert_eq!(bob_page.body.matches("name=\"sid\"").count(), 1);
}
