//! A login at an upstream still owes the local second factor the policies ask for: the
//! callback goes through the same `flow::next` as a password login, so a user with a TOTP
//! gives it, a user who must have one enrols, and the upstream's own `amr` (it says `mfa`
//! here) never stands in for Latchkey's. A browser that jumps from the callback to a later
//! page gets nothing.

use reqwest::Method;
use serde_json::{Value, json};

use super::{FakeUpstream, Person, Twist, spawn};
use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, TestApp, TestClient, hidden_field, query_of};
use crate::mfa::{
    code_now, enrol_page, finish, freeze_mid_step, id_claims, provision_totp, recovery_codes,
    require_mfa, submit_enrolment, submit_otp,
};

both_backends!(
    a_user_with_totp_gives_it_after_an_upstream_login,
    each_policy_leads_an_upstream_user_to_enrolment,
    no_page_after_the_callback_skips_the_owed_factor,
);

/// Alice, with the verified email the test upstream vouches for, linked by it.
async fn alice_linked_by_email(app: &TestApp) -> String {
    let (status, user) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": "alice", "password": PASSWORD,
                "email": "alice@example.com", "email_verified": true})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    user["sub"].as_str().unwrap().to_owned()
}

/// Authorizes `client` with `upstream=id` and `extra`, signs in at the upstream and comes
/// back: the callback's URL and where it sent the browser.
async fn through_upstream(
    browser: &Browser<'_>,
    client: &TestClient,
    id: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut params = vec![("state", "s-1"), ("nonce", "n-1"), ("upstream", id)];
    params.extend_from_slice(extra);
    let step = browser.authorize_with(client, "openid", &params).await;
    assert_eq!(step.status, 303, "authorize: {}", step.body);
    let at_upstream = browser.get(&step.location.unwrap()).await;
    assert_eq!(at_upstream.status, 303, "upstream: {}", at_upstream.body);
    let callback = at_upstream.location.unwrap();
    let back = browser.get(&callback).await;
    assert_eq!(back.status, 303, "callback: {}", back.body);
    (callback, back.location.unwrap())
}

async fn a_user_with_totp_gives_it_after_an_upstream_login(backend: Backend) {
    let (app, client) = spawn(backend).await;
    freeze_mid_step(&app);
    let alice = alice_linked_by_email(&app).await;
    let secret = provision_totp(&app, &alice).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"link_existing": "verified_email"}))
        .await;
    let browser = Browser::new(&app);
    let (_, location) = through_upstream(&browser, &client, "corp", &[]).await;
    assert!(
        location.starts_with("/login/otp?"),
        "the factor is asked for, not skipped: {location}"
    );
    let wrong = submit_otp(&browser, &location, "000000").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let step = submit_otp(&browser, &location, &code_now(&app, &secret)).await;
    let query = finish(&browser, &client, step).await;
    let (id, access) = id_claims(&app, &client, &query).await;
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["idp"], "corp");
    assert_eq!(
        id["amr"],
        json!(["fed", "otp", "mfa", "pwd"]),
        "fed and the local factor, then what the upstream reported"
    );
    assert_eq!(id["acr"], "mfa");
    assert_eq!(access["acr"], "mfa");
}

/// A user created by the upstream, who must use a second factor and has none, enrols inside
/// the flow and reaches the client with `fed` and `otp`.
async fn enrols_after_the_upstream(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) {
    let browser = Browser::new(app);
    let (_, location) = through_upstream(&browser, client, "corp", extra).await;
    assert!(
        location.starts_with("/account/totp?interaction="),
        "{extra:?}: {location}"
    );
    let page = enrol_page(&browser, &location).await;
    let done = submit_enrolment(&browser, &page, &code_now(app, &page.secret)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(recovery_codes(&done.body).len(), 10);
    let resumed = browser
        .post_form(
            "/login/resume",
            &[
                (
                    "interaction",
                    &hidden_field(&done.body, "interaction").unwrap(),
                ),
                (
                    "csrf_token",
                    &hidden_field(&done.body, "csrf_token").unwrap(),
                ),
            ],
        )
        .await;
    let query = finish(&browser, client, resumed).await;
    let (id, _) = id_claims(app, client, &query).await;
    assert_eq!(id["idp"], "corp");
    assert_eq!(id["amr"], json!(["fed", "otp", "mfa", "pwd"]));
    assert_eq!(id["acr"], "mfa");
}

fn person(sub: &str) -> Person {
    Person {
        sub: sub.into(),
        email: format!("{sub}@example.com"),
        email_verified: json!(true),
        amr: vec!["pwd".into(), "mfa".into()],
    }
}

async fn each_policy_leads_an_upstream_user_to_enrolment(backend: Backend) {
    let (app, client) = spawn(backend).await;
    freeze_mid_step(&app);
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"create_users": true}))
        .await;
    // The request's acr_values, for a user the upstream creates (who has no factor).
    upstream.set_person(person("up-1"));
    enrols_after_the_upstream(&app, &client, &[("acr_values", "mfa")]).await;
    // The client's require_mfa.
    let strict = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Strict",
            "redirect_uris": ["https://strict.example.test/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid",
            "require_mfa": true,
        }))
        .await,
    );
    upstream.set_person(person("up-2"));
    enrols_after_the_upstream(&app, &strict, &[]).await;
    // The user's mfa_required. Without any policy, `fed` alone is enough, whatever the
    // upstream says it did (`mfa` here): the level is one factor.
    upstream.set_person(person("up-3"));
    let browser = Browser::new(&app);
    let (_, location) = through_upstream(&browser, &client, "corp", &[]).await;
    let query = finish_without_factor(&browser, &client, location).await;
    let (id, _) = id_claims(&app, &client, &query).await;
    assert_eq!(id["amr"], json!(["fed", "pwd", "mfa"]));
    assert_eq!(id["acr"], "pwd", "the upstream's mfa is not Latchkey's");
    require_mfa(&app, id["sub"].as_str().unwrap()).await;
    enrols_after_the_upstream(&app, &client, &[]).await;
}

/// Consent if asked, then the client's redirect: its query.
async fn finish_without_factor(
    browser: &Browser<'_>,
    client: &TestClient,
    mut location: String,
) -> Value {
    if location.starts_with("/consent") {
        let (_, answer) = browser.consent(&location, "allow").await;
        location = answer.location.unwrap();
    }
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    json!(query_of(&location))
}

/// A consent CSRF token as the server computes it (only the server's key makes one).
fn valid_consent_csrf(app: &TestApp, browser: &Browser<'_>, interaction: &str) -> String {
    use base64::Engine;
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let session = browser.cookie("latchkey_session").unwrap();
    let session_hash =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(app.app.hasher.hash(&session));
    latchkey::http::ui::csrf_token(&app.app, "consent", interaction, &binding, &session_hash)
}

async fn no_page_after_the_callback_skips_the_owed_factor(backend: Backend) {
    let (app, client) = spawn(backend).await;
    freeze_mid_step(&app);
    let alice = alice_linked_by_email(&app).await;
    provision_totp(&app, &alice).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    upstream
        .register(&app, "corp", json!({"link_existing": "verified_email"}))
        .await;
    let browser = Browser::new(&app);
    let (callback, location) = through_upstream(&browser, &client, "corp", &[]).await;
    assert!(location.starts_with("/login/otp?"), "{location}");
    let interaction = query_of(&format!("http://x{location}"))["interaction"].clone();
    // The consent page, even with a valid CSRF token for this session and interaction.
    let page = browser
        .get(&format!("/consent?interaction={interaction}"))
        .await;
    assert_ne!(page.status, 200, "no consent page: {}", page.body);
    let csrf = valid_consent_csrf(&app, &browser, &interaction);
    for decision in ["allow", "deny"] {
        let answer = browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", decision),
                ],
            )
            .await;
        let to = answer.location.unwrap_or_default();
        assert!(!to.contains("code="), "consent issued a code: {to}");
        assert!(!to.starts_with(&client.redirect_uri), "to the client: {to}");
    }
    // The continuation of an enrolment, and the callback again (its trip cookie is gone).
    let resume = browser
        .post_form(
            "/login/resume",
            &[("interaction", &interaction), ("csrf_token", "x")],
        )
        .await;
    assert_eq!(resume.status, 400, "no resume: {}", resume.body);
    let replayed = browser.get(&callback).await;
    let to = replayed.location.unwrap_or_default();
    assert!(!to.contains("code="), "the callback again: {to}");
    // The same authorization request again in this browser, whose session has `fed` alone:
    // the factor is asked for again, no code.
    let step = browser
        .authorize_with(&client, "openid", &[("state", "s-2"), ("nonce", "n-2")])
        .await;
    let to = step.location.unwrap_or_default();
    assert!(to.starts_with("/login/otp?"), "{to}");
    assert!(app.events("kind=consent_granted").await.is_empty());
    let codes: Vec<Value> = app.events("kind=factor_used").await;
    assert!(codes.is_empty(), "no factor was used: {codes:?}");
}
