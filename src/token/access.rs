//! Deciding whether an access token is active: signature, issuer and expiry (by `mint`), then
//! the database's word on revocation, and that its client and user still exist. Shared by
//! userinfo and introspection so both give the same answer for the same token.

use crate::app::App;
use crate::mint::{self, AccessTokenClaims};
use crate::protocol::OAuthError;

/// `Ok(None)` for a token that is not active, for whatever reason (the reason is not told).
pub async fn active_access_token(
    app: &App,
    token: &str,
) -> Result<Option<AccessTokenClaims>, OAuthError> {
    let keys = app.keys.current();
    let Ok(claims) = mint::verify_access_token(&keys, token, &app.config.issuer, app.now()) else {
        return Ok(None);
    };
    if app
        .store
        .is_access_token_revoked(&claims.jti, claims.grant_id.as_deref())
        .await?
    {
        return Ok(None);
    }
    if app.client(&claims.client_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(claims))
}
