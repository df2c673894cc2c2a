//! The profile: users edit the standard claims the operator names in
//! `LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`, each value checked for its claim's shape, and nothing
//! else.

use reqwest::Method;
use serde_json::{Value, json};

use super::{csrf, sign_in};
use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp, settings, spawn_app, spawn_app_with};

both_backends!(
    users_edit_the_claims_the_operator_allows,
    a_refused_value_saves_nothing_and_shows_why,
    a_refused_value_is_explained_in_german_next_to_its_field,
    claims_the_operator_did_not_allow_cannot_be_posted,
);

const EDITABLE: &str = "name,given_name,locale,website,phone_number";

async fn user(app: &TestApp) -> Value {
    let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
    let sub = users["items"][0]["sub"].as_str().unwrap().to_owned();
    let (status, user) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(status, 200);
    user
}

async fn users_edit_the_claims_the_operator_allows(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", EDITABLE)]),
    )
    .await;
    let alice = app.create_user("alice").await;
    let sub = alice["sub"].as_str().unwrap();
    app.admin(
        Method::PATCH,
        &format!("/admin/users/{sub}"),
        Some(&json!({"phone_number_verified": true})),
    )
    .await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    // The allowed claims are fields with their values; the others are not.
    assert!(page.body.contains("name=\"name\""));
    assert!(page.body.contains("value=\"alice Example\""));
    assert!(page.body.contains("name=\"locale\""));
    assert!(page.body.contains("autocomplete=\"given-name\""));
    assert!(!page.body.contains("name=\"family_name\""));
    assert!(!page.body.contains("name=\"email\""));

    let saved = browser
        .post_form(
            "/account/profile",
            &[
                ("csrf_token", &csrf(&page)),
                ("name", "  Alice Liddell "),
                ("given_name", ""),
                ("locale", "en-GB"),
                ("website", "https://alice.example"),
                ("phone_number", "+44 20 7946 0000"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/account?done=profile"));
    let stored = user(&app).await;
    assert_eq!(stored["name"], "Alice Liddell", "trimmed");
    assert_eq!(
        stored.get("given_name"),
        None,
        "an empty field removes the claim"
    );
    assert_eq!(stored["locale"], "en-GB");
    assert_eq!(stored["website"], "https://alice.example");
    assert_eq!(stored["phone_number"], "+44 20 7946 0000");
    assert_eq!(
        stored.get("phone_number_verified"),
        None,
        "a new phone number is not verified"
    );
    // What was not editable stays as it was.
    assert_eq!(stored["family_name"], "Example");
    assert_eq!(stored["email"], "alice@example.test");
    assert_eq!(stored["email_verified"], true);
    let page = browser.get("/account?done=profile").await;
    assert!(page.body.contains("Your profile was saved."));
    assert!(page.body.contains("value=\"Alice Liddell\""));
    let events = app.events("kind=user_updated").await;
    assert_eq!(events[0]["detail"]["by"], "user");

    // Saving the same values again changes nothing (and leaves the verification alone).
    app.admin(
        Method::PATCH,
        &format!("/admin/users/{sub}"),
        Some(&json!({"phone_number_verified": true})),
    )
    .await;
    let again = browser
        .post_form(
            "/account/profile",
            &[
                ("csrf_token", &csrf(&page)),
                ("name", "Alice Liddell"),
                ("phone_number", "+44 20 7946 0000"),
            ],
        )
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(user(&app).await["phone_number_verified"], true);
}

async fn a_refused_value_saves_nothing_and_shows_why(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", EDITABLE)]),
    )
    .await;
    app.create_user("alice").await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    let before = user(&app).await;
    for (field, value, message) in [
        ("website", "javascript:alert(1)", "starting with https://"),
        ("locale", "English please", "language tag"),
        ("phone_number", "call me maybe", "phone number such as"),
        ("name", "two\nlines", "single line"),
    ] {
        let refused = browser
            .post_form(
                "/account/profile",
                &[
                    ("csrf_token", &csrf(&page)),
                    // A valid change beside the refused one: it is not saved either.
                    (
                        if field == "website" {
                            "locale"
                        } else {
                            "website"
                        },
                        if field == "website" {
                            "de-DE"
                        } else {
                            "https://ok.example"
                        },
                    ),
                    (field, value),
                ],
            )
            .await;
        assert_eq!(refused.status, 400, "{field}");
        assert!(refused.body.contains(message), "{field}: {}", refused.body);
        assert!(
            refused
                .body
                .contains(&format!("aria-describedby=\"claim-{field}-error\"")),
            "{field}: the error is tied to its field"
        );
        assert_eq!(user(&app).await, before, "{field}: nothing was stored");
    }
    let too_long = "x".repeat(257);
    let refused = browser
        .post_form(
            "/account/profile",
            &[("csrf_token", &csrf(&page)), ("name", &too_long)],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(user(&app).await, before);
}

async fn claims_the_operator_did_not_allow_cannot_be_posted(backend: Backend) {
    // By default no claim is editable: no profile form, and a forged one changes nothing.
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    assert!(!page.body.contains("action=\"/account/profile\""));
    let before = user(&app).await;
    for (field, value) in [
        ("name", "Mallory"),
        ("email", "mallory@example.test"),
        ("email_verified", "true"),
        ("sub", "someone-else"),
    ] {
        let refused = browser
            .post_form(
                "/account/profile",
                &[("csrf_token", &csrf(&page)), (field, value)],
            )
            .await;
        assert_eq!(refused.status, 400, "{field}");
        assert!(
            refused.body.contains(field),
            "{field}: named in the refusal"
        );
    }
    assert_eq!(user(&app).await, before);

    // With some claims editable, the others are still refused.
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", "nickname")]),
    )
    .await;
    app.create_user("alice").await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    let before = user(&app).await;
    let refused = browser
        .post_form(
            "/account/profile",
            &[
                ("csrf_token", &csrf(&page)),
                ("nickname", "Al"),
                ("family_name", "Mallory"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(user(&app).await, before);
}

async fn a_refused_value_is_explained_in_german_next_to_its_field(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", EDITABLE)]),
    )
    .await;
    app.create_user("alice").await;
    let browser = Browser::new(&app);
    let page = sign_in(&browser, "alice").await;
    assert_eq!(
        browser
            .get("/language?lang=de&return=/account")
            .await
            .status,
        303
    );
    let refused = browser
        .post_form(
            "/account/profile",
            &[("csrf_token", &csrf(&page)), ("website", "ftp://x")],
        )
        .await;
    assert_eq!(refused.status, 400);
    let body = &refused.body;
    assert!(
        body.contains("Einige Angaben konnten nicht gespeichert werden."),
        "{body}"
    );
    let field = body.find("id=\"claim-website\"").unwrap();
    let error = body
        .find("id=\"claim-website-error\">Bitte eine Webadresse eingeben")
        .unwrap();
    assert!(field < error, "{body}");
    assert!(!body.contains("Enter a web address"));
}
