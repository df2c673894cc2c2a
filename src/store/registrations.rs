//! Dynamic client registration (RFC 7591/7592), `RegistrationStore`: initial access tokens
//! (spent by one conditional update, so of racing registrations no more succeed than the
//! token has uses) and the registration access token of each dynamically registered client.
//! Tokens are stored as keyed hashes. The statements are the same in both dialects.
//!
//! Contract: `contract/registrations.rs`.

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait RegistrationStore: Send + Sync {
    async fn insert_initial_token(
        &self,
        token_hash: &[u8],
        uses: i64,
        created_at: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Spends one use of an initial access token that has not expired at `now`; false when
    /// there is no such token or no use left. Of racing calls, at most as many as the token
    /// had uses get true.
    async fn spend_initial_token(&self, token_hash: &[u8], now: i64) -> StoreResult<bool>;
    /// Sets (or replaces) the registration access token of a client.
    async fn set_registration_token(
        &self,
        client_id: &str,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<()>;
    /// The hash of a client's registration access token, when it was registered dynamically.
    async fn registration_token(&self, client_id: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn delete_registration(&self, client_id: &str) -> StoreResult<()>;
    /// Deletes at most `batch` initial access tokens that expired by `now` or are used up.
    async fn purge_initial_tokens(&self, now: i64, batch: u32) -> StoreResult<u64>;
}

const INSERT_INITIAL: &str = "INSERT INTO initial_access_token \
     (token_hash, uses_left, created_at, expires_at) VALUES ($1, $2, $3, $4)";
const SPEND_INITIAL: &str = "UPDATE initial_access_token SET uses_left = uses_left - 1 \
     WHERE token_hash = $1 AND uses_left > 0 AND expires_at > $2";
const SET_REGISTRATION: &str = "INSERT INTO client_registration (client_id, token_hash, \
     created_at) VALUES ($1, $2, $3) ON CONFLICT (client_id) DO UPDATE SET \
     token_hash = excluded.token_hash, created_at = excluded.created_at";
const GET_REGISTRATION: &str = "SELECT token_hash FROM client_registration WHERE client_id = $1";
pub(super) const DELETE_REGISTRATION: &str = "DELETE FROM client_registration WHERE client_id = $1";

macro_rules! impl_registration_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait]
        impl RegistrationStore for $store {
            async fn insert_initial_token(
                &self,
                token_hash: &[u8],
                uses: i64,
                created_at: i64,
                expires_at: i64,
            ) -> StoreResult<()> {
                ::sqlx::query(INSERT_INITIAL)
                    .bind(token_hash)
                    .bind(uses)
                    .bind(created_at)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(())
            }

            async fn spend_initial_token(&self, token_hash: &[u8], now: i64) -> StoreResult<bool> {
                let done = ::sqlx::query(SPEND_INITIAL)
                    .bind(token_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_registration_token(
                &self,
                client_id: &str,
                token_hash: &[u8],
                now: i64,
            ) -> StoreResult<()> {
                ::sqlx::query(SET_REGISTRATION)
                    .bind(client_id)
                    .bind(token_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(())
            }

            async fn registration_token(&self, client_id: &str) -> StoreResult<Option<Vec<u8>>> {
                ::sqlx::query_scalar(GET_REGISTRATION)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::sql::db_err)
            }

            async fn delete_registration(&self, client_id: &str) -> StoreResult<()> {
                ::sqlx::query(DELETE_REGISTRATION)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(())
            }

            async fn purge_initial_tokens(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(super::sql::purge_batch!(
                    $dialect,
                    "initial_access_token",
                    "token_hash",
                    "expires_at <= $1 OR uses_left <= 0"
                ))
                .bind(now)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await
                .map_err(super::sql::db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

impl_registration_store!(super::postgres::PgStore, postgres);
impl_registration_store!(super::sqlite::SqliteStore, sqlite);
