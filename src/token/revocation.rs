//! Token revocation (RFC 7009). The `token_type_hint` only decides which kind is tried first;
//! a token of another client, or one Latchkey does not know, changes nothing and still gets
//! 200 (§2.2).

use crate::app::App;
use crate::client_auth;
use crate::mint;
use crate::protocol::OAuthError;
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;
use crate::protocol::form::Params;

pub async fn revoke(
    app: &App,
    authorization: Option<&str>,
    params: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<(), TokenEndpointError> {
    let client =
        client_auth::authenticate(app, authorization, params, ip, paths::REVOCATION).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if token.len() > 16 * 1024 {
        return Ok(());
    }
    let now = app.now();
    let access_first = params.get("token_type_hint") == Some("access_token");
    let looks_like_jwt = token.bytes().filter(|b| *b == b'.').count() == 2;
    for try_access in [
        access_first || looks_like_jwt,
        !(access_first || looks_like_jwt),
    ] {
        if try_access {
            let keys = app.keys.current();
            // An expired token needs no revocation; an active one is remembered until it
            // would have expired.
            if let Ok(claims) = mint::verify_access_token(&keys, token, &app.config.issuer, now) {
                if claims.client_id == client.client_id {
                    app.store
                        .revoke_access_token(&claims.jti, claims.exp)
                        .await?;
                    tracing::info!(event = "access_token_revoked", client_id = %client.client_id, "access token revoked");
                }
                return Ok(());
            }
        } else {
            let resolved =
                super::refresh_format::resolve(&app.hasher, app.store.as_ref(), token).await?;
            let current = match &resolved {
                Some(resolved) => {
                    app.store
                        .get_refresh_token(&resolved.presented(), now)
                        .await?
                }
                None => None,
            };
            if let Some(record) = current {
                if record.client_id == client.client_id {
                    app.store.revoke_grant(&record.grant_id, now).await?;
                    tracing::info!(event = "refresh_family_revoked", client_id = %client.client_id, "refresh token family revoked");
                }
                return Ok(());
            }
        }
    }
    Ok(())
}
