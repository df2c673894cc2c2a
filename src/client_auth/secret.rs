//! `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1): the secret Latchkey
//! generated at registration (256 bits), in the `Authorization` header or in the form. Both
//! carry the same secret and are equally strong, so a client registered with either may use
//! either. Stored as a keyed HMAC: verifying is one HMAC and a constant-time comparison.

use super::{Method, Presented};
use crate::app::App;
use crate::protocol::OAuthError;
use crate::store::ClientRecord;

pub struct Secret;

impl Method for Secret {
    async fn verify(
        &self,
        app: &App,
        client: &ClientRecord,
        presented: &Presented,
        _: &str,
    ) -> Result<bool, OAuthError> {
        Ok(match (presented, &client.secret_hash) {
            (Presented::Basic { secret, .. } | Presented::Post { secret, .. }, Some(hash)) => {
                app.hasher.verify(secret, hash)
            }
            _ => false,
        })
    }
}
