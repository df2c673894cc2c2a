//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5): a device
//! polls with its device code. Until its person answered: `authorization_pending` (or
//! `slow_down`, and a longer interval, when it polls faster than allowed); then the tokens,
//! once, or `access_denied`; `expired_token` after the code's lifetime. Each poll is decided
//! and recorded in one store transaction, so racing polls take an approved grant once.

use std::sync::Arc;

use crate::app::App;
use crate::crypto::random_token;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::{ClientRecord, GrantRecord, Poll, RefreshTokenRecord};
use crate::token::{GrantOutcome, RefreshPlan, UserContext, audience, wants_refresh_token};

fn error(code: ErrorCode, description: &'static str) -> OAuthError {
    OAuthError::new(code, description)
}

pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
) -> Result<GrantOutcome, OAuthError> {
    let device_code = params
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    if device_code.len() > 256 {
        return Err(OAuthError::invalid_grant("the device code is invalid"));
    }
    let now = app.now();
    let poll = app
        .store
        .poll_device(&app.hasher.hash(device_code), &client.client_id, now)
        .await?;
    let (record, approval) = match poll {
        Poll::Approved { record, approval } => (record, approval),
        Poll::Pending => {
            return Err(error(
                ErrorCode::AuthorizationPending,
                "the user has not answered yet",
            ));
        }
        Poll::SlowDown => {
            return Err(error(
                ErrorCode::SlowDownPolling,
                "polling too fast: the interval grew by 5 seconds",
            ));
        }
        Poll::Denied => return Err(error(ErrorCode::AccessDenied, "the user said no")),
        Poll::Expired => {
            return Err(error(
                ErrorCode::ExpiredToken,
                "the device code has expired",
            ));
        }
        Poll::Invalid => return Err(OAuthError::invalid_grant("the device code is invalid")),
    };
    let scope = Scope::parse_lenient(&record.scope);
    let grant_id = random_token(16);
    let refreshable = wants_refresh_token(&client, &scope);
    app.store
        .insert_grant(&GrantRecord {
            grant_id: grant_id.clone(),
            client_id: client.client_id.clone(),
            user_sub: approval.user_sub.clone(),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + super::grant_lifetime(&app.config, refreshable),
            revoked_at: None,
        })
        .await?;
    let refresh = if refreshable {
        RefreshPlan::Start(Box::new(RefreshTokenRecord {
            generation: 0,
            token_hash: Vec::new(),
            grant_id: grant_id.clone(),
            client_id: client.client_id.clone(),
            user_sub: approval.user_sub.clone(),
            scope: scope.to_string(),
            sid: approval.sid.clone(),
            auth_time: approval.auth_time,
            amr: approval.amr.clone(),
            resource: record.resource.clone(),
            created_at: now,
            idle_expires_at: now + app.config.refresh_token_idle_ttl,
            expires_at: now + app.config.refresh_token_ttl,
            // Bound by `token::issue` when the request carried a DPoP proof.
            dpop_jkt: None,
        }))
    } else {
        RefreshPlan::None
    };
    Ok(GrantOutcome {
        audience: audience(&client, record.resource.as_deref())?,
        client,
        subject: approval.user_sub,
        scope,
        grant_id: Some(grant_id),
        user: Some(UserContext {
            auth_time: approval.auth_time,
            sid: approval.sid,
            amr: approval.amr,
            nonce: None,
            acr: None,
        }),
        refresh,
        act: None,
    })
}
