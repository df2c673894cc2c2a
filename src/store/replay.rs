//! Values that may be used once until they expire (`ReplayStore`): a client assertion's `jti`
//! today, a DPoP proof's later. One conditional upsert decides, so of racing uses on any
//! number of nodes exactly one wins. Postgres commits it without waiting for the WAL flush.
//!
//! Contract: `contract/replay.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::sql::relaxed_commit;

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` as used until `expires_at`. False when it was used before and that use
    /// has not expired at `now` (a replay). Of racing calls with one key exactly one gets
    /// true.
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool>;
    /// `use_once` for many distinct keys in one statement: for each `(key, expires_at)`,
    /// whether this call used it (same rules and the same race guarantee per key). Keys must
    /// be distinct; the caller decides what a key repeated within one call means.
    async fn use_each(&self, uses: &[(String, i64)], now: i64) -> StoreResult<Vec<bool>>;
    /// Deletes at most `batch` uses that expired by `now`; returns how many.
    async fn purge_used(&self, now: i64, batch: u32) -> StoreResult<u64>;
}

/// The first use inserts the row; a use after expiry takes it over; any other finds a live row
/// and changes nothing (no row affected). `$from` is where the inserted values are selected
/// from: nothing on SQLite, the `relaxed` CTE on Postgres.
macro_rules! use_once {
    ($with:expr, $from:literal) => {
        concat!(
            $with,
            "INSERT INTO used_once (use_key, expires_at) SELECT $1, $2",
            $from,
            " ON CONFLICT (use_key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE used_once.expires_at <= $3"
        )
    };
}

/// Postgres: the commit does not wait for its WAL flush (`sql::relaxed_commit!`). What a
/// Postgres crash could lose is the record of uses in the last `wal_writer_delay`: each of
/// those values could then be used once more before it expires (a client assertion lives at
/// most five minutes). That is the price of not waiting for a disk flush on every assertion,
/// which would cap private_key_jwt at the disk's flush rate.
const USE_ONCE_PG: &str = use_once!(
    concat!("WITH ", relaxed_commit!(), " "),
    " FROM relaxed WHERE relaxed.setting IS NOT NULL"
);
const USE_ONCE_SQLITE: &str = use_once!("", " WHERE true");

/// Postgres: `use_once` for a batch, the keys and expiries as two arrays, answering the keys
/// this statement inserted or took over. The rows are inserted in key order, so two batches
/// that share keys (on one node or two) lock them in the same order and cannot deadlock.
const USE_EACH_PG: &str = concat!(
    "WITH ",
    relaxed_commit!(),
    ", input AS (SELECT k, e FROM UNNEST($1::text[], $2::bigint[]) AS t(k, e) ORDER BY k) \
     INSERT INTO used_once (use_key, expires_at) SELECT k, e FROM input, relaxed \
     WHERE relaxed.setting IS NOT NULL \
     ON CONFLICT (use_key) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE used_once.expires_at <= $3 RETURNING use_key"
);

macro_rules! impl_replay_store {
    ($store:ty, $use_once:expr, $use_each:ident, $dialect:ident) => {
        #[async_trait]
        impl ReplayStore for $store {
            async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
                let done = ::sqlx::query($use_once)
                    .bind(key)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_each(&self, uses: &[(String, i64)], now: i64) -> StoreResult<Vec<bool>> {
                self.$use_each(uses, now).await
            }

            async fn purge_used(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(super::sql::purge_batch!(
                    $dialect,
                    "used_once",
                    "use_key",
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

impl_replay_store!(super::postgres::PgStore, USE_ONCE_PG, use_each_pg, postgres);
impl_replay_store!(
    super::sqlite::SqliteStore,
    USE_ONCE_SQLITE,
    use_each_sqlite,
    sqlite
);

impl super::postgres::PgStore {
    async fn use_each_pg(&self, uses: &[(String, i64)], now: i64) -> StoreResult<Vec<bool>> {
        let keys: Vec<&str> = uses.iter().map(|(k, _)| k.as_str()).collect();
        let expiries: Vec<i64> = uses.iter().map(|(_, e)| *e).collect();
        let won: std::collections::HashSet<String> = ::sqlx::query_scalar(USE_EACH_PG)
            .bind(&keys)
            .bind(&expiries)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(super::sql::db_err)?
            .into_iter()
            .collect();
        Ok(keys.iter().map(|k| won.contains(*k)).collect())
    }
}

impl super::sqlite::SqliteStore {
    /// SQLite: one statement per key, all in one transaction (one commit for the batch).
    async fn use_each_sqlite(&self, uses: &[(String, i64)], now: i64) -> StoreResult<Vec<bool>> {
        let mut tx = self.pool.begin().await.map_err(super::sql::db_err)?;
        let mut won = Vec::with_capacity(uses.len());
        for (key, expires_at) in uses {
            let done = ::sqlx::query(USE_ONCE_SQLITE)
                .bind(key)
                .bind(*expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(super::sql::db_err)?;
            won.push(done.rows_affected() == 1);
        }
        tx.commit().await.map_err(super::sql::db_err)?;
        Ok(won)
    }
}
