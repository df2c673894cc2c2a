//! RP-initiated logout (`end_session_endpoint`).

use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, TestApp, TestClient, code_form, hidden_field, query_of, spawn_app,
};

both_backends!(
    logout_with_id_token_hint_ends_the_session_and_redirects,
    logout_without_hint_asks_first,
    logout_refuses_unregistered_redirects,
);

async fn setup(backend: Backend) -> (TestApp, TestClient) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Logout App",
            "redirect_uris": ["https://app.example.test/callback"],
            "post_logout_redirect_uris": ["https://app.example.test/bye"],
            "scope": "openid",
        }))
        .await,
    );
    (app, client)
}

async fn silent_authorize(
    browser: &Browser<'_>,
    client: &TestClient,
) -> std::collections::HashMap<String, String> {
    let step = browser
        .authorize_with(client, "openid", &[("prompt", "none")])
        .await;
    query_of(&step.location.unwrap())
}

async fn logout_with_id_token_hint_ends_the_session_and_redirects(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    let q = browser.code_flow(&client, "openid", None, &[]).await;
    let (_, body, _) = app
        .token(&client, &code_form(&client, &q["code"], None))
        .await;
    let id_token = body["id_token"].as_str().unwrap();
    assert!(
        silent_authorize(&browser, &client)
            .await
            .contains_key("code")
    );
    let end_session = app.discovery().await["end_session_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!(
        "{end_session}?{}",
        serde_urlencoded::to_string([
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://app.example.test/bye"),
            ("state", "bye-1"),
        ])
        .unwrap()
    );
    let step = browser.get(&url).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert_eq!(
        step.location.as_deref(),
        Some("https://app.example.test/bye?state=bye-1")
    );
    assert_eq!(
        silent_authorize(&browser, &client).await["error"],
        "login_required"
    );
}

async fn logout_without_hint_asks_first(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid", None, &[]).await;
    let page = browser.get("/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Do you want to sign out"));
    assert!(
        silent_authorize(&browser, &client)
            .await
            .contains_key("code"),
        "still signed in"
    );
    let forged = browser
        .post_form("/logout", &[("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status, 400);
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let done = browser.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are signed out."));
    assert_eq!(
        silent_authorize(&browser, &client).await["error"],
        "login_required"
    );
}

async fn logout_refuses_unregistered_redirects(backend: Backend) {
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    for query in [
        format!(
            "client_id={}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            client.client_id
        ),
        "post_logout_redirect_uri=https%3A%2F%2Fapp.example.test%2Fbye".to_owned(),
        "id_token_hint=not.a.token".to_owned(),
    ] {
        let step = browser.get(&format!("/logout?{query}")).await;
        assert_eq!(step.status, 400, "{query}");
        assert!(step.location.is_none());
    }
}
