//! Who may call the admin API: only the bearer of the admin token (none when no token is
//! configured), refused alike whatever the route or method, so that a stranger cannot map the
//! API; wrong tokens are throttled per address.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, AdminAnswer, AdminBody, Backend, settings, spawn_app, spawn_app_with,
};

both_backends!(
    wrong_methods_do_not_reveal_admin_routes,
    every_admin_route_needs_the_admin_token,
    admin_api_answers_401_when_no_admin_token_is_configured,
    wrong_admin_tokens_are_throttled_per_address,
);

/// Every route of the admin API, with a method it answers to.
fn every_route() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/admin/clients"),
        (Method::GET, "/admin/clients"),
        (Method::GET, "/admin/clients/some-id"),
        (Method::PUT, "/admin/clients/some-id"),
        (Method::DELETE, "/admin/clients/some-id"),
        (Method::POST, "/admin/clients/some-id/secret"),
        (Method::POST, "/admin/users"),
        (Method::GET, "/admin/users"),
        (Method::GET, "/admin/users/some-sub"),
        (Method::PATCH, "/admin/users/some-sub"),
        (Method::DELETE, "/admin/users/some-sub"),
        (Method::GET, "/admin/keys"),
        (Method::POST, "/admin/keys/rotate"),
        (Method::GET, "/admin/no-such-thing"),
    ]
}

fn assert_unauthorized(status: u16, headers: &reqwest::header::HeaderMap, text: &str, what: &str) {
    assert_eq!(status, 401, "{what}: {text}");
    let challenge = headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"))
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

async fn every_admin_route_needs_the_admin_token(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in every_route() {
        let what = format!("{method} {path}");
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(method.clone(), path, None, AdminBody::Json(&json!({})))
            .await;
        assert_unauthorized(status, &headers, &text, &format!("{what} without token"));
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                method.clone(),
                path,
                Some("wrong-token-wrong-token"),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(
            status,
            &headers,
            &text,
            &format!("{what} with a wrong token"),
        );
        // A prefix of the right token must not pass either.
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                method.clone(),
                path,
                Some(&ADMIN_TOKEN[..10]),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(status, &headers, &text, &format!("{what} with a prefix"));
        let response = app
            .http
            .request(method, app.url(path))
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{what} with Basic");
    }
    // Nothing was created by the refused requests.
    let (status, body) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
    // The right token, with the scheme in another case, is accepted (RFC 9110 §11.1).
    let response = app
        .http
        .get(app.url("/admin/keys"))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = app.admin(Method::GET, "/admin/no-such-thing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

async fn admin_api_answers_401_when_no_admin_token_is_configured(backend: Backend) {
    let app = spawn_app_with(backend, |env| {
        env.retain(|(k, _)| k != "LATCHKEY_ADMIN_TOKEN")
    })
    .await;
    assert!(app.app.config.admin_token.is_none());
    // Nothing to guess, so nothing is throttled: 401 however often a token is sent.
    for _ in 0..110 {
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                Method::GET,
                "/admin/clients",
                Some(ADMIN_TOKEN),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(status, &headers, &text, "repeated");
    }
    for (method, path) in every_route() {
        let what = format!("{method} {path}");
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(method.clone(), path, Some(ADMIN_TOKEN), AdminBody::None)
            .await;
        assert_unauthorized(status, &headers, &text, &what);
        let AdminAnswer {
            status,
            headers,
            text,
        } = app.admin_request(method, path, None, AdminBody::None).await;
        assert_unauthorized(status, &headers, &text, &what);
    }
}

/// A wrong method on a real admin path is answered like any other unauthenticated request
/// (401), so the `Allow` header of a 405 cannot map the admin API for a stranger; with the
/// token it is a JSON 405.
async fn wrong_methods_do_not_reveal_admin_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        ("POST", "/admin/users/x"),
        ("DELETE", "/admin/keys"),
        ("PUT", "/admin/events"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert!(r.headers().get("allow").is_none());
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    // Outside the admin API a wrong method is a JSON 405 too.
    let r = app.http.put(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// Guessing the admin token: a hundred wrong tokens are free, then back-offs, and a locked address
/// waits even with the right token. Requests without a token do not count, and another
/// address is not affected (addresses told apart through a trusted proxy's X-Forwarded-For).
async fn wrong_admin_tokens_are_throttled_per_address(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]),
    )
    .await;
    let call = |token: Option<&'static str>, from: &'static str| {
        let mut request = app
            .http
            .get(app.url("/admin/clients"))
            .header("x-forwarded-for", from);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    const GUESSER: &str = "198.51.100.7";
    const OPERATOR: &str = "192.0.2.10";
    // No token at all: refused, never counted.
    for _ in 0..30 {
        assert_eq!(call(None, GUESSER).await.status(), 401);
    }
    assert_eq!(call(Some(ADMIN_TOKEN), GUESSER).await.status(), 200);
    // A hundred free failures, back-offs of 1..8 s waited out, and at the 105th 16 s.
    for i in 0..105 {
        let r = call(Some("not-the-admin-token-at-all"), GUESSER).await;
        assert_eq!(r.status(), 401, "guess {i}");
        if i >= 100 {
            app.clock.advance(9);
        }
    }
    app.clock.advance(-9);
    let locked = call(Some(ADMIN_TOKEN), GUESSER).await;
    assert_eq!(locked.status(), 429, "even the right token waits");
    assert!(locked.headers().contains_key("retry-after"));
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    // Another address is not held up.
    assert_eq!(call(Some(ADMIN_TOKEN), OPERATOR).await.status(), 200);
    app.clock.advance(17);
    assert_eq!(call(Some(ADMIN_TOKEN), GUESSER).await.status(), 200);
}
