//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): every use returns a new refresh token, the next generation of its
//! family, and kills the old one; a rotated-out token presented again revokes its whole
//! family. The token's format is `token::refresh_format`. A client that retries a rotation
//! whose answer it lost gets the same successor again, if it does so within the reuse grace
//! (`LATCHKEY_REFRESH_TOKEN_REUSE_GRACE`, `Rotation::Retried`). A family bound to a DPoP key (a
//! public client's, RFC 9449 §5) rotates only with a proof of that key.

use std::sync::Arc;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};
use crate::store::{ClientRecord, RefreshScope, Rotation, RotationRequest};
use crate::token::{GrantOutcome, RefreshPlan, UserContext, audience, refresh_format};

/// `dpop_jkt`: the thumbprint of the key the request's DPoP proof was signed with, if any.
pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<GrantOutcome, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if presented.len() > 256 {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    }
    let now = app.now();
    // Parsed before the store is asked, but a malformed scope is answered only once the
    // token has been checked: a replayed token must revoke its family whatever else the
    // request gets wrong.
    let requested = super::requested_scope(params);
    let requested_text = requested
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref())
        .map(Scope::to_string);
    let scope_asked = match (&requested, &requested_text) {
        (Err(_), _) => RefreshScope::Malformed,
        (Ok(_), Some(text)) => RefreshScope::Requested(text),
        (Ok(_), None) => RefreshScope::Granted,
    };
    // A token Latchkey never issued (its MAC fails, or an old-format token it does not know)
    // changes nothing: only a token it issued can be reuse.
    let Some(presented_token) =
        refresh_format::resolve(&app.hasher, app.store.as_ref(), presented).await?
    else {
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    };
    // Derived from the presented token, so that a client retrying a rotation whose answer it
    // lost (a 503 during a failover after the commit) gets the same successor again.
    let successor = refresh_format::successor(
        &app.hasher,
        &presented_token.grant_id,
        presented_token.generation + 1,
        presented,
    );
    // One store operation decides and does everything: rotation, or the family's revocation
    // on reuse, another client's token or an inactive user.
    let rotation = app
        .store
        .rotate_refresh_token(&RotationRequest {
            presented: presented_token.presented(),
            client_id: &client.client_id,
            scope: scope_asked,
            dpop_jkt,
            new_token_hash: &successor.hash,
            now,
            idle_ttl: app.config.refresh_token_idle_ttl,
            reuse_grace: app.config.refresh_token_reuse_grace,
        })
        .await?;
    let current = match rotation {
        Rotation::Rotated(current) => *current,
        Rotation::Retried(current) => {
            tracing::info!(
                grant_id = %current.grant_id,
                client_id = %client.client_id,
                "refresh token presented again within the reuse grace; its successor is sent again"
            );
            crate::telemetry::refresh_retried();
            *current
        }
        Rotation::Reused { grant_id } => {
            reuse_detected(app, &client.client_id, &grant_id).await;
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
        // Another client holding this token means it leaked: the family has ended.
        Rotation::OtherClient { .. } => {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        Rotation::UserInactive { .. } => {
            return Err(OAuthError::invalid_grant("the user is no longer active"));
        }
        Rotation::ScopeTooWide => {
            requested?;
            return Err(OAuthError::invalid_scope(
                "a refresh may narrow the scope, never widen it",
            ));
        }
        Rotation::KeyMismatch => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is bound to a DPoP key; send a proof signed with that key",
            ));
        }
        Rotation::Invalid => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
    };
    let scope = match requested? {
        None => Scope::parse_lenient(&current.scope),
        Some(requested) => requested,
    };
    Ok(GrantOutcome {
        audience: audience(&client, current.resource.as_deref())?,
        client,
        subject: current.user_sub,
        scope,
        grant_id: Some(current.grant_id),
        user: Some(UserContext {
            auth_time: current.auth_time,
            sid: current.sid,
            amr: current.amr,
            nonce: None,
            acr: None,
        }),
        refresh: RefreshPlan::Rotated(successor.token),
        act: None,
    })
}

/// A rotated-out token came back: the store has revoked the family; this records it.
async fn reuse_detected(app: &App, client_id: &str, grant_id: &str) {
    crate::telemetry::reuse_detected("refresh_token");
    let event = Event::new(Kind::RefreshReuseDetected)
        .client(client_id)
        .detail("grant_id", grant_id);
    audit::record(app, event).await;
}
