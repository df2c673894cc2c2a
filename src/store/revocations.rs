//! Revoked access tokens, remembered by `jti` until they would have expired anyway, and the
//! one-round-trip check that an access token is still good (its `jti` not revoked, its grant
//! live).
//!
//! Contract: `contract/revocations.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{SqlRow, db_err};
use super::sqlite::SqliteStore;

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Remembers a revoked access token until it would have expired anyway.
    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()>;
    /// True when the token's `jti` was revoked or its grant (when it has one) is revoked or
    /// gone. One round trip.
    async fn is_access_token_revoked(&self, jti: &str, grant_id: Option<&str>)
    -> StoreResult<bool>;
}

// Revoking twice keeps the later expiry, so a row is never purged while it still matters.
const REVOKE_ACCESS_TOKEN: &str = "INSERT INTO revoked_access_token (jti, expires_at) \
     VALUES ($1, $2) ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE excluded.expires_at > revoked_access_token.expires_at";
// One round trip: the jti is listed, or the token has a grant and that grant is not a
// live one (revoked, or already purged because it expired).
const IS_ACCESS_TOKEN_REVOKED: &str = "SELECT \
     EXISTS (SELECT 1 FROM revoked_access_token WHERE jti = $1) \
     OR ($2 IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM auth_grant WHERE grant_id = $2 AND revoked_at IS NULL)) \
     AS revoked";

macro_rules! impl_revocation_store {
    ($store:ty) => {
        #[async_trait]
        impl RevocationStore for $store {
            async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
                ::sqlx::query(REVOKE_ACCESS_TOKEN)
                    .bind(jti)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn is_access_token_revoked(
                &self,
                jti: &str,
                grant_id: Option<&str>,
            ) -> StoreResult<bool> {
                ::sqlx::query(IS_ACCESS_TOKEN_REVOKED)
                    .bind(jti)
                    .bind(grant_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?
                    .col("revoked")
            }
        }
    };
}

impl_revocation_store!(PgStore);
impl_revocation_store!(SqliteStore);
