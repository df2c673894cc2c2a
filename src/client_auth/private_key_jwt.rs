//! `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the client signs a short
//! JWT with one of its keys (`jwks` or `jwks_uri`, see `keys`), and sends it as
//! `client_assertion` with `client_assertion_type` `urn:…:jwt-bearer`.
//!
//! The assertion is accepted when its signature verifies with a key of the client, in an
//! asymmetric algorithm (the client's registered `token_endpoint_auth_signing_alg` when it has
//! one); `iss` and `sub` are the client id; `aud` names the issuer or the endpoint's URL; `exp`
//! is in the future and at most `MAX_LIFETIME` away; `iat` and `nbf`, when present, are not
//! more than `MAX_SKEW` in the future; and its `jti` was not used before (recorded in the
//! database until `exp`, so a replay is refused on every node).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ClientAuthError, Method, Presented};
use crate::app::App;
use crate::protocol::OAuthError;
use crate::protocol::client::CLIENT_SIGNING_ALGS;
use crate::protocol::form::Params;
use crate::store::ClientRecord;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest assertion looked at.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// An assertion may expire at most this long after the server's clock.
pub const MAX_LIFETIME: i64 = 300;
/// How far in the future an assertion's `iat` or `nbf` may be.
pub const MAX_SKEW: i64 = 60;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Reads `client_assertion` and `client_assertion_type` from the form. The client is the
/// `client_id` sent beside the assertion, or else the assertion's `sub` (read without
/// verifying: verification follows, against that client's keys, and requires `sub` to be
/// that client either way).
pub fn presented(params: &Params) -> Result<Presented, ClientAuthError> {
    let fail = |msg: &'static str| ClientAuthError {
        error: OAuthError::invalid_client(msg),
        basic_attempted: false,
    };
    match params.get("client_assertion_type") {
        Some(ASSERTION_TYPE) => {}
        Some(_) => return Err(fail("client_assertion_type is not supported")),
        None => {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request("client_assertion needs client_assertion_type"),
                basic_attempted: false,
            });
        }
    }
    let Some(assertion) = params.get("client_assertion") else {
        return Err(ClientAuthError {
            error: OAuthError::invalid_request("client_assertion is required"),
            basic_attempted: false,
        });
    };
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(fail("client_assertion is too long"));
    }
    // A `client_id` sent beside the assertion names the client; verification then requires
    // the assertion's `iss` and `sub` to be that client, so a mismatch fails there (and is
    // counted like any failed authentication).
    let client_id = match params.get("client_id") {
        Some(given) => given.to_owned(),
        None => {
            unverified_subject(assertion).ok_or_else(|| fail("client_assertion names no client"))?
        }
    };
    Ok(Presented::Assertion {
        client_id,
        assertion: assertion.to_owned(),
    })
}

/// The `sub` of a JWT's payload, read without checking anything.
fn unverified_subject(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: String,
    }
    payload::<Subject>(jwt).map(|s| s.sub)
}

/// The payload of the compact JWS `jwt` (three parts), read as `T`; nothing is verified.
fn payload<T: serde::de::DeserializeOwned>(jwt: &str) -> Option<T> {
    let mut parts = jwt.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(list) => list.iter().any(|a| a == wanted),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: String,
}

fn algorithm(name: &str) -> Option<Algorithm> {
    if !CLIENT_SIGNING_ALGS.contains(&name) {
        return None;
    }
    name.parse().ok()
}

pub struct PrivateKeyJwt;

impl Method for PrivateKeyJwt {
    async fn verify(
        &self,
        app: &App,
        client: &ClientRecord,
        presented: &Presented,
        endpoint: &str,
    ) -> Result<bool, OAuthError> {
        let Presented::Assertion { assertion, .. } = presented else {
            return Ok(false);
        };
        let Ok(header) = jsonwebtoken::decode_header(assertion) else {
            return Ok(false);
        };
        let alg_name = format!("{:?}", header.alg);
        let Some(alg) = algorithm(&alg_name) else {
            return Ok(false);
        };
        if let Some(required) = &client.metadata.token_endpoint_auth_signing_alg
            && *required != alg_name
        {
            return Ok(false);
        }
        let now = app.now();
        let keys = match app
            .client_keys
            .keys_for(&app.outbound, client, header.kid.as_deref(), now)
            .await
        {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(client_id = %client.client_id, error = %e, "client keys unavailable");
                return Ok(false);
            }
        };
        // The library checks the signature with the header's algorithm; the claims are read
        // once, here, and checked below against Latchkey's clock and both accepted audiences.
        if !keys.verifies(assertion, header.kid.as_deref(), alg) {
            return Ok(false);
        }
        let Some(claims) = payload::<Claims>(assertion) else {
            return Ok(false);
        };
        let issuer = app.config.issuer.as_str();
        let good = claims.iss == client.client_id
            && claims.sub == client.client_id
            && (claims.aud.names(issuer) || claims.aud.names(endpoint))
            && claims.exp > now
            && claims.exp <= now + MAX_LIFETIME
            && claims.iat.is_none_or(|iat| iat <= now + MAX_SKEW)
            && claims.nbf.is_none_or(|nbf| nbf <= now + MAX_SKEW)
            && !claims.jti.is_empty()
            && claims.jti.len() <= MAX_JTI_LEN;
        if !good {
            return Ok(false);
        }
        // Last, once everything else holds: the jti is spent only by a valid assertion.
        Ok(app
            .used_once
            .use_once(replay_key(&client.client_id, &claims.jti), claims.exp, now)
            .await?)
    }
}

/// The replay record of an assertion: fixed length whatever the client sends.
fn replay_key(client_id: &str, jti: &str) -> String {
    let digest = Sha256::new()
        .chain_update(client_id.as_bytes())
        .chain_update([0])
        .chain_update(jti.as_bytes())
        .finalize();
    format!("client-assertion:{}", URL_SAFE_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        assert_eq!(algorithm("RS256"), Some(Algorithm::RS256));
        assert_eq!(algorithm("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(algorithm("HS256"), None);
        assert_eq!(algorithm("none"), None);
    }

    #[test]
    fn the_subject_is_read_before_verification() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"client-1","iss":"client-1"}"#);
        assert_eq!(
            unverified_subject(&format!("x.{payload}.y")).as_deref(),
            Some("client-1")
        );
        assert_eq!(unverified_subject("garbage"), None);
        assert_eq!(unverified_subject(&format!("x.{payload}.y.z")), None);
        assert_eq!(unverified_subject(&format!("x.{payload}")), None);
    }
}
