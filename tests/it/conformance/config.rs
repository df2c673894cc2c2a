//! `oidcc-config-certification-test-plan` (Config OP): the discovery document and the JWKS.

use serde_json::Value;

use super::rp::fetch_jwks;
use crate::helpers::{Backend, spawn_app};

/// A BCP 47 language tag, as far as RFC 8414 §2 and the suite's "CheckDiscEndpointLocalesSyntax"
/// look at it.
fn looks_like_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=8).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// oidcc-discovery-endpoint-verification (OP-Discovery-Config and the OP-Discovery-* checks):
/// the discovery document is JSON at `<issuer>/.well-known/openid-configuration`, has every
/// member OpenID Connect Discovery §3 requires (`issuer`, `authorization_endpoint`,
/// `token_endpoint`, `jwks_uri`, `response_types_supported`, `subject_types_supported`,
/// `id_token_signing_alg_values_supported`) with values a code-flow OP must have (`code`,
/// `public`, `RS256`, never `none`), `userinfo_endpoint`, `scopes_supported` with `openid`,
/// `claims_supported`, `grant_types_supported` with `authorization_code`, explicit `false` for
/// the request and request_uri parameters (their default is true), well-formed locales and
/// scopes, `code_challenge_methods_supported` as an array, endpoints under the issuer; the
/// JWKS has a `kid`, `use` and `alg` on every key, distinct kids, and no private or symmetric
/// key material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_discovery_endpoint_verification() {
    let app = spawn_app(Backend::Postgres).await;
    let url = app.url("/.well-known/openid-configuration");
    let response = app.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = response.json().await.unwrap();

    // OpenID Connect Discovery §3: REQUIRED members.
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(doc.get(member).is_some(), "discovery lacks {member}");
    }
    // §4.3: the issuer is the URL the document was fetched under, minus the well-known path.
    let issuer = doc["issuer"].as_str().unwrap();
    assert_eq!(format!("{issuer}/.well-known/openid-configuration"), url);
    let parsed = url::Url::parse(issuer).unwrap();
    assert!(parsed.query().is_none() && parsed.fragment().is_none());
    assert!(!issuer.ends_with('/'));
    let array = |member: &str| -> Vec<String> {
        doc[member]
            .as_array()
            .unwrap_or_else(|| panic!("{member} is an array"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(array("response_types_supported").contains(&"code".to_owned()));
    let subject_types = array("subject_types_supported");
    assert!(!subject_types.is_empty());
    assert!(
        subject_types
            .iter()
            .all(|t| t == "public" || t == "pairwise")
    );
    let algs = array("id_token_signing_alg_values_supported");
    assert!(algs.contains(&"RS256".to_owned()), "Core §15.1: RS256");
    assert!(!algs.iter().any(|a| a.eq_ignore_ascii_case("none")));
    // Endpoints: absolute URLs under the issuer (so https whenever the issuer is).
    for member in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        if let Some(endpoint) = doc.get(member) {
            let endpoint = endpoint.as_str().unwrap();
            assert!(
                endpoint.starts_with(&format!("{issuer}/")),
                "{member}: {endpoint}"
            );
            assert!(url::Url::parse(endpoint).unwrap().fragment().is_none());
        }
    }
    assert!(
        doc["userinfo_endpoint"].is_string(),
        "userinfo_endpoint is recommended"
    );
    assert!(doc.get("registration_endpoint").is_none() || doc["registration_endpoint"].is_string());
    // RECOMMENDED / OPTIONAL members the suite checks.
    let scopes = array("scopes_supported");
    assert!(scopes.contains(&"openid".to_owned()));
    for scope in &scopes {
        assert!(
            !scope.is_empty()
                && scope
                    .chars()
                    .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)),
            "scope token {scope:?} (RFC 6749 §3.3)"
        );
    }
    let claims = array("claims_supported");
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "email",
        "name",
    ] {
        assert!(
            claims.contains(&claim.to_owned()),
            "claims_supported lacks {claim}"
        );
    }
    assert!(array("grant_types_supported").contains(&"authorization_code".to_owned()));
    assert!(array("response_modes_supported").contains(&"query".to_owned()));
    let auth_methods = array("token_endpoint_auth_methods_supported");
    assert!(auth_methods.contains(&"client_secret_basic".to_owned()));
    assert!(auth_methods.contains(&"client_secret_post".to_owned()));
    assert_eq!(doc["claims_parameter_supported"], false);
    // Signed request objects (RFC 9101) are supported; request_uri only from PAR.
    assert_eq!(doc["request_parameter_supported"], true);
    assert_eq!(
        doc["request_uri_parameter_supported"], false,
        "defaults to true if absent"
    );
    for tag in array("ui_locales_supported") {
        assert!(looks_like_language_tag(&tag), "ui_locales_supported: {tag}");
    }
    if doc.get("claims_locales_supported").is_some() {
        for tag in array("claims_locales_supported") {
            assert!(
                looks_like_language_tag(&tag),
                "claims_locales_supported: {tag}"
            );
        }
    }
    let methods = array("code_challenge_methods_supported");
    assert!(methods.contains(&"S256".to_owned()) && !methods.contains(&"plain".to_owned()));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);

    // The JWKS (ValidateServerJWKs and friends, in fetch_jwks), with a key for every
    // advertised ID token algorithm.
    let (raw, _) = fetch_jwks(&app).await;
    for alg in &algs {
        assert!(
            raw["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["alg"] == alg.as_str()),
            "no key for {alg}"
        );
    }
}
