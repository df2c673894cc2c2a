//! One file per grant type. Each has the same shape: read its parameters, check them, and
//! return a `GrantOutcome` for `token::issue`.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod password;
pub mod refresh_token;
pub mod token_exchange;

use crate::config::Config;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};

/// The `scope` parameter of a token request: `None` when omitted; `invalid_scope` when it is
/// malformed or names no scope at all (RFC 6749 §3.3: at least one scope token).
pub fn requested_scope(params: &Params) -> Result<Option<Scope>, OAuthError> {
    match params.get("scope") {
        None => Ok(None),
        Some(s) => match Scope::parse(s) {
            Ok(scope) if !scope.is_empty() => Ok(Some(scope)),
            _ => Err(OAuthError::invalid_scope("scope is malformed")),
        },
    }
}

/// How long a grant (token family) row must be kept from its creation: until every token it
/// can produce has expired, because an access token whose grant is gone is inactive (the
/// store cannot tell a purged grant from a revoked one). With refresh tokens, the last
/// refresh may come just before the family's absolute end and issue an access token that
/// lives `access_token_ttl` longer.
pub fn grant_lifetime(config: &Config, refreshable: bool) -> i64 {
    if refreshable {
        config.refresh_token_ttl + config.access_token_ttl
    } else {
        config.access_token_ttl
    }
}
