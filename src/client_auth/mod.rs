//! Client authentication for the token, PAR, revocation and introspection endpoints
//! (RFC 6749 §2.3, RFC 7523 §2.2): one `Method` per registered
//! `token_endpoint_auth_method`, chosen by the client's registration, never by what a request
//! happens to send:
//!
//! - `secret.rs`: `client_secret_basic` and `client_secret_post` (both carry the same
//!   server-generated 256-bit secret, stored as a keyed HMAC, so verification is one HMAC and
//!   a constant-time comparison: microseconds, never a password KDF);
//! - `private_key_jwt.rs`: a JWT signed with one of the client's keys (`keys.rs` holds them);
//! - `none`: public clients present only their id.
//!
//! Every failure is the same `invalid_client`, whatever went wrong, counted by the throttle.

pub mod keys;
pub mod private_key_jwt;
pub mod secret;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::accounts::throttle::{self, Admission};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::client::TokenEndpointAuthMethod;
use crate::protocol::form::Params;
use crate::store::ClientRecord;

/// The credentials a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    /// A signed assertion (`client_assertion`, RFC 7523 §2.2); its client is the assertion's
    /// `sub`, or the `client_id` sent beside it (which must then be the same).
    Assertion {
        client_id: String,
        assertion: String,
    },
    /// Only a `client_id`: a public client.
    IdOnly {
        client_id: String,
    },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::Assertion { client_id, .. }
            | Presented::IdOnly { client_id } => client_id,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }
}

pub use crate::protocol::error::TokenEndpointError as ClientAuthError;

/// Parses `Authorization: Basic` (RFC 7617) whose user and password are each
/// form-urlencoded (RFC 6749 §2.3.1). `None` when the header is not Basic at all.
pub fn parse_basic(header: &str) -> Option<Result<(String, String), ()>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(parse_basic_credentials(rest.trim()))
}

fn parse_basic_credentials(encoded: &str) -> Result<(String, String), ()> {
    if encoded.len() > 4096 {
        return Err(());
    }
    let decoded = STANDARD.decode(encoded).map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    let unescape = |s: &str| -> Result<String, ()> {
        // form-urlencoding: '+' is a space, then percent-decoding.
        let spaced = s.replace('+', " ");
        let bytes: Vec<u8> = percent_decode(&spaced)?;
        String::from_utf8(bytes).map_err(|_| ())
    };
    let id = unescape(id)?;
    if id.is_empty() {
        return Err(());
    }
    Ok((id, unescape(secret)?))
}

fn percent_decode(s: &str) -> Result<Vec<u8>, ()> {
    Ok(percent_encoding::percent_decode_str(s).collect())
}

/// Reads the credentials from the header and the form, refusing more than one method
/// (RFC 6749 §2.3).
pub fn presented(
    authorization: Option<&str>,
    params: &Params,
) -> Result<Option<Presented>, ClientAuthError> {
    let basic = authorization.and_then(parse_basic);
    let fail = |basic_attempted: bool, msg: &'static str| ClientAuthError {
        error: OAuthError::invalid_client(msg),
        basic_attempted,
    };
    let several = |basic_attempted: bool| ClientAuthError {
        error: OAuthError::invalid_request("use one client authentication method, not several"),
        basic_attempted,
    };
    if params.contains("client_assertion") || params.contains("client_assertion_type") {
        if basic.is_some() || params.contains("client_secret") {
            return Err(several(basic.is_some()));
        }
        return private_key_jwt::presented(params).map(Some);
    }
    match basic {
        Some(Err(())) => Err(fail(true, "the Basic credentials are malformed")),
        Some(Ok((client_id, secret))) => {
            if params.contains("client_secret") {
                return Err(several(true));
            }
            if let Some(form_id) = params.get("client_id")
                && form_id != client_id
            {
                return Err(fail(true, "client_id does not match the Basic credentials"));
            }
            Ok(Some(Presented::Basic { client_id, secret }))
        }
        None => match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => Ok(Some(Presented::Post {
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            })),
            (Some(id), None) => Ok(Some(Presented::IdOnly {
                client_id: id.to_owned(),
            })),
            (None, Some(_)) => Err(fail(false, "client_secret without client_id")),
            (None, None) => Ok(None),
        },
    }
}

/// One client authentication method: whether what a request presented proves the client
/// that registered this method. `endpoint` is the full URL the request was sent to (an
/// assertion may name it as its audience).
pub trait Method {
    fn verify(
        &self,
        app: &App,
        client: &ClientRecord,
        presented: &Presented,
        endpoint: &str,
    ) -> impl Future<Output = Result<bool, OAuthError>> + Send;
}

/// `none`: a public client presents its id and nothing else.
pub struct Public;

impl Method for Public {
    async fn verify(
        &self,
        _: &App,
        _: &ClientRecord,
        presented: &Presented,
        _: &str,
    ) -> Result<bool, OAuthError> {
        Ok(matches!(presented, Presented::IdOnly { .. }))
    }
}

/// Authenticates the client of a request at `endpoint` (a path such as
/// `discovery::paths::TOKEN`) by the method the client registered.
///
/// Failures are throttled per client id and per IP (`accounts::throttle`), and the lock is
/// consulted on the failure path only: a correct 256-bit secret or a valid signature cannot
/// have been guessed, so the success path of a secret stays free of database round trips (the
/// token endpoint's hot path).
pub async fn authenticate(
    app: &App,
    authorization: Option<&str>,
    params: &Params,
    ip: Option<IpAddr>,
    endpoint: &str,
) -> Result<Arc<ClientRecord>, ClientAuthError> {
    let presented = presented(authorization, params)?.ok_or(ClientAuthError {
        error: OAuthError::invalid_client("client authentication is required"),
        basic_attempted: false,
    })?;
    let basic_attempted = presented.is_basic();
    // An id no client can have is refused before the lookup: some databases reject such
    // strings outright (Postgres text cannot hold NUL), which must not become a 500.
    if !plausible_client_id(presented.client_id()) {
        return Err(failed(app, presented.client_id(), ip, basic_attempted).await);
    }
    let as_error = |e: OAuthError| ClientAuthError {
        error: e,
        basic_attempted,
    };
    let client = app
        .client(presented.client_id())
        .await
        .map_err(|e| as_error(e.into()))?;
    let Some(client) = client else {
        return Err(failed(app, presented.client_id(), ip, basic_attempted).await);
    };
    let url = format!("{}{endpoint}", app.config.issuer);
    let verified = match client.metadata.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            secret::Secret.verify(app, &client, &presented, &url).await
        }
        TokenEndpointAuthMethod::PrivateKeyJwt => {
            private_key_jwt::PrivateKeyJwt
                .verify(app, &client, &presented, &url)
                .await
        }
        TokenEndpointAuthMethod::None => Public.verify(app, &client, &presented, &url).await,
    }
    .map_err(as_error)?;
    if verified {
        Ok(client)
    } else {
        Err(failed(app, presented.client_id(), ip, basic_attempted).await)
    }
}

/// The answer to a failed authentication: 429 while the client id or the address is locked,
/// else `invalid_client`, with the failure counted in the same statement that checked the
/// lock. A correct 256-bit secret cannot have been
/// guessed, so the success path never consults the counters (the token endpoint's hot
/// path); racing wrong secrets are still each counted once, and refused exactly as the rule
/// says. The audit log gets, per address, the first failure of a window and every power of
/// ten after it, and each lockout, saying how many failures they stand for.
async fn failed(
    app: &App,
    client_id: &str,
    ip: Option<IpAddr>,
    basic_attempted: bool,
) -> ClientAuthError {
    let now = app.now();
    let client_key = throttle::client_key(client_id);
    let ip_key = ip.map(throttle::client_ip_key);
    let mut keys: Vec<(&str, &throttle::Policy)> = Vec::with_capacity(2);
    if let Some(k) = &ip_key {
        keys.push((k, &throttle::CLIENT_IP));
    }
    keys.push((&client_key, &throttle::CLIENT));
    let admission = match throttle::admit(app.store.as_ref(), &keys, now).await {
        Ok(admission) => admission,
        Err(e) => {
            // The failure could not be counted: answering `invalid_client` would let the
            // attempts of a busy database go uncounted, so the rule's limit would be reached
            // later than it says. The client is refused either way; the answer says the
            // server could not decide (503 `temporarily_unavailable` when the database is
            // out of reach), which is also true.
            tracing::warn!(error = %e, "could not update client authentication throttling");
            return ClientAuthError {
                error: e.into(),
                basic_attempted,
            };
        }
    };
    // Recorded per address: the first counted refusal of a window and every power of ten
    // after it, whatever the answer, so that one address cycling through made-up client ids,
    // or racing, still leaves a handful of events.
    let from_address = admission.count(0);
    if throttle::worth_recording(from_address) {
        let client = keys.len() - 1;
        let mut event = Event::new(Kind::ClientAuthFailed)
            .ip(ip)
            .detail("failures", admission.count(client));
        if ip_key.is_some() {
            event = event.detail("failures_from_address", from_address);
        }
        if plausible_client_id(client_id) {
            event = event.client(client_id);
        }
        audit::record(app, event).await;
    }
    let error = match admission {
        Admission::Refused { retry_after, .. } => OAuthError::slow_down(retry_after),
        Admission::Admitted { .. } => {
            if admission.locked_out(keys.len() - 1, &throttle::CLIENT) {
                let mut locked = Event::new(Kind::ClientLocked)
                    .ip(ip)
                    .detail("until", now + throttle::CLIENT.lockout);
                if plausible_client_id(client_id) {
                    locked = locked.client(client_id);
                }
                audit::record(app, locked).await;
            }
            OAuthError::invalid_client("client authentication failed")
        }
    };
    ClientAuthError {
        error,
        basic_attempted,
    }
}

/// Longest client id looked up; generated ids are 22 characters.
const MAX_CLIENT_ID_LEN: usize = 256;

/// Whether `client_id` could name a client: not overlong, no control characters.
fn plausible_client_id(client_id: &str) -> bool {
    client_id.len() <= MAX_CLIENT_ID_LEN && !client_id.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let enc = STANDARD.encode("my%20client:s%3Acret+x");
        assert_eq!(
            parse_basic(&format!("Basic {enc}")),
            Some(Ok(("my client".to_owned(), "s:cret x".to_owned())))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), Some(Err(())));
        let no_colon = STANDARD.encode("abc");
        assert_eq!(parse_basic(&format!("Basic {no_colon}")), Some(Err(())));
        let empty_id = STANDARD.encode(":secret");
        assert_eq!(parse_basic(&format!("basic {empty_id}")), Some(Err(())));
        let bad_utf8 = STANDARD.encode(b"\xff:\xfe");
        assert_eq!(parse_basic(&format!("Basic {bad_utf8}")), Some(Err(())));
    }

    #[test]
    fn implausible_client_ids_are_not_looked_up() {
        assert!(plausible_client_id("Zx9_-abc"));
        assert!(!plausible_client_id("a\0b"));
        assert!(!plausible_client_id("a\nb"));
        assert!(!plausible_client_id(&"a".repeat(MAX_CLIENT_ID_LEN + 1)));
    }
}
