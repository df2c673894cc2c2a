//! Values that may be used once until they expire (`ReplayStore`): a client assertion's `jti`
//! today, a DPoP proof's later. One conditional upsert decides, so of racing uses on any
//! number of nodes exactly one wins. The statements are the same in both dialects.
//!
//! Contract: `contract/replay.rs`.

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` as used until `expires_at`. False when it was used before and that use
    /// has not expired at `now` (a replay). Of racing calls with one key exactly one gets
    /// true.
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool>;
    /// Deletes at most `batch` uses that expired by `now`; returns how many.
    async fn purge_used(&self, now: i64, batch: u32) -> StoreResult<u64>;
}

/// The first use inserts the row; a use after expiry takes it over; any other finds a live row
/// and changes nothing (no row affected).
pub(super) const USE_ONCE: &str = "INSERT INTO used_once (use_key, expires_at) VALUES ($1, $2) \
     ON CONFLICT (use_key) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE used_once.expires_at <= $3";

/// `$lock` as in `housekeeping::purge_statements!`: Postgres purgers take disjoint batches.
macro_rules! purge_used {
    ($lock:literal) => {
        concat!(
            "DELETE FROM used_once WHERE use_key IN (SELECT use_key FROM used_once \
             WHERE expires_at <= $1 LIMIT $2",
            $lock,
            ")"
        )
    };
}

macro_rules! impl_replay_store {
    ($store:ty, $lock:literal) => {
        #[async_trait]
        impl ReplayStore for $store {
            async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
                let done = ::sqlx::query(USE_ONCE)
                    .bind(key)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn purge_used(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(purge_used!($lock))
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

impl_replay_store!(super::postgres::PgStore, " FOR UPDATE SKIP LOCKED");
impl_replay_store!(super::sqlite::SqliteStore, "");
