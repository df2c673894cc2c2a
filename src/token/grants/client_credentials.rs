//! `grant_type=client_credentials` (RFC 6749 §4.4): confidential clients only, no user, no
//! refresh token, no database write.

use std::sync::Arc;

use crate::app::App;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};
use crate::store::ClientRecord;
use crate::token::{GrantOutcome, RefreshPlan, audience};

/// Scopes that describe a user; they mean nothing without one.
const USER_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

pub fn validate(
    _app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
) -> Result<GrantOutcome, OAuthError> {
    if client.metadata.is_public() {
        return Err(OAuthError::new(
            crate::protocol::ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let registered = client.metadata.registered_scope();
    let machine_scope = Scope::from_tokens(registered.iter().filter(|s| !USER_SCOPES.contains(s)));
    let scope = match super::requested_scope(params)? {
        None => machine_scope,
        Some(requested) => {
            if !requested.is_subset_of(&machine_scope) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds what this client registered for client_credentials",
                ));
            }
            requested
        }
    };
    Ok(GrantOutcome {
        audience: audience(&client, params.get("resource"))?,
        subject: client.client_id.clone(),
        client,
        scope,
        grant_id: None,
        user: None,
        refresh: RefreshPlan::None,
        act: None,
    })
}
