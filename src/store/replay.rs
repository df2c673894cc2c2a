//! Values that may be used once until they expire (`ReplayStore`): a client assertion's `jti`
//! today, a DPoP proof's later. One conditional upsert decides, so of racing uses on any
//! number of nodes exactly one wins. The statements are the same in both dialects.

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

/// `$lock` as in `sql::purge_statements!`: Postgres purgers take disjoint batches.
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

#[cfg(test)]
mod contract {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use crate::store::{Store, testing};

    const NOW: i64 = 1_700_000_000;

    async fn a_value_is_used_once_until_it_expires(store: Arc<dyn Store>) {
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let racers: Vec<_> = (0..50)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.use_once("jti:a", NOW + 60, NOW).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for r in racers {
            wins += usize::from(r.await.unwrap());
        }
        assert_eq!(wins, 1, "exactly one of 50 racing uses wins");
        assert!(!store.use_once("jti:a", NOW + 60, NOW + 59).await.unwrap());
        assert!(store.use_once("jti:b", NOW + 60, NOW).await.unwrap());
        // Once expired, the value may be used again (its owner's rules reject old values).
        assert!(store.use_once("jti:a", NOW + 200, NOW + 60).await.unwrap());
        assert!(!store.use_once("jti:a", NOW + 200, NOW + 61).await.unwrap());
        assert_eq!(store.purge_used(NOW + 100, 10).await.unwrap(), 1, "jti:b");
        assert!(store.use_once("jti:b", NOW + 300, NOW + 100).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        a_value_is_used_once_until_it_expires(testing::postgres_store().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        a_value_is_used_once_until_it_expires(testing::sqlite_store().await).await;
    }
}
