//! Consent: asked once per client and scope set, only for what is new, denied with
//! `access_denied`, written only for a live session of an enabled user; never asked of
//! first-party clients, always asked of native public ones (RFC 8252 §8.6).

use serde_json::json;

use super::public_client;
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, TestClient, hidden_field, pkce_pair, pkce_params, query_of,
    spawn_app, spawn_app_with_alice,
};

both_backends!(
    a_second_request_with_the_same_scopes_skips_consent,
    consent_asks_only_for_scopes_not_yet_granted,
    denying_consent_returns_access_denied,
    allowing_consent_needs_a_live_session_of_an_enabled_user,
    first_party_clients_skip_consent,
    native_public_clients_are_asked_for_consent_every_time,
);

async fn a_second_request_with_the_same_scopes_skips_consent(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    browser
        .code_flow(&client, "openid email", Some(&challenge), &[])
        .await;
    let step = browser
        .authorize_with(&client, "openid email", &[("state", "again")])
        .await;
    assert_eq!(step.status, 303);
    let location = step.location.unwrap();
    assert!(
        location.starts_with(&client.redirect_uri),
        "went to {location}"
    );
    assert!(query_of(&location).contains_key("code"));
}

async fn consent_asks_only_for_scopes_not_yet_granted(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid email", None, &[]).await;
    let step = browser
        .authorize_for(&client, "openid email phone offline_access")
        .await;
    let location = step.location.unwrap();
    assert!(location.starts_with("/consent"), "{location}");
    let page = browser.get(&location).await;
    assert!(page.body.contains("Test Web App"));
    assert!(page.body.contains("your phone number"));
    assert!(
        page.body
            .contains("stay signed in: access when you are not present")
    );
    assert!(
        !page.body.contains("your email address"),
        "email was granted before"
    );
    assert!(page.body.contains(r#"name="decision" value="allow""#));
    assert!(page.body.contains(r#"name="decision" value="deny""#));
    // prompt=consent always asks, even when everything was granted.
    let step = browser
        .authorize_with(&client, "openid email", &[("prompt", "consent")])
        .await;
    assert!(step.location.unwrap().starts_with("/consent"));
}

async fn denying_consent_returns_access_denied(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "d")])
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let (_, answer) = browser.consent(&step.location.unwrap(), "deny").await;
    let q = query_of(&answer.location.unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "d");
    assert_eq!(q["iss"], app.base);
}

/// The consent answer does not read the session first: the store writes the grant only
/// while the session is live and its user enabled. Otherwise the browser goes back to log
/// in, no code is issued and the interaction stays open.
async fn allowing_consent_needs_a_live_session_of_an_enabled_user(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "l")])
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let consent_url = step.location.unwrap();
    let page = browser.get(&consent_url).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let allow = async || {
        browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", "allow"),
                ],
            )
            .await
    };
    let store = app.app.store.as_ref();
    let mut alice = store.get_user_by_username("alice").await.unwrap().unwrap();
    alice.disabled = true;
    store.update_user(&alice).await.unwrap();
    let refused = allow().await;
    assert_eq!(refused.status, 303);
    let to = refused.location.unwrap();
    assert!(to.starts_with("/login?interaction="), "{to}");
    assert!(!to.contains("code="));

    // Enabled again, the same form goes through once.
    alice.disabled = false;
    store.update_user(&alice).await.unwrap();
    let granted = allow().await;
    assert_eq!(granted.status, 303);
    let q = query_of(&granted.location.unwrap());
    assert!(q.contains_key("code"));
    assert_eq!(q["state"], "l");
    assert_eq!(allow().await.status, 400, "finished once");
}

async fn first_party_clients_skip_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Our Own App",
            "redirect_uris": ["https://own.example.test/cb"],
            "scope": "openid email",
            "first_party": true,
        }))
        .await,
    );
    let browser = Browser::new(&app);
    let step = browser.authorize_for(&client, "openid email").await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    assert!(
        step.location.unwrap().starts_with(&client.redirect_uri),
        "no consent page"
    );
}

/// RFC 8252 §8.6: the identity of a public client redirecting to loopback or a private-use
/// scheme is not assured, so remembered consent is not reused for it.
async fn native_public_clients_are_asked_for_consent_every_time(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    let step = browser
        .authorize_with(&client, "openid", &pkce_params(&challenge))
        .await;
    assert!(
        step.location.unwrap().starts_with("/consent"),
        "asked again"
    );
}
