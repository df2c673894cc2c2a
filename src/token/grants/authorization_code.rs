//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 9449 §10).

use std::sync::Arc;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::authorize::pkce;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};
use crate::store::{ClientRecord, CodeRedemption, RefreshTokenRecord};
use crate::token::{GrantOutcome, RefreshPlan, UserContext, audience, wants_refresh_token};

/// `dpop_jkt`: the thumbprint of the key the request's DPoP proof was signed with, if any. A
/// code bound to a key (`dpop_jkt` at the authorization or PAR endpoint) is redeemed only
/// with a proof of that key.
pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<GrantOutcome, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = params.get("code_verifier");
    if let Some(v) = verifier
        && !pkce::valid_verifier(v)
    {
        return Err(OAuthError::invalid_grant("code_verifier is malformed"));
    }
    if code.len() > 256 {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    let now = app.now();
    let refreshable = client.metadata.allows_grant("refresh_token");
    let grant_expires_at = now + super::grant_lifetime(&app.config, refreshable);
    // One store operation decides, and revokes the grant where it must, so that no reuse
    // goes unanswered whatever happens to this request afterwards.
    let record = match app
        .store
        .consume_code(
            &app.hasher.hash(code),
            &client.client_id,
            dpop_jkt,
            now,
            grant_expires_at,
        )
        .await?
    {
        CodeRedemption::Redeemed(record) => record,
        CodeRedemption::Reused { grant_id } => {
            // RFC 6749 §4.1.2 and RFC 9700 §4.5: a code seen twice is stolen or replayed;
            // everything issued from it is revoked (by the store, in the same operation).
            crate::telemetry::reuse_detected("code");
            let event = Event::new(Kind::CodeReuseDetected)
                .client(&client.client_id)
                .detail("grant_id", grant_id);
            audit::record(app, event).await;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        // Another client holding the code means it leaked: the store consumed it and
        // revoked its grant.
        CodeRedemption::OtherClient { .. } => {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        // Also a code whose user was disabled or deleted since (the store checks).
        CodeRedemption::Invalid => {
            return Err(OAuthError::invalid_grant("the code is invalid or expired"));
        }
        // Like a refresh token bound to a key: the code stays redeemable with the right one.
        CodeRedemption::WrongKey => {
            return Err(OAuthError::invalid_grant(
                "the code is bound to a DPoP key (dpop_jkt); send a proof signed with that key",
            ));
        }
    };
    // RFC 6749 §4.1.3: the redirect_uri must be repeated exactly when it was sent. When the
    // authorization request left it out (one registered URI, plain OAuth), a token request
    // may still name that one registered URI.
    let redirect_ok = match (record.redirect_uri.as_str(), params.get("redirect_uri")) {
        ("", None) => true,
        ("", Some(given)) => {
            client.metadata.redirect_uris.len() == 1 && client.metadata.redirect_uris[0] == given
        }
        (expected, Some(given)) => expected == given,
        (_, None) => false,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&record.code_challenge, verifier) {
        (Some(challenge), Some(v)) if pkce::verifier_matches(v, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("code_verifier does not match"));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "the code was issued without a code_challenge; do not send a code_verifier",
            ));
        }
        (None, None) => {}
    }
    let scope = Scope::parse_lenient(&record.scope);
    let refresh = if wants_refresh_token(&client, &scope) {
        RefreshPlan::Start(Box::new(RefreshTokenRecord {
            generation: 0,
            token_hash: Vec::new(),
            grant_id: record.grant_id.clone(),
            client_id: client.client_id.clone(),
            user_sub: record.user_sub.clone(),
            scope: record.scope.clone(),
            sid: record.sid.clone(),
            auth_time: record.auth_time,
            amr: record.amr.clone(),
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
        subject: record.user_sub,
        scope,
        grant_id: Some(record.grant_id),
        user: Some(UserContext {
            auth_time: record.auth_time,
            sid: record.sid,
            amr: record.amr,
            nonce: record.nonce,
            acr: record.acr,
        }),
        refresh,
        act: None,
    })
}
