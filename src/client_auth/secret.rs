//! `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1): the secret Latchkey
//! generated at registration (256 bits), in the `Authorization` header or in the form. Both
//! carry the same secret and are equally strong, so a client registered with either may use
//! either. Stored as a keyed HMAC: verifying is one HMAC and a constant-time comparison with
//! each stored secret that still works (at most two: the current one, and one a rotation
//! kept for a while), both carried by the client record already loaded.

use super::{Method, Presented};
use crate::app::App;
use crate::crypto::constant_time_eq;
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
        let (Presented::Basic { secret, .. } | Presented::Post { secret, .. }) = presented else {
            return Ok(false);
        };
        if client.secret_hash.is_none() {
            return Ok(false);
        }
        let presented_hash = app.hasher.hash(secret);
        // Both comparisons run whichever matches, so the time taken does not tell which
        // secret was presented. An expired secret is not compared at all.
        Ok(client
            .live_secret_hashes(app.now())
            .fold(false, |matched, stored| {
                constant_time_eq(&presented_hash, stored) | matched
            }))
    }
}
