//! Token introspection (RFC 7662) for authenticated confidential clients. Anything not
//! active answers `{"active": false}` and nothing else.
//!
//! A client learns about the tokens issued to it; only a client registered with
//! `"introspection": "any"` (a resource server) learns about every client's. Anyone else
//! asking about someone else's token gets the same `{"active": false}` as for garbage, so
//! introspection cannot serve as an oracle for another client's refresh tokens. Nothing here
//! writes: introspecting a token, anyone's, never rotates it, never counts as reuse.

use serde::Serialize;

use crate::app::App;
use crate::client_auth;
use crate::mint::Confirmation;
use crate::protocol::OAuthError;
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;
use crate::protocol::form::Params;

#[derive(Debug, Serialize, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// RFC 9449 §6.2: the key a DPoP-bound access token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

pub async fn introspect(
    app: &App,
    authorization: Option<&str>,
    params: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<Introspection, TokenEndpointError> {
    let client =
        client_auth::authenticate(app, authorization, params, ip, paths::INTROSPECTION).await?;
    if client.metadata.is_public() {
        return Err(TokenEndpointError {
            error: OAuthError::invalid_client("introspection needs a confidential client"),
            basic_attempted: false,
        });
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.len() > 16 * 1024 {
        return Ok(Introspection::default());
    }
    let looks_like_jwt = token.bytes().filter(|b| *b == b'.').count() == 2;
    let access = client.metadata.introspection;
    let may_see = |issued_to: &str| access.may_see(&client.client_id, issued_to);
    if looks_like_jwt {
        // The issuing client is `client_id`, not `aud`: `aud` may be a resource (RFC 8707),
        // whose server introspects as a client registered with `introspection: any`.
        if let Some(claims) = super::access::active_access_token(app, token).await?
            && may_see(&claims.client_id)
        {
            return Ok(Introspection {
                active: true,
                scope: Some(claims.scope),
                client_id: Some(claims.client_id),
                sub: Some(claims.sub),
                aud: Some(claims.aud),
                iss: Some(claims.iss),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: Some(claims.nbf),
                jti: Some(claims.jti),
                token_type: Some(if claims.cnf.is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                }),
                cnf: claims.cnf,
            });
        }
        // A refresh token has two dots as well (`refresh_format`): a JWT fails its parse
        // below without the store being asked.
    }
    let now = app.now();
    let resolved = super::refresh_format::resolve(&app.hasher, app.store.as_ref(), token).await?;
    let current = match &resolved {
        Some(resolved) => {
            app.store
                .get_refresh_token(&resolved.presented(), now)
                .await?
        }
        None => None,
    };
    if let Some(record) = current
        && may_see(&record.client_id)
        && app.client(&record.client_id).await?.is_some()
    {
        return Ok(Introspection {
            active: true,
            scope: Some(record.scope),
            client_id: Some(record.client_id),
            sub: Some(record.user_sub),
            aud: None,
            iss: Some(app.config.issuer.clone()),
            exp: Some(record.idle_expires_at.min(record.expires_at)),
            iat: Some(record.created_at),
            nbf: None,
            jti: None,
            token_type: Some("refresh_token"),
            cnf: record.dpop_jkt.map(|jkt| Confirmation { jkt }),
        });
    }
    Ok(Introspection::default())
}
