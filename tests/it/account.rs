//! Account lifecycle: a forced password change at the next login, and the account page where
//! users see and withdraw the access they gave.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, Browser, PASSWORD, TestClient, code_form, hidden_field, spawn_app};

both_backends!(
    a_required_password_reset_is_done_before_the_login_completes,
    users_see_and_withdraw_the_access_they_gave,
);

async fn a_required_password_reset_is_done_before_the_login_completes(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("alice").await;
    let sub = user["sub"].as_str().unwrap();
    let client = TestClient::from_registration(&app.create_web_client().await);
    let (status, updated) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password_reset_required": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["password_reset_required"], true);

    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.login(&location, "alice", PASSWORD).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Choose a new password"));
    assert!(
        !page
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().contains("latchkey_session")),
        "no session yet"
    );
    let form = |new: &str, again: &str| {
        vec![
            (
                "interaction".to_owned(),
                hidden_field(&page.body, "interaction").unwrap(),
            ),
            ("sub".to_owned(), hidden_field(&page.body, "sub").unwrap()),
            (
                "csrf_token".to_owned(),
                hidden_field(&page.body, "csrf_token").unwrap(),
            ),
            ("new_password".to_owned(), new.to_owned()),
            ("confirm_password".to_owned(), again.to_owned()),
        ]
    };
    let post = |fields: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = app.url("/password");
        let http = browser.http.clone();
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        post(form("brand new secret", "something else"))
            .await
            .status(),
        400
    );
    assert_eq!(post(form("short", "short")).await.status(), 400);
    assert_eq!(
        post(form(PASSWORD, PASSWORD)).await.status(),
        400,
        "the old password is refused"
    );
    let mut forged = form("brand new secret", "brand new secret");
    forged[2].1 = "1.forged".to_owned();
    assert_eq!(post(forged).await.status(), 400);
    let done = post(form("brand new secret", "brand new secret")).await;
    assert_eq!(done.status(), 303);
    assert!(
        done.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/consent")
    );
    let (_, fetched) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(fetched["password_reset_required"], false);
    // The old password is gone; the new one works.
    let other = Browser::new(&app);
    let location = other.authorize_location(&client, "openid").await;
    assert_eq!(other.login(&location, "alice", PASSWORD).await.status, 401);
    assert_eq!(
        other
            .login(&location, "alice", "brand new secret")
            .await
            .status,
        303
    );
}

async fn users_see_and_withdraw_the_access_they_gave(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let q = browser
        .code_flow(&client, "openid email offline_access", None, &[])
        .await;
    let (_, tokens, _) = app
        .token(&client, &code_form(&client, &q["code"], None))
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A fresh browser sees the account page's own login form.
    let fresh = Browser::new(&app);
    let page = fresh.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/account/login\""));
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    assert_eq!(
        fresh
            .post_form(
                "/account/login",
                &[
                    ("csrf_token", &csrf),
                    ("username", "alice"),
                    ("password", "wrong")
                ]
            )
            .await
            .status,
        401
    );
    let signed_in = fresh
        .post_form(
            "/account/login",
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location.as_deref(), Some("/account"));

    let account = fresh.get("/account").await;
    assert!(account.body.contains("Test Web App"), "{}", account.body);
    assert!(account.body.contains("your email address"));
    let csrf = hidden_field(&account.body, "csrf_token").unwrap();
    let forged = fresh
        .post_form(
            "/account/consents",
            &[("csrf_token", "forged"), ("client_id", &client.client_id)],
        )
        .await;
    assert_eq!(forged.status, 400);
    let withdrawn = fresh
        .post_form(
            "/account/consents",
            &[("csrf_token", &csrf), ("client_id", &client.client_id)],
        )
        .await;
    assert_eq!(withdrawn.status, 303);
    let account = fresh.get("/account").await;
    assert!(!account.body.contains("Test Web App"));
    assert!(
        account
            .body
            .contains("You have not given any application access.")
    );

    // The application's refresh family ended, and the next request asks for consent again.
    let (status, body, _) = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let step = browser.authorize_for(&client, "openid email").await;
    assert!(step.location.unwrap().starts_with("/consent"));
    let events = app.events("kind=consent_withdrawn").await;
    assert_eq!(events.len(), 1);
}
