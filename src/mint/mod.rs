//! The only code that builds and signs tokens: RFC 9068 access tokens, OpenID Connect ID
//! tokens, and the random strings used as refresh tokens and codes. It also verifies the JWTs
//! Latchkey itself issued (access tokens at userinfo and introspection, `id_token_hint`).
//!
//! JWTs are assembled here (base64url header and claims) and signed with the key set's
//! pre-parsed keys; `jsonwebtoken` verifies. Nothing here does I/O.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::keys::{KeyError, KeySet, SigningKey};
use crate::protocol::alg::SigningAlg;

/// RFC 9068 §2.2 claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// The token family (grant) this token descends from; revoking the family makes the
    /// token inactive. Absent for client_credentials tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub grant_id: Option<String>,
    /// RFC 9449 §6.1: the key a DPoP-bound token is bound to; it must be presented with a
    /// proof signed by that key.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
    /// RFC 8693 §4.1: who acts for the subject (a token exchange with an actor token), the
    /// earlier actors nested inside.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<serde_json::Value>,
    /// RFC 8693 §4.4: who may act for the subject; honoured by token exchange when present.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub may_act: Option<serde_json::Value>,
}

/// The confirmation claim (RFC 7800) of a DPoP-bound token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the client's proof key.
    pub jkt: String,
}

/// OpenID Connect Core §2 claims of an ID token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    pub azp: String,
    pub sid: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub amr: Vec<String>,
    /// The upstream identity provider the user logged in at (its id), when they did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idp: Option<String>,
}

/// Serializes `claims` and signs them under `header_b64` (a pre-encoded JOSE header).
fn sign_jwt<C: Serialize>(
    key: &SigningKey,
    header_b64: &str,
    claims: &C,
) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 400);
    out.push_str(header_b64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
    Ok(out)
}

/// Signs an access token (`typ: at+jwt`) with the active key of `alg`.
pub fn access_token(
    keys: &KeySet,
    alg: SigningAlg,
    claims: &AccessTokenClaims,
) -> Result<String, KeyError> {
    let key = keys.signing_key(alg)?;
    sign_jwt(&key, &key.access_token_header, claims)
}

/// OpenID Connect Back-Channel Logout 1.0 §2.4 claims of a logout token: no `nonce`, an
/// `events` member naming the logout event, `sid` and `sub`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub events: serde_json::Value,
    pub sid: String,
    pub sub: String,
}

/// The `events` member of every logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Signs a logout token (`typ: logout+jwt`) with the active key of `alg`, the algorithm the
/// client's ID tokens use.
pub fn logout_token(
    keys: &KeySet,
    alg: SigningAlg,
    claims: &LogoutTokenClaims,
) -> Result<String, KeyError> {
    let key = keys.signing_key(alg)?;
    sign_jwt(&key, &key.logout_token_header, claims)
}

/// Signs an ID token (`typ: JWT`) with the active key of `alg`.
pub fn id_token(
    keys: &KeySet,
    alg: SigningAlg,
    claims: &IdTokenClaims,
) -> Result<String, KeyError> {
    let key = keys.signing_key(alg)?;
    sign_jwt(&key, &key.jwt_header, claims)
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the hash of the access token's
/// ASCII octets, with the hash the ID token's algorithm uses (SHA-512 for Ed25519).
pub fn at_hash(access_token: &str, id_token_alg: SigningAlg) -> String {
    match id_token_alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => {
            let digest = sha2::Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..16])
        }
        SigningAlg::EdDsa => {
            let digest = sha2::Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..32])
        }
    }
}

/// Why a presented JWT was not accepted. Callers map every variant to one generic answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("wrong token type")]
    WrongType,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature or claims")]
    Invalid,
    #[error("expired")]
    Expired,
}

pub(crate) fn jwt_alg(alg: SigningAlg) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
        SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// Verifies a JWT signed by one of our keys and issued by `issuer`; expiry is left to the
/// caller (it reads the clock). `expected_typ` is compared case-insensitively.
fn verify<C: serde::de::DeserializeOwned>(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    expected_typ: &[&str],
) -> Result<C, VerifyError> {
    if token.len() > 16 * 1024 {
        return Err(VerifyError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let typ = header.typ.as_deref().unwrap_or("");
    if !expected_typ.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = keys.verifying_key(kid).ok_or(VerifyError::UnknownKey)?;
    let alg = jwt_alg(key.alg);
    if header.alg != alg {
        return Err(VerifyError::Invalid);
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<C>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| VerifyError::Invalid)
}

/// Verifies an access token Latchkey issued and checks it has not expired at `now`.
pub fn verify_access_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessTokenClaims, VerifyError> {
    let claims: AccessTokenClaims = verify(keys, token, issuer, &["at+jwt", "application/at+jwt"])?;
    if claims.exp <= now {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}

/// Verifies an ID token Latchkey issued and checks it has not expired at `now` (a token
/// exchange's subject or actor token).
pub fn verify_id_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<IdTokenClaims, VerifyError> {
    let claims: IdTokenClaims = verify(keys, token, issuer, &["JWT", ""])?;
    if claims.exp <= now {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}

/// Claims of an `id_token_hint` that matter to the authorization endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    pub aud: serde_json::Value,
}

/// Verifies an ID token Latchkey issued, used as `id_token_hint`. An expired ID token is still
/// a valid hint (OpenID Connect Core §3.1.2.1), so expiry is not checked.
pub fn verify_id_token_hint(
    keys: &KeySet,
    token: &str,
    issuer: &str,
) -> Result<IdTokenHint, VerifyError> {
    verify(keys, token, issuer, &["JWT", ""])
}

#[cfg(test)]
mod tests;
