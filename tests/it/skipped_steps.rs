//! Every path is a test: a browser that skips a page of a pending interaction, or jumps to a
//! later URL of the flow, gets nothing the skipped page would have guarded. `/authorize`
//! seals what the interaction still owes (a login, or a consent in one given session), and
//! the pages and the final write enforce it: even a consent answer carrying a valid CSRF
//! token (computed here with the server's own key, as an attacker with the source could not)
//! issues no code while a login is owed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, Step, TestApp, TestClient, authorize_params, code_form,
    hidden_field, query_of, spawn_app, spawn_app_with_alice,
};

both_backends!(
    consent_cannot_complete_a_request_that_owes_a_login,
    first_party_clients_never_see_the_consent_page,
    consent_is_asked_only_of_the_session_it_was_decided_for,
    the_forced_password_change_needs_a_live_ticket,
    pages_refuse_interactions_they_did_not_issue,
    an_interaction_ends_when_its_redirect_uri_is_removed,
);

/// `spawn_app_with_alice`, and the user bob.
async fn setup(backend: Backend) -> (TestApp, TestClient) {
    let (app, client) = spawn_app_with_alice(backend).await;
    app.create_user("bob").await;
    (app, client)
}

/// The request every test here starts: the usual one for `openid`, with `state`, then `extra`.
fn skip_params<'a>(
    client: &'a TestClient,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = authorize_params(client, "openid", &[("state", "skip")]);
    params.extend_from_slice(extra);
    params
}

/// The interaction of a `/login?interaction=…` or `/consent?interaction=…` location.
fn interaction_of(location: &str) -> String {
    query_of(&format!("http://x{location}"))["interaction"].clone()
}

/// The consent form's CSRF token for `interaction` in `browser` as the server computes it:
/// a valid one, which only someone holding the server's key could make.
fn valid_consent_csrf(app: &TestApp, browser: &Browser<'_>, interaction: &str) -> String {
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let session = browser.cookie("latchkey_session").unwrap();
    let session_hash = URL_SAFE_NO_PAD.encode(app.app.hasher.hash(&session));
    latchkey::http::ui::csrf_token(&app.app, "consent", interaction, &binding, &session_hash)
}

async fn answer_consent(
    browser: &Browser<'_>,
    interaction: &str,
    csrf: &str,
    decision: &str,
) -> Step {
    browser
        .post_form(
            "/consent",
            &[
                ("interaction", interaction),
                ("csrf_token", csrf),
                ("decision", decision),
            ],
        )
        .await
}

async fn consent_events(app: &TestApp) -> usize {
    app.app
        .store
        .list_events(&latchkey::store::AuditFilter {
            kind: Some("consent_granted".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

/// Asserts that the answer sent the browser to log in and carried no code or error to the
/// client.
fn sent_to_login(step: &Step, what: &str) {
    assert_eq!(step.status, 303, "{what}: {}", step.body);
    let location = step.location.as_deref().unwrap();
    assert!(
        location.starts_with("/login?"),
        "{what}: went to {location}"
    );
}

/// An ID token for `username`, from a full flow in a browser of its own.
async fn id_token_of(app: &TestApp, client: &TestClient, username: &str) -> String {
    let browser = Browser::new(app);
    let step = browser.authorize(&skip_params(client, &[])).await;
    let step = browser
        .login(&step.location.unwrap(), username, PASSWORD)
        .await;
    let (_, answer) = browser.consent(&step.location.unwrap(), "allow").await;
    let code = query_of(&answer.location.unwrap())["code"].clone();
    let (_, body, _) = app.token(client, &code_form(client, &code, None)).await;
    body["id_token"].as_str().unwrap().to_owned()
}

/// `prompt=login`, an exceeded `max_age` and an `id_token_hint` for another user each need a
/// login: with the old session still in the browser, jumping from `/authorize` to `/consent`
/// shows no consent page, and answering the consent form (even with a valid CSRF token)
/// issues no code and ends nothing: the browser is sent to log in. Logging in then works.
async fn consent_cannot_complete_a_request_that_owes_a_login(backend: Backend) {
    let (app, client) = setup(backend).await;
    let bob_token = id_token_of(&app, &client, "bob").await;
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid", None, &[]).await;
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("prompt=login", vec![("prompt", "login")]),
        ("max_age=0", vec![("max_age", "0")]),
        ("max_age passed", vec![("max_age", "60")]),
        ("id_token_hint for bob", vec![("id_token_hint", &bob_token)]),
    ];
    for (what, extra) in cases {
        // Each case's session is two minutes old (the previous case logged in again).
        app.clock.advance(120);
        let granted_before = consent_events(&app).await;
        let step = browser.authorize(&skip_params(&client, &extra)).await;
        sent_to_login(&step, what);
        let interaction = interaction_of(step.location.as_deref().unwrap());
        let page = browser
            .get(&format!("/consent?interaction={interaction}"))
            .await;
        sent_to_login(&page, what);
        let csrf = valid_consent_csrf(&app, &browser, &interaction);
        for decision in ["allow", "deny"] {
            let answer = answer_consent(&browser, &interaction, &csrf, decision).await;
            sent_to_login(&answer, what);
        }
        assert_eq!(consent_events(&app).await, granted_before, "{what}");
        // The owed login, done properly, finishes the request for whoever logs in.
        let step = browser
            .login(step.location.as_deref().unwrap(), "alice", PASSWORD)
            .await;
        let location = step.location.unwrap();
        let location = if location.starts_with("/consent") {
            browser
                .consent(&location, "allow")
                .await
                .1
                .location
                .unwrap()
        } else {
            location
        };
        assert!(
            query_of(&location).contains_key("code"),
            "{what}: after the login, {location}"
        );
    }
}

/// A first-party client never gets a consent page, not even through a jump to `/consent`
/// with an interaction that owes a login.
async fn first_party_clients_never_see_the_consent_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "First party",
            "redirect_uris": ["https://first.example.test/callback"],
            "grant_types": ["authorization_code"],
            "scope": "openid profile",
            "first_party": true,
        }))
        .await,
    );
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid", None, &[]).await;
    let step = browser
        .authorize(&skip_params(&client, &[("prompt", "login")]))
        .await;
    sent_to_login(&step, "prompt=login");
    let interaction = interaction_of(step.location.as_deref().unwrap());
    let page = browser
        .get(&format!("/consent?interaction={interaction}"))
        .await;
    sent_to_login(&page, "first party");
    assert!(!page.body.contains("name=\"decision\""));
    let csrf = valid_consent_csrf(&app, &browser, &interaction);
    let answer = answer_consent(&browser, &interaction, &csrf, "allow").await;
    sent_to_login(&answer, "first party");
    let step = browser
        .login(step.location.as_deref().unwrap(), "alice", PASSWORD)
        .await;
    let location = step.location.unwrap();
    assert!(
        location.starts_with(&client.redirect_uri) && query_of(&location).contains_key("code"),
        "straight back to the client: {location}"
    );
}

/// A consent asked in Alice's session cannot be answered once the browser holds another
/// session (Bob logged in meanwhile): back to the login, and no code for either of them.
async fn consent_is_asked_only_of_the_session_it_was_decided_for(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    // Alice is signed in and has granted `openid`; asking for `email` needs her consent.
    browser.code_flow(&client, "openid", None, &[]).await;
    let step = browser.authorize_for(&client, "openid email").await;
    let consent_location = step.location.unwrap();
    assert!(
        consent_location.starts_with("/consent"),
        "{consent_location}"
    );
    let for_alice = interaction_of(&consent_location);
    // In the same browser Bob signs in for another request (a new session).
    let step = browser
        .authorize(&skip_params(&client, &[("prompt", "login")]))
        .await;
    let step = browser
        .login(step.location.as_deref().unwrap(), "bob", PASSWORD)
        .await;
    assert_eq!(step.status, 303);
    let granted_before = consent_events(&app).await;
    let page = browser.get(&consent_location).await;
    sent_to_login(&page, "Alice's consent page in Bob's session");
    let csrf = valid_consent_csrf(&app, &browser, &for_alice);
    let answer = answer_consent(&browser, &for_alice, &csrf, "allow").await;
    sent_to_login(&answer, "Alice's consent answered in Bob's session");
    assert_eq!(consent_events(&app).await, granted_before);
}

/// The forced password change: the form works only with the ticket the login issued, for
/// the password the user had then, once.
async fn the_forced_password_change_needs_a_live_ticket(backend: Backend) {
    let (app, client) = setup(backend).await;
    let alice = app
        .app
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let require_reset = async || {
        let (status, _) = app
            .admin(
                reqwest::Method::PATCH,
                &format!("/admin/users/{}", alice.sub),
                Some(&json!({"password_reset_required": true})),
            )
            .await;
        assert_eq!(status, 200);
    };
    require_reset().await;
    let browser = Browser::new(&app);
    let step = browser.authorize(&skip_params(&client, &[])).await;
    let form = browser
        .login(step.location.as_deref().unwrap(), "alice", PASSWORD)
        .await;
    assert_eq!(form.status, 200, "the password form: {}", form.body);
    let interaction = hidden_field(&form.body, "interaction").unwrap();
    let ticket = hidden_field(&form.body, "csrf_token").unwrap();
    let submit = async |ticket: &str, sub: &str, password: &str| {
        browser
            .post_form(
                "/password",
                &[
                    ("interaction", interaction.as_str()),
                    ("sub", sub),
                    ("csrf_token", ticket),
                    ("new_password", password),
                    ("confirm_password", password),
                ],
            )
            .await
            .status
    };
    let bob = app
        .app
        .store
        .get_user_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    // Straight to the form without the login's ticket, or with Alice's ticket for Bob.
    assert_eq!(submit("", &alice.sub, "new password one").await, 400);
    assert_eq!(
        submit("123.forged", &alice.sub, "new password one").await,
        400
    );
    assert_eq!(submit(&ticket, &bob.sub, "new password one").await, 400);
    // An operator resets the password again (a new temporary one): the old ticket is dead.
    let (status, _) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/users/{}", alice.sub),
            Some(&json!({"password": "temporary password two", "password_reset_required": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(submit(&ticket, &alice.sub, "new password one").await, 400);
    // A fresh login gives a fresh ticket, good once.
    let step = browser.authorize(&skip_params(&client, &[])).await;
    let form = browser
        .login(
            step.location.as_deref().unwrap(),
            "alice",
            "temporary password two",
        )
        .await;
    assert_eq!(form.status, 200);
    let fresh = hidden_field(&form.body, "csrf_token").unwrap();
    let interaction_now = hidden_field(&form.body, "interaction").unwrap();
    let once = browser
        .post_form(
            "/password",
            &[
                ("interaction", interaction_now.as_str()),
                ("sub", alice.sub.as_str()),
                ("csrf_token", fresh.as_str()),
                ("new_password", "new password three"),
                ("confirm_password", "new password three"),
            ],
        )
        .await;
    assert_eq!(once.status, 303, "{}", once.body);
    let replay = browser
        .post_form(
            "/password",
            &[
                ("interaction", interaction_now.as_str()),
                ("sub", alice.sub.as_str()),
                ("csrf_token", fresh.as_str()),
                ("new_password", "new password four"),
                ("confirm_password", "new password four"),
            ],
        )
        .await;
    assert_eq!(replay.status, 400, "the ticket was used");
    let stored = app.app.store.get_user(&alice.sub).await.unwrap().unwrap();
    assert!(
        app.app
            .passwords
            .verify("new password three", Some(&stored.password_hash))
            .await
            .unwrap()
    );
}

/// Interactions are sealed: a made-up, altered or foreign one opens no page.
async fn pages_refuse_interactions_they_did_not_issue(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = browser.authorize(&skip_params(&client, &[])).await;
    let interaction = interaction_of(step.location.as_deref().unwrap());
    let mut altered = interaction.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let other_browser = Browser::new(&app);
    for page in ["/login", "/consent"] {
        for (what, value, who) in [
            ("made up", "bm90LWEtcmVhbC1pbnRlcmFjdGlvbg", &browser),
            ("altered", altered.as_str(), &browser),
            ("another browser's", interaction.as_str(), &other_browser),
        ] {
            let step = who.get(&format!("{page}?interaction={value}")).await;
            assert_eq!(step.status, 400, "{page} with a {what} interaction");
        }
    }
}

/// A pending interaction does not outlive the redirect URI it would end at: once the operator
/// removes that URI from the client, its login and consent pages no longer open and no code
/// goes there.
async fn an_interaction_ends_when_its_redirect_uri_is_removed(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    let step = browser.authorize(&skip_params(&client, &[])).await;
    let login = step.location.unwrap();
    let page = browser.get(&login).await;
    assert_eq!(page.status, 200);
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("/admin/clients/{}", client.client_id),
            Some(&json!({
                "client_id": client.client_id,
                "client_name": "Test Web App",
                "redirect_uris": ["https://app.example.test/new-callback"],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid profile email phone address offline_access api.read api.write",
            })),
        )
        .await;
    assert_eq!(status, 200);
    // Every node sees a client change within the change-poll bound.
    let mut refused = false;
    for _ in 0..60 {
        if browser.get(&login).await.status == 400 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the login page of the old request still opens");
    let step = browser.login_form_post(&page.body, "alice", PASSWORD).await;
    assert_eq!(
        step.status, 400,
        "the login form answers with the expired page"
    );
    assert!(step.location.is_none());
}
