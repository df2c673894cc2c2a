//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): every use returns a new refresh token and kills the old one; a
//! rotated-out token presented again revokes its whole family.

use std::sync::Arc;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_secret;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};
use crate::store::{ClientRecord, RefreshTokenRecord, Rotation};
use crate::token::{GrantOutcome, RefreshPlan, UserContext, audience};

pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
) -> Result<GrantOutcome, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if presented.len() > 256 {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    }
    let now = app.now();
    let old_hash = app.hasher.hash(presented);
    let Some(current) = app.store.get_refresh_token(&old_hash, now).await? else {
        if let Some(grant_id) = app.store.rotated_token_grant(&old_hash).await? {
            app.store.revoke_grant(&grant_id, now).await?;
            reuse_detected(app, &client.client_id, &grant_id).await;
        }
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    };
    if current.client_id != client.client_id {
        // Another client holding this token means it leaked: end the family.
        app.store.revoke_grant(&current.grant_id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let original = Scope::parse_lenient(&current.scope);
    let scope = match super::requested_scope(params)? {
        None => original.clone(),
        Some(requested) => {
            if !requested.is_subset_of(&original) {
                return Err(OAuthError::invalid_scope(
                    "a refresh may narrow the scope, never widen it",
                ));
            }
            requested
        }
    };
    match app.store.get_user(&current.user_sub).await? {
        Some(user) if !user.disabled => {}
        _ => {
            app.store.revoke_grant(&current.grant_id, now).await?;
            return Err(OAuthError::invalid_grant("the user is no longer active"));
        }
    }

    let new_token = random_secret();
    let new_record = RefreshTokenRecord {
        token_hash: app.hasher.hash(&new_token),
        created_at: now,
        idle_expires_at: (now + app.config.refresh_token_idle_ttl).min(current.expires_at),
        ..current.clone()
    };
    match app
        .store
        .rotate_refresh_token(&old_hash, &new_record, now)
        .await?
    {
        Rotation::Rotated(_) => {}
        Rotation::Reused { grant_id } => {
            app.store.revoke_grant(&grant_id, now).await?;
            reuse_detected(app, &client.client_id, &grant_id).await;
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ));
        }
        Rotation::Invalid => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
    }
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
        refresh: RefreshPlan::Rotated(new_token),
    })
}

/// A rotated-out token came back: the family is revoked (by the caller) and this is recorded.
async fn reuse_detected(app: &App, client_id: &str, grant_id: &str) {
    crate::telemetry::reuse_detected("refresh_token");
    let event = Event::new(Kind::RefreshReuseDetected)
        .client(client_id)
        .detail("grant_id", grant_id);
    audit::record(app, event).await;
}
