//! Discovery documents and JWKS.

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, TestClient, authorize_params, fetch_json, spawn_app,
};

both_backends!(
    discovery_lists_every_endpoint_and_capability,
    urls_come_from_the_issuer_never_from_host_headers,
);

async fn discovery_lists_every_endpoint_and_capability(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.discovery().await;
    assert_eq!(doc["issuer"], app.base.as_str());
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[key].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{key}: {url}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let rfc8414 = fetch_json(
        app.http
            .get(app.url("/.well-known/oauth-authorization-server")),
    )
    .await;
    assert_eq!(rfc8414["issuer"], app.base.as_str());
}

both_backends!(cors_is_offered_to_api_endpoints_and_never_to_the_authorization_endpoint);

/// RFC 9700 §2.6: browser apps may call discovery, JWKS, token and userinfo cross-origin, but
/// the authorization endpoint must not support CORS.
async fn cors_is_offered_to_api_endpoints_and_never_to_the_authorization_endpoint(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let preflight = |path: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example.test")
            .header("access-control-request-method", "POST")
            .send()
    };
    for path in [
        "/token",
        "/userinfo",
        "/revoke",
        "/introspect",
        "/jwks",
        "/.well-known/openid-configuration",
    ] {
        let r = preflight(path).await.unwrap();
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{path}"
        );
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none(),
            "{path}"
        );
    }
    for path in [
        "/authorize",
        "/login",
        "/consent",
        "/admin/clients",
        "/account",
    ] {
        let r = preflight(path).await.unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path} must not offer CORS"
        );
        let get = app
            .http
            .get(app.url(path))
            .header("origin", "https://spa.example.test")
            .send()
            .await
            .unwrap();
        assert!(
            get.headers().get("access-control-allow-origin").is_none(),
            "{path} must not offer CORS"
        );
    }
}

both_backends!(documents_carry_the_headers_every_answer_carries);

/// Discovery and JWKS are answered ahead of the layer stack (`http::documents`); they must
/// still carry what the stack adds to every answer, and `HEAD` (which takes the routed path)
/// must agree with `GET`.
async fn documents_carry_the_headers_every_answer_carries(backend: Backend) {
    let app = spawn_app(backend).await;
    let routed = app.http.get(app.url("/healthz")).send().await.unwrap();
    for (path, cache) in [
        ("/.well-known/openid-configuration", "public, max-age=300"),
        (
            "/.well-known/oauth-authorization-server",
            "public, max-age=300",
        ),
        ("/jwks", "public, max-age=60"),
    ] {
        let get = app
            .http
            .get(app.url(path))
            .header("origin", "https://spa.example.test")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200, "{path}");
        let headers = get.headers().clone();
        let body = get.bytes().await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        for name in [
            "x-content-type-options",
            "referrer-policy",
            "x-frame-options",
            "content-security-policy",
        ] {
            assert_eq!(
                headers.get(name),
                routed.headers().get(name),
                "{path} {name}"
            );
            assert!(headers.contains_key(name), "{path} {name}");
        }
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(headers["cache-control"], cache, "{path}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        assert!(headers.get("access-control-allow-credentials").is_none());
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        // A fresh request id per answer, or the one the request came with.
        let first = headers["x-request-id"].to_str().unwrap().to_owned();
        let again = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(again.headers()["x-request-id"].len(), 16, "{path}");
        assert_ne!(again.headers()["x-request-id"], first.as_str(), "{path}");
        let echoed = app
            .http
            .get(app.url(path))
            .header("x-request-id", "lb-assigned-7")
            .send()
            .await
            .unwrap();
        assert_eq!(echoed.headers()["x-request-id"], "lb-assigned-7");

        let head = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        for name in [
            "content-type",
            "cache-control",
            "content-length",
            "content-security-policy",
        ] {
            assert_eq!(
                head.headers().get(name),
                headers.get(name),
                "HEAD {path} {name}"
            );
        }
        // Other methods still meet the routes: a JSON 405.
        let post = app.http.post(app.url(path)).send().await.unwrap();
        assert_eq!(post.status(), 405, "{path}");
        assert!(post.headers().contains_key("x-request-id"), "{path}");
    }
    // A path that merely starts like a document is not one.
    let r = app.http.get(app.url("/jwks/extra")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

/// Every URL Latchkey builds comes from `LATCHKEY_ISSUER`: a request's `Host`,
/// `X-Forwarded-Host`, `X-Forwarded-Proto` or `Forwarded` header changes none of them.
async fn urls_come_from_the_issuer_never_from_host_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let hostile = |request: reqwest::RequestBuilder| {
        request
            .header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
            .header("Forwarded", "host=evil.example;proto=https")
    };
    let mut answers = Vec::new();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks",
        "/logout",
    ] {
        let r = hostile(app.http.get(app.url(path))).send().await.unwrap();
        let headers = format!("{:?}", r.headers());
        answers.push(format!("{path}: {headers} {}", r.text().await.unwrap()));
    }
    // A whole code flow under hostile headers: every redirect, page and token.
    let browser = Browser::new(&app);
    let query = serde_urlencoded::to_string(authorize_params(&client, "openid", &[("state", "h")]))
        .unwrap();
    let r = hostile(browser.http.get(app.url(&format!("/authorize?{query}"))))
        .send()
        .await
        .unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    answers.push(format!("authorize: {:?}", r.headers()));
    let step = browser.login(&login, "alice", PASSWORD).await;
    let (page, answer) = browser.consent(&step.location.unwrap(), "allow").await;
    answers.push(page.body);
    let location = answer.location.unwrap();
    assert!(location.starts_with(&client.redirect_uri));
    let iss = crate::helpers::query_of(&location)["iss"].clone();
    assert_eq!(iss, app.base);
    // A later error redirect, too.
    let r = hostile(
        browser
            .http
            .get(app.url(&format!("/authorize?{query}&prompt=bogus"))),
    )
    .send()
    .await
    .unwrap();
    answers.push(format!("error redirect: {:?}", r.headers()));
    for answer in &answers {
        assert!(!answer.contains("evil.example"), "{answer}");
    }
}
