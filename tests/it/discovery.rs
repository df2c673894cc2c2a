//! Discovery documents and JWKS.

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(discovery_lists_every_endpoint_and_capability);

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
    let rfc8414: serde_json::Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
