//! The relying party's side of the battery: what a client that trusts nothing but discovery
//! checks of a token response, a JWKS and an ID token (OpenID Connect Core §3.1.3.7, the
//! suite's "ValidateIdToken" and friends).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::TestApp;

/// RFC 6749 §5.1 and OpenID Connect Core §3.1.3.3: a Bearer token, `expires_in`, JSON, never
/// cached.
pub(super) fn check_token_response(body: &Value, headers: &reqwest::header::HeaderMap) {
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "{body}");
    let content_type = headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(
        cache.split(',').any(|d| d.trim() == "no-store"),
        "Cache-Control: {cache}"
    );
    if let Some(pragma) = headers.get("pragma") {
        assert_eq!(pragma, "no-cache");
    }
}

/// What `validate_id_token` expects of `nonce`.
#[derive(Clone, Copy)]
pub(super) enum Nonce<'a> {
    /// The request carried this nonce: the ID token must repeat it (Core §3.1.3.7 step 11).
    Is(&'a str),
    /// No nonce was sent: none may appear.
    Absent,
    /// A refreshed ID token (Core §12.2): if present, the original value.
    AbsentOr(&'a str),
}

/// The JWKS at `jwks_uri` (from discovery), checked like the suite's "ValidateServerJWKs",
/// "CheckForKeyIdInServerJWKs", "CheckDistinctKeyIdValueInServerJWKs" and
/// "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys".
pub(super) async fn fetch_jwks(app: &TestApp) -> (Value, JwkSet) {
    let discovery = app.discovery().await;
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let response = app.http.get(jwks_uri).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json")
            || content_type.starts_with("application/jwk-set+json"),
        "JWKS content type {content_type}"
    );
    let raw: Value = response.json().await.unwrap();
    let keys = raw["keys"].as_array().expect("a JWK Set has keys");
    assert!(!keys.is_empty(), "JWKS is empty");
    let mut kids = BTreeSet::new();
    for key in keys {
        let kid = key["kid"].as_str().expect("every key has a kid");
        assert!(kids.insert(kid.to_owned()), "kid {kid} appears twice");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["alg"].is_string(), "{key}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "JWKS publishes `{private}`: {key}"
            );
        }
        match key["kty"].as_str().unwrap() {
            "RSA" => {
                let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
                assert!(n.len() >= 256, "RSA keys have at least 2048 bits");
                assert_eq!(key["alg"], "RS256");
            }
            "EC" => {
                assert_eq!(key["crv"], "P-256");
                assert_eq!(key["alg"], "ES256");
            }
            "OKP" => {
                assert_eq!(key["crv"], "Ed25519");
                assert_eq!(key["alg"], "EdDSA");
            }
            other => panic!("unexpected key type {other}"),
        }
    }
    let set: JwkSet = serde_json::from_value(raw.clone()).expect("JWKS parses");
    (raw, set)
}

/// `at_hash` as OpenID Connect Core §3.1.3.6 defines it: the left half of the hash of the
/// access token, with the hash of the ID token's `alg` (SHA-512 for EdDSA with Ed25519).
fn expected_at_hash(alg: Algorithm, access_token: &str) -> String {
    match alg {
        Algorithm::RS256 | Algorithm::ES256 => {
            URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
        }
        Algorithm::EdDSA => {
            URL_SAFE_NO_PAD.encode(&sha2::Sha512::digest(access_token.as_bytes())[..32])
        }
        other => panic!("unexpected ID token algorithm {other:?}"),
    }
}

/// Validates an ID token the way OpenID Connect Core §3.1.3.7 tells a relying party to (and
/// the suite's "ValidateIdToken", "ValidateIdTokenNonce", "ValidateIdTokenSignature",
/// "ValidateIdTokenSignatureUsingKid", "CheckForSubjectInIdToken", "ValidateAtHash"), with
/// nothing but discovery and the JWKS. Returns the claims.
pub(super) async fn validate_id_token(
    app: &TestApp,
    id_token: &str,
    client_id: &str,
    nonce: Nonce<'_>,
    access_token: Option<&str>,
) -> Value {
    let discovery = app.discovery().await;
    let issuer = discovery["issuer"].as_str().unwrap();
    assert_eq!(issuer, app.base);

    // The header: a real signature algorithm (decode_header refuses `none`), the one the
    // discovery document advertises, and the key it was made with.
    let header = jsonwebtoken::decode_header(id_token).expect("a JWS header with a known alg");
    let alg_name = serde_json::to_value(header.alg).unwrap();
    assert!(
        discovery["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&alg_name),
        "alg {alg_name} is not advertised"
    );
    if let Some(typ) = &header.typ {
        assert!(typ.eq_ignore_ascii_case("JWT"), "typ {typ}");
    }
    let kid = header
        .kid
        .as_deref()
        .expect("the ID token names its key (kid)");
    let (_, jwks) = fetch_jwks(app).await;
    let jwk = jwks.find(kid).expect("the kid is published at jwks_uri");
    assert_eq!(
        serde_json::to_value(jwk.common.key_algorithm).unwrap(),
        alg_name,
        "the JWK's alg matches the header's"
    );

    // Signature, iss, aud.
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    validation.validate_exp = false; // checked below against the server's (test) clock
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("the ID token verifies against the JWKS")
        .claims;

    // Core §2 and §3.1.3.7.
    assert_eq!(claims["iss"], issuer);
    match &claims["aud"] {
        Value::String(aud) => assert_eq!(aud, client_id),
        Value::Array(auds) => {
            assert!(auds.contains(&json!(client_id)), "{claims}");
            if auds.len() > 1 {
                assert!(claims.get("azp").is_some(), "several audiences need azp");
            }
        }
        other => panic!("aud is {other}"),
    }
    if let Some(azp) = claims.get("azp") {
        assert_eq!(azp, client_id, "azp");
    }
    let sub = claims["sub"].as_str().expect("sub is a string");
    assert!(
        !sub.is_empty() && sub.len() <= 255 && sub.is_ascii(),
        "sub {sub}"
    );
    let now = app.app.now();
    let iat = claims["iat"].as_i64().expect("iat is a number");
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!(exp > iat, "exp {exp} must be after iat {iat}");
    assert!(exp > now, "the ID token has expired");
    assert!((iat - now).abs() <= 5, "iat {iat} is not now ({now})");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time is present");
    assert!(auth_time <= iat, "auth_time {auth_time} after iat {iat}");
    match nonce {
        Nonce::Is(n) => assert_eq!(claims["nonce"], n, "nonce"),
        Nonce::Absent => assert!(claims.get("nonce").is_none(), "unexpected nonce"),
        Nonce::AbsentOr(n) => {
            if let Some(v) = claims.get("nonce") {
                assert_eq!(v, n, "a refreshed ID token repeats the original nonce");
            }
        }
    }
    if let Some(access_token) = access_token {
        assert_eq!(
            claims["at_hash"].as_str().expect("at_hash is present"),
            expected_at_hash(header.alg, access_token),
            "at_hash"
        );
    }
    // Code flow: c_hash is not required (it matters only when the ID token comes from the
    // authorization endpoint).
    claims
}
