//! DPoP (RFC 9449): proofs of possession of a client-held key, checked per §4.3 at the token
//! endpoint and at userinfo, and the server nonces of §8 (`nonce`).
//!
//! A proof is a JWT the client signs for one request with a key it holds, carrying that key's
//! public half in its header. It is accepted when: `typ` is `dpop+jwt`; `alg` is one of
//! `ALGS` and fits the key; the `jwk` is a public key only; the signature verifies with it;
//! `htm` is the request's method and `htu` the endpoint's URL (built from the issuer, query and
//! fragment ignored); `iat` is within `MAX_AGE` of the server's clock; `ath`, where an access
//! token is presented, is its hash; a `nonce` that is sent is valid (and one is sent where the
//! configuration requires it); and last, its `jti` was not used before with that key, on any
//! node (the shared replay store, until the proof is too old to pass the `iat` check anyway).
//!
//! Parsing and verification go through `jsonwebtoken` (the key from the header's JWK, the
//! RFC 7638 thumbprint that tokens are bound to, `cnf.jkt`); nothing cryptographic is done
//! here by hand. Nothing here knows HTTP: the caller says which method and URL to expect.

pub mod nonce;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::crypto::{constant_time_eq, sha256_b64};
use crate::protocol::{ErrorCode, OAuthError};
use nonce::DpopNonces;

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub use crate::protocol::discovery::DPOP_SIGNING_ALGS as ALGS;
/// How far a proof's `iat` may lie from the server's clock, either way (seconds).
pub const MAX_AGE: i64 = 60;
/// The longest proof looked at (a 4096-bit RSA key and its signature fit well within).
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;
/// Members that only a private (or symmetric) JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What the request a proof came with must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's HTTP method (`htm`).
    pub method: &'a str,
    /// The endpoint's URL as the issuer builds it (`htu`).
    pub url: &'a str,
    /// The access token presented with the proof, whose hash `ath` must be (resources only).
    pub access_token: Option<&'a str>,
    /// Whether the proof must carry a server nonce.
    pub nonce_required: bool,
}

/// A proof that passed every check; its `jti` is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key: what a token is bound to.
    pub jkt: String,
}

/// A proof that passed every check but the `jti` use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

pub fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

fn use_nonce(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::UseDpopNonce, description)
}

/// Checks a proof against the request (`verify`), then spends its `jti` on every node.
pub async fn check(app: &App, proof: &str, expected: &Expected<'_>) -> Result<Proof, OAuthError> {
    let now = app.now();
    let verified = verify(proof, expected, &app.dpop_nonces, now)?;
    // Remembered until the proof's `iat` falls out of the window: after that the `iat`
    // check refuses it without the store's help.
    let fresh = app
        .used_once
        .use_once(
            replay_key(&verified.jkt, &verified.jti),
            verified.iat + MAX_AGE + 1,
            now,
        )
        .await?;
    if !fresh {
        return Err(invalid("this DPoP proof was used before; sign a new one"));
    }
    Ok(Proof { jkt: verified.jkt })
}

/// The replay record of a proof: fixed length whatever the client sends.
fn replay_key(jkt: &str, jti: &str) -> String {
    let digest = Sha256::new()
        .chain_update(jkt.as_bytes())
        .chain_update([0])
        .chain_update(jti.as_bytes())
        .finalize();
    format!("dpop:{}", URL_SAFE_NO_PAD.encode(digest))
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// Every check of RFC 9449 §4.3 but the `jti` replay, at `now`.
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    nonces: &DpopNonces,
    now: i64,
) -> Result<Verified, OAuthError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is too long"));
    }
    let raw_header = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .ok_or_else(|| invalid("the DPoP proof is not a JWT"))?;
    let typ = raw_header.get("typ").and_then(|t| t.as_str()).unwrap_or("");
    if !typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg_name = raw_header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    if !ALGS.contains(&alg_name) {
        return Err(invalid(
            "the DPoP proof's alg is not supported (see dpop_signing_alg_values_supported)",
        ));
    }
    let raw_jwk = raw_header
        .get("jwk")
        .and_then(|j| j.as_object())
        .ok_or_else(|| invalid("the DPoP proof's header has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| raw_jwk.contains_key(*m)) {
        return Err(invalid("the DPoP proof's jwk must be a public key"));
    }
    key_fits_alg(raw_jwk, alg_name)?;
    // The JWK's own optional `alg`, `use` and `key_ops` say nothing the proof's `alg` does
    // not, and `jsonwebtoken` knows no fully specified names (RFC 9864) there: left out.
    let mut public = raw_jwk.clone();
    for member in ["alg", "use", "key_ops"] {
        public.remove(member);
    }
    let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(public))
        .map_err(|_| invalid("the DPoP proof's jwk is invalid"))?;
    let alg =
        jose_algorithm(alg_name).ok_or_else(|| invalid("the DPoP proof's alg is not supported"))?;
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the DPoP proof's jwk is invalid"))?;
    // Verified with `jsonwebtoken`'s JWS primitive rather than `decode`, whose header type
    // cannot hold `Ed25519`: the signature over the first two parts, then the claims.
    let mut parts = proof.split('.');
    let (Some(header_part), Some(claims_part), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the DPoP proof is not a JWT"));
    };
    let message = &proof[..header_part.len() + 1 + claims_part.len()];
    let signed = jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg)
        .map_err(|_| invalid("the DPoP proof's signature or claims are invalid"))?;
    if !signed {
        return Err(invalid("the DPoP proof's signature or claims are invalid"));
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(claims_part)
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or_else(|| invalid("the DPoP proof's signature or claims are invalid"))?;
    if claims.htm != expected.method {
        return Err(invalid("the DPoP proof's htm is not this request's method"));
    }
    if !same_endpoint(&claims.htu, expected.url) {
        return Err(invalid("the DPoP proof's htu is not this endpoint's URL"));
    }
    let iat = claims
        .iat
        .as_i64()
        .or_else(|| claims.iat.as_f64().map(|f| f as i64))
        .ok_or_else(|| invalid("the DPoP proof's iat is not a number"))?;
    if (iat - now).abs() > MAX_AGE {
        return Err(invalid(
            "the DPoP proof's iat is not within 60 seconds of the server's clock",
        ));
    }
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(invalid("the DPoP proof's jti is missing or too long"));
    }
    if let Some(token) = expected.access_token {
        let good = claims.ath.as_deref().is_some_and(|ath| {
            constant_time_eq(ath.as_bytes(), sha256_b64(token.as_bytes()).as_bytes())
        });
        if !good {
            return Err(invalid(
                "the DPoP proof's ath is not the hash of the access token",
            ));
        }
    }
    match claims.nonce.as_deref() {
        Some(n) if !nonces.is_valid(n, now) => {
            return Err(use_nonce(
                "the DPoP proof's nonce is not valid (any more); use the one in DPoP-Nonce",
            ));
        }
        None if expected.nonce_required => {
            return Err(use_nonce(
                "the DPoP proof must carry the server's nonce (DPoP-Nonce)",
            ));
        }
        _ => {}
    }
    Ok(Verified {
        // `key_fits_alg` ruled out the key shapes the thumbprint cannot take.
        jkt: jwk.thumbprint(ThumbprintHash::SHA256),
        jti: claims.jti,
        iat,
    })
}

/// The `jsonwebtoken` algorithm that verifies a proof signed with `alg`, one of `ALGS`.
/// `Ed25519` is RFC 9864's fully specified name of what `EdDSA` means with an Ed25519 key
/// (the only key `key_fits_alg` lets either name have).
fn jose_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "Ed25519" => Some(Algorithm::EdDSA),
        other => other.parse().ok(),
    }
}

/// The JWK is of the type and curve `alg` signs with, with every member the thumbprint
/// covers present and base64url (so that the thumbprint is computed over what was verified).
fn key_fits_alg(
    jwk: &serde_json::Map<String, serde_json::Value>,
    alg: &str,
) -> Result<(), OAuthError> {
    let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let b64 = |name: &str| {
        text(name)
            .filter(|v| !v.is_empty())
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    let (kty, crv, members): (&str, Option<&str>, &[&str]) = match alg {
        "ES256" => ("EC", Some("P-256"), &["x", "y"]),
        "ES384" => ("EC", Some("P-384"), &["x", "y"]),
        "EdDSA" | "Ed25519" => ("OKP", Some("Ed25519"), &["x"]),
        _ => ("RSA", None, &["n", "e"]),
    };
    let fits = text("kty") == Some(kty)
        && crv.is_none_or(|c| text("crv") == Some(c))
        && members.iter().all(|m| b64(m).is_some())
        && (kty != "RSA" || b64("n").is_some_and(|n| n.len() >= MIN_RSA_MODULUS));
    if fits {
        Ok(())
    } else {
        Err(invalid("the DPoP proof's jwk does not fit its alg"))
    }
}

/// `htu` names the endpoint at `expected` (RFC 9449 §4.3 item 9): the two URIs, without
/// query and fragment, are the same after syntax-based normalisation (RFC 3986 §6.2.2: case
/// of scheme and host, percent-encodings of unreserved characters decoded and the others'
/// hex digits upper-cased, dot segments removed) and the scheme-based normalisation of
/// §6.2.3 for `http` and `https` (an empty or default port dropped, an empty path `/`).
/// Nothing else is equivalent: no lenient parsing (a WHATWG parser would accept `https:host`,
/// backslashes, stray tabs, or numeric IPv4 shorthands as the same URL).
fn same_endpoint(htu: &str, expected: &str) -> bool {
    match (normal_uri(htu), normal_uri(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The RFC 3986 §6.2.2 / §6.2.3 normal form of an absolute `http` or `https` URI, query and
/// fragment dropped; `None` when it is not one (or carries userinfo, which RFC 9110 §4.2.4
/// forbids in them).
fn normal_uri(uri: &str) -> Option<String> {
    // Only the characters RFC 3986 allows in a URI at all.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    if uri.is_empty() || !uri.chars().all(allowed) {
        return None;
    }
    let uri = uri.split('#').next()?;
    let uri = uri.split('?').next()?;
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    // An empty port is no port (§6.2.3); leading zeros do not make another one.
    let port: Option<u16> = match port {
        "" => None,
        digits if digits.chars().all(|c| c.is_ascii_digit()) => {
            match digits.trim_start_matches('0') {
                "" => Some(0),
                significant => Some(significant.parse().ok()?),
            }
        }
        _ => return None,
    }
    .filter(|p| *p != default_port);
    let host = normal_percent(host)?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let path = remove_dot_segments(&normal_percent(path)?);
    let path = if path.is_empty() { "/" } else { &path };
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

/// RFC 3986 §6.2.2.1 and §6.2.2.2: a percent-encoded unreserved character is decoded, any
/// other percent-encoding gets upper-case hex digits; `None` for a malformed one.
fn normal_percent(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let hex: String = chars.by_ref().take(2).collect();
        let byte = (hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()))
            .then(|| u8::from_str_radix(&hex, 16).ok())
            .flatten()?;
        let decoded = char::from(byte);
        if decoded.is_ascii_alphanumeric() || "-._~".contains(decoded) {
            out.push(decoded);
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4: `.` and `..` segments of an absolute path resolved.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    output.pop();
                }
                // A trailing dot segment leaves the path ending in a slash.
                if last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    if output.is_empty() {
        return String::new();
    }
    output.iter().fold(String::new(), |mut acc, s| {
        acc.push('/');
        acc.push_str(s);
        acc
    })
}

#[cfg(test)]
mod tests;
