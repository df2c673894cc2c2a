//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a service holding
//! a token Latchkey issued (an access token or an ID token, the `subject_token`) gets an
//! access token for another audience, acting for the token's subject.
//!
//! The rules: the client is confidential and registered the grant; the subject token verifies,
//! has not expired, is not revoked (an access token's family still lives; its user is still
//! active) and was issued to the client or names it as audience; the `audience` or `resource`
//! asked for is one of the client's `token_exchange_audiences`; the scope is never wider than
//! the subject token's (an ID token carries only `openid`); with an `actor_token` (a token
//! Latchkey issued to the actor) the result carries `act` (RFC 8693 §4.1), the actors of the
//! subject token nested inside; a subject token that says who `may_act` for it (§4.4) is
//! exchanged only by that actor. Every exchange is audited.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::mint;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::ClientRecord;
use crate::token::{GrantOutcome, RefreshPlan};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A verified token presented as subject or actor.
#[derive(Debug, Clone)]
pub struct Presented {
    pub sub: String,
    pub scope: Scope,
    /// Who it was issued to (`client_id` of an access token, `aud` of an ID token) and its
    /// audience.
    pub client_id: String,
    pub aud: String,
    pub grant_id: Option<String>,
    pub act: Option<Value>,
    pub may_act: Option<Value>,
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::invalid_grant(description)
}

/// Verifies a token of `token_type` that Latchkey issued and that is still good at `now`.
async fn verify(app: &App, token: &str, token_type: &str) -> Result<Presented, OAuthError> {
    match token_type {
        ACCESS_TOKEN_TYPE => {
            let claims = crate::token::access::active_access_token(app, token)
                .await?
                .ok_or_else(|| invalid_grant("the token is invalid, expired or revoked"))?;
            Ok(Presented {
                scope: Scope::parse_lenient(&claims.scope),
                sub: claims.sub,
                client_id: claims.client_id,
                aud: claims.aud,
                grant_id: claims.grant_id,
                act: claims.act,
                may_act: claims.may_act,
            })
        }
        ID_TOKEN_TYPE => {
            let keys = app.keys.current();
            let claims = mint::verify_id_token(&keys, token, &app.config.issuer, app.now())
                .map_err(|_| invalid_grant("the token is invalid or expired"))?;
            Ok(Presented {
                sub: claims.sub,
                scope: Scope::parse_lenient("openid"),
                client_id: claims.aud.clone(),
                aud: claims.aud,
                grant_id: None,
                act: None,
                may_act: None,
            })
        }
        _ => Err(OAuthError::invalid_request(
            "the token type must be urn:ietf:params:oauth:token-type:access_token or id_token",
        )),
    }
}

/// `may_act` (RFC 8693 §4.4): when the subject token names who may act for it, the actor
/// (the actor token's subject, else the requesting client) must be that one.
pub fn may_act_allows(may_act: Option<&Value>, actor: &str) -> bool {
    match may_act {
        None => true,
        Some(v) => v.get("sub").and_then(Value::as_str) == Some(actor),
    }
}

/// The `act` claim of the new token: the actor, with the subject token's own actors (a
/// delegation chain) nested inside.
pub fn act_claim(actor: &str, prior: Option<&Value>) -> Value {
    match prior {
        Some(p) => json!({"sub": actor, "act": p}),
        None => json!({"sub": actor}),
    }
}

pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
) -> Result<GrantOutcome, OAuthError> {
    if client.metadata.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot exchange tokens",
        ));
    }
    let (Some(subject_token), Some(subject_type)) = (
        params.get("subject_token"),
        params.get("subject_token_type"),
    ) else {
        return Err(OAuthError::invalid_request(
            "subject_token and subject_token_type are required",
        ));
    };
    if let Some(wanted) = params.get("requested_token_type")
        && wanted != ACCESS_TOKEN_TYPE
    {
        return Err(OAuthError::invalid_request(
            "only access tokens are issued (requested_token_type access_token)",
        ));
    }
    // The audience asked for, by name or as a resource indicator (RFC 8707), must be one the
    // client registered; without either the token is for the client itself.
    let audience = match (params.get("audience"), params.get("resource")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "send audience or resource, not both",
            ));
        }
        (Some(target), None) | (None, Some(target)) => {
            if !client
                .metadata
                .token_exchange_audiences
                .iter()
                .any(|a| a == target)
            {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "this client may not exchange tokens for that audience",
                ));
            }
            target.to_owned()
        }
        (None, None) => client.client_id.clone(),
    };
    let subject = verify(app, subject_token, subject_type).await?;
    if subject.client_id != client.client_id && subject.aud != client.client_id {
        return Err(invalid_grant(
            "the subject token was neither issued to nor addressed to this client",
        ));
    }
    if let Some(user) = app.store.get_user(&subject.sub).await?
        && user.disabled
    {
        return Err(invalid_grant("the subject token's user is not active"));
    }
    let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
        (Some(token), Some(token_type)) => {
            let actor = verify(app, token, token_type).await?;
            Some(actor.sub)
        }
        (None, None) => None,
        _ => {
            return Err(OAuthError::invalid_request(
                "actor_token and actor_token_type go together",
            ));
        }
    };
    let acting = actor.as_deref().unwrap_or(&client.client_id);
    if !may_act_allows(subject.may_act.as_ref(), acting) {
        return Err(invalid_grant(
            "the subject token does not allow this actor to act for it (may_act)",
        ));
    }
    let scope = match super::requested_scope(params)? {
        None => subject.scope.clone(),
        Some(requested) if requested.is_subset_of(&subject.scope) => requested,
        Some(_) => {
            return Err(OAuthError::invalid_scope(
                "an exchanged token is never wider in scope than the subject token",
            ));
        }
    };
    let act = actor.as_deref().map(|a| act_claim(a, subject.act.as_ref()));
    let mut event = Event::new(Kind::TokenExchanged)
        .client(&client.client_id)
        .user(&subject.sub)
        .detail("audience", audience.as_str())
        .detail("subject_token_type", subject_type)
        .detail("scope", scope.to_string());
    if let Some(a) = &actor {
        event = event.detail("actor", a.as_str());
    }
    audit::record(app, event).await;
    Ok(GrantOutcome {
        client,
        subject: subject.sub,
        scope,
        audience,
        // The exchanged token lives and dies with the subject token's family.
        grant_id: subject.grant_id,
        user: None,
        refresh: RefreshPlan::None,
        act,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_act_names_the_only_actor_allowed() {
        assert!(may_act_allows(None, "anyone"));
        let may = json!({"sub": "service-a"});
        assert!(may_act_allows(Some(&may), "service-a"));
        assert!(!may_act_allows(Some(&may), "service-b"));
        assert!(!may_act_allows(Some(&json!({"client_id": "x"})), "x"));
    }

    #[test]
    fn act_nests_the_prior_actors() {
        assert_eq!(act_claim("a", None), json!({"sub": "a"}));
        let prior = json!({"sub": "b"});
        assert_eq!(
            act_claim("a", Some(&prior)),
            json!({"sub": "a", "act": {"sub": "b"}})
        );
    }
}
