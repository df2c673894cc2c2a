//! Pushed authorization requests (RFC 9126), `PushedRequestStore`: the validated parameters a
//! client pushed, held briefly under the hash of their `request_uri`, taken once by whichever
//! node the browser reaches. The statements are the same in both dialects.
//!
//! Contract: `contract/pushed.rs`.

use async_trait::async_trait;

use super::StoreResult;

/// A pushed request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub client_id: String,
    /// The request's parameters, form-encoded.
    pub params: String,
    pub expires_at: i64,
}

#[async_trait]
pub trait PushedRequestStore: Send + Sync {
    async fn insert_pushed(&self, request_hash: &[u8], request: &PushedRequest) -> StoreResult<()>;
    /// Takes the pushed request named by `request_hash`, when it has not expired at `now`:
    /// one conditional delete, so of racing calls exactly one gets it.
    async fn take_pushed(
        &self,
        request_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<PushedRequest>>;
    /// Deletes at most `batch` pushed requests that expired by `now`; returns how many.
    async fn purge_pushed(&self, now: i64, batch: u32) -> StoreResult<u64>;
}

const INSERT: &str = "INSERT INTO pushed_request (request_hash, client_id, params, expires_at) VALUES ($1, $2, $3, $4)";
const TAKE: &str = "DELETE FROM pushed_request WHERE request_hash = $1 AND expires_at > $2 \
     RETURNING client_id, params, expires_at";

macro_rules! impl_pushed_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait]
        impl PushedRequestStore for $store {
            async fn insert_pushed(
                &self,
                request_hash: &[u8],
                request: &PushedRequest,
            ) -> StoreResult<()> {
                ::sqlx::query(INSERT)
                    .bind(request_hash)
                    .bind(&request.client_id)
                    .bind(&request.params)
                    .bind(request.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(())
            }

            async fn take_pushed(
                &self,
                request_hash: &[u8],
                now: i64,
            ) -> StoreResult<Option<PushedRequest>> {
                use ::sqlx::Row as _;
                let row = ::sqlx::query(TAKE)
                    .bind(request_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                Ok(Some(PushedRequest {
                    client_id: row.try_get("client_id").map_err(super::sql::db_err)?,
                    params: row.try_get("params").map_err(super::sql::db_err)?,
                    expires_at: row.try_get("expires_at").map_err(super::sql::db_err)?,
                }))
            }

            async fn purge_pushed(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(super::sql::purge_batch!(
                    $dialect,
                    "pushed_request",
                    "request_hash",
                    "expires_at <= $1"
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

impl_pushed_store!(super::postgres::PgStore, postgres);
impl_pushed_store!(super::sqlite::SqliteStore, sqlite);
