//! `/admin/upstreams`: registration, validation, the secret never answered, replacement and
//! deletion; `GET /admin/users/{sub}` lists identities.

use reqwest::Method;
use serde_json::{Value, json};

use super::spawn;
use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, AdminBody, Backend};

both_backends!(
    upstreams_are_registered_listed_replaced_and_deleted,
    upstream_registrations_are_validated,
);

fn google() -> Value {
    json!({
        "id": "google", "display_name": "Google", "kind": "oidc",
        "issuer": "https://accounts.google.com", "client_id": "123.apps.googleusercontent.com",
        "client_secret": "s3cret-value", "claims": {"email": "email", "name": "name"},
        "create_users": true, "link_existing": "verified_email",
    })
}

async fn upstreams_are_registered_listed_replaced_and_deleted(backend: Backend) {
    let (app, _) = spawn(backend).await;
    let (status, created) = app
        .admin(Method::POST, "/admin/upstreams", Some(&google()))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["redirect_uri"],
        format!("{}/upstream/google/callback", app.base)
    );
    assert_eq!(created["scope"], "openid email profile", "default scope");
    assert_eq!(created["link_existing"], "verified_email");
    assert!(created.get("client_secret").is_none(), "{created}");
    assert!(!created.to_string().contains("s3cret-value"));

    let (status, again) = app
        .admin(Method::POST, "/admin/upstreams", Some(&google()))
        .await;
    assert_eq!((status, again["error"].as_str()), (409, Some("conflict")));

    let (status, shown) = app
        .admin(Method::GET, "/admin/upstreams/google", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["client_id"], "123.apps.googleusercontent.com");
    assert!(!shown.to_string().contains("s3cret-value"));
    let (status, list) = app.admin(Method::GET, "/admin/upstreams", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("s3cret-value"));

    // PUT without a secret keeps the stored one; the id cannot change.
    let mut replacement = google();
    replacement.as_object_mut().unwrap().remove("client_secret");
    replacement["display_name"] = json!("Google Workspace");
    let (status, replaced) = app
        .admin(Method::PUT, "/admin/upstreams/google", Some(&replacement))
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["display_name"], "Google Workspace");
    let stored = app.app.store.get_upstream("google").await.unwrap().unwrap();
    assert_eq!(
        latchkey::upstream::open_secret(&app.app, "google", &stored.secret_sealed).unwrap(),
        "s3cret-value",
        "kept, and sealed at rest"
    );
    assert!(
        !String::from_utf8_lossy(&stored.secret_sealed).contains("s3cret-value"),
        "never stored in the clear"
    );
    replacement["id"] = json!("other");
    let (status, _) = app
        .admin(Method::PUT, "/admin/upstreams/google", Some(&replacement))
        .await;
    assert_eq!(status, 400);

    let answer = app
        .admin_request(Method::GET, "/admin/upstreams", None, AdminBody::None)
        .await;
    assert_eq!(answer.status, 401, "no token, no upstreams");
    let answer = app
        .admin_request(
            Method::GET,
            "/admin/upstreams/google",
            Some(ADMIN_TOKEN),
            AdminBody::None,
        )
        .await;
    assert_eq!(answer.status, 200);

    let (status, _) = app
        .admin(Method::DELETE, "/admin/upstreams/google", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .admin(Method::GET, "/admin/upstreams/google", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .admin(Method::DELETE, "/admin/upstreams/google", None)
        .await;
    assert_eq!(status, 404);
}

async fn upstream_registrations_are_validated(backend: Backend) {
    let (app, _) = spawn(backend).await;
    let refused = |k: &'static str, v: Value| {
        let mut body = google();
        body[k] = v;
        body
    };
    let mut no_secret = google();
    no_secret.as_object_mut().unwrap().remove("client_secret");
    for body in [
        refused("id", json!("Google!")),
        refused("id", json!("")),
        refused("kind", json!("saml")),
        refused("issuer", json!("http://accounts.example.com")),
        refused("issuer", json!("https://10.0.0.7")),
        refused("issuer", json!("https://169.254.169.254/")),
        refused("issuer", json!("https://localhost/")),
        refused("issuer", json!("https://user:pw@id.example.com")),
        refused("link_existing", json!("any_email")),
        refused("claims", json!({"sub": "sub"})),
        refused("scope", json!("email")),
        refused("token_endpoint", json!("https://id.example.com/token")),
        refused("client_secret", json!(5)),
        refused("unknown_field", json!(true)),
        no_secret,
        json!({"id": "gh", "display_name": "GitHub", "kind": "oauth2", "client_id": "c",
            "client_secret": "s", "authorization_endpoint": "https://github.com/login/oauth/authorize",
            "token_endpoint": "https://github.com/login/oauth/access_token",
            "userinfo_endpoint": "https://api.github.com/user"}),
    ] {
        let (status, answer) = app
            .admin(Method::POST, "/admin/upstreams", Some(&body))
            .await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"], "invalid_request", "{answer}");
        assert!(!answer.to_string().contains("s3cret-value"), "{answer}");
    }
    let (status, answer) = app
        .admin(
            Method::POST,
            "/admin/upstreams",
            Some(
                &json!({"id": "gh", "display_name": "GitHub", "kind": "oauth2",
                "client_id": "c", "client_secret": "s", "subject_claim": "id",
                "authorization_endpoint": "https://github.com/login/oauth/authorize",
                "token_endpoint": "https://github.com/login/oauth/access_token",
                "userinfo_endpoint": "https://api.github.com/user"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = app.admin(Method::GET, "/admin/upstreams", None).await;
    assert_eq!(status, 200);
}
