//! The device authorization grant (RFC 8628): a device gets a device code and a user code; a
//! person types the code on `/device`, logs in and consents; the device polls the token
//! endpoint through `authorization_pending` and `slow_down` to its tokens, once.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, TestApp, hidden_field, spawn_app, spawn_node};

both_backends!(
    a_device_gets_its_tokens_once_its_person_approves,
    a_denied_or_expired_device_gets_no_tokens,
    wrong_user_codes_are_throttled_per_address,
    racing_polls_take_an_approved_device_once,
    device_requests_are_checked,
);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_client(app: &TestApp) -> String {
    let reg = app
        .create_client(json!({
            "client_name": "Living-room TV",
            "grant_types": [GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        }))
        .await;
    reg["client_id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn authorize_device(app: &TestApp, client_id: &str, scope: &str) -> Value {
    let (status, body) = post(
        app,
        "/device_authorization",
        &[("client_id", client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    post(
        app,
        "/token",
        &[
            ("grant_type", GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

/// A person enters `typed` on /device in `browser`, logs in (as alice) when asked, and answers
/// the consent page with `decision`; returns the final page.
async fn answer_on_device_page(
    browser: &Browser<'_>,
    typed: &str,
    decision: &str,
) -> crate::helpers::Step {
    let page = browser.get("/device").await;
    assert_eq!(page.status, 200);
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let step = browser
        .post_form("/device", &[("csrf_token", &csrf), ("user_code", typed)])
        .await;
    assert_eq!(step.status, 303, "{}", step.body);
    let mut location = step.location.unwrap();
    if location.starts_with("/login") {
        let step = browser.login(&location, "alice", PASSWORD).await;
        location = step.location.unwrap();
    }
    assert!(
        location.starts_with("/consent"),
        "consent is always asked: {location}"
    );
    let (page, answer) = browser.consent(&location, decision).await;
    assert!(page.body.contains("A device is asking"), "{}", page.body);
    answer
}

async fn a_device_gets_its_tokens_once_its_person_approves(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client_id = device_client(&app).await;
    let answer = authorize_device(&app, &client_id, "openid offline_access").await;
    let user_code = answer["user_code"].as_str().unwrap().to_owned();
    let device_code = answer["device_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );
    assert_eq!(answer["verification_uri"], app.url("/device"));
    assert_eq!(
        answer["verification_uri_complete"],
        format!("{}?user_code={user_code}", app.url("/device"))
    );
    assert_eq!(
        (answer["expires_in"].as_i64(), answer["interval"].as_i64()),
        (Some(600), Some(5))
    );
    let (status, body) = poll(&app, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, body) = poll(&app, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("slow_down")),
        "polled too fast"
    );
    // The person types the code loosely (lower case, no dash) and approves.
    let browser = Browser::new(&app);
    let prefilled = browser
        .get(answer["verification_uri_complete"].as_str().unwrap())
        .await;
    assert!(prefilled.body.contains(&format!("value=\"{user_code}\"")));
    let typed = user_code.replace('-', "").to_lowercase();
    let done = answer_on_device_page(&browser, &typed, "allow").await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("return to your device"), "{}", done.body);
    app.clock.advance(20);
    let (status, tokens) = poll(&app, &client_id, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
    app.clock.advance(20);
    let (status, body) = poll(&app, &client_id, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "used once"
    );
    let doc = app.discovery().await;
    assert_eq!(
        doc["device_authorization_endpoint"],
        app.url("/device_authorization")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
    // The approval is in the audit log with its user.
    assert_eq!(app.events("kind=device_approved").await.len(), 1);
}

async fn a_denied_or_expired_device_gets_no_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client_id = device_client(&app).await;
    let denied = authorize_device(&app, &client_id, "openid").await;
    let browser = Browser::new(&app);
    let done = answer_on_device_page(&browser, denied["user_code"].as_str().unwrap(), "deny").await;
    assert!(done.body.contains("was not given access"));
    let (status, body) = poll(&app, &client_id, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied"))
    );
    let expired = authorize_device(&app, &client_id, "openid").await;
    app.clock.advance(601);
    let (status, body) = poll(&app, &client_id, expired["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token"))
    );
    // Its code no longer opens anything.
    let page = browser.get("/device").await;
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let step = browser
        .post_form(
            "/device",
            &[
                ("csrf_token", &csrf),
                ("user_code", expired["user_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(step.status, 400);
}

async fn wrong_user_codes_are_throttled_per_address(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client_id = device_client(&app).await;
    let real = authorize_device(&app, &client_id, "openid").await;
    let browser = Browser::new(&app);
    let page = browser.get("/device").await;
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    for i in 0..10 {
        let step = browser
            .post_form(
                "/device",
                &[("csrf_token", &csrf), ("user_code", "BBBB-BBBB")],
            )
            .await;
        assert_eq!(step.status, 400, "wrong code {i}");
    }
    let step = browser
        .post_form(
            "/device",
            &[
                ("csrf_token", &csrf),
                ("user_code", real["user_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        step.status, 429,
        "the eleventh try waits, even with a right code"
    );
    assert!(step.headers.contains_key("retry-after"));
}

async fn racing_polls_take_an_approved_device_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = spawn_node(&app).await;
    app.create_user("alice").await;
    let client_id = device_client(&app).await;
    let answer = authorize_device(&app, &client_id, "openid").await;
    let browser = Browser::new(&app);
    answer_on_device_page(&browser, answer["user_code"].as_str().unwrap(), "allow").await;
    let device_code = answer["device_code"].as_str().unwrap().to_owned();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                other.base.clone()
            };
            let (http, barrier) = (app.http.clone(), barrier.clone());
            let (client_id, device_code) = (client_id.clone(), device_code.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", GRANT),
                        ("client_id", client_id.as_str()),
                        ("device_code", device_code.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for r in racers {
        if r.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 1,
        "one of 50 racing polls over two nodes gets the tokens"
    );
}

async fn device_requests_are_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let client_id = device_client(&app).await;
    let (status, body) = post(
        &app,
        "/device_authorization",
        &[("client_id", &client_id), ("scope", "openid email")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let web = app.create_web_client().await;
    let r = app
        .http
        .post(app.url("/device_authorization"))
        .basic_auth(
            web["client_id"].as_str().unwrap(),
            web["client_secret"].as_str(),
        )
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    let (status, _) = post(&app, "/device_authorization", &[("client_id", "nobody")]).await;
    assert_eq!(status, 401);
    let (status, body) = poll(&app, &client_id, "not-a-device-code").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}
