//! Housekeeping: purging expired rows, the change counters that tell nodes to drop their
//! caches, migrations, the readiness ping and pool figures. The change counters are bumped
//! by the concerns whose rows nodes cache (`clients.rs`, `keys.rs`) through
//! `bump_version`, in the same transaction as the change.
//!
//! Contract: `contract/housekeeping.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, Backend, Dialect, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// Counters bumped on every change that nodes cache, polled to invalidate their caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeVersions {
    pub clients: i64,
    pub keys: i64,
}

/// Database pool usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: usize,
}

#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Deletes at most `batch` expired rows of each kind (codes, sessions, interactions,
    /// refresh tokens, grants, revoked access tokens, throttle counters, and audit events
    /// older than `audit::AUDIT_RETENTION`); returns how many in all.
    async fn purge_expired(&self, now: i64, batch: u32) -> StoreResult<u64>;
    /// Cheap counters for cache invalidation across nodes.
    async fn change_versions(&self) -> StoreResult<ChangeVersions>;
    /// Applies the backend's pending migrations (idempotent), for callers that hold only an
    /// `Arc<dyn Store>`.
    async fn migrate(&self) -> StoreResult<()>;
    /// A trivial query, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Connections open and idle in the pool right now, for `/metrics`.
    fn pool_stats(&self) -> PoolStats;
}

/// The `change_version` rows.
pub(super) const CLIENTS_VERSION: &str = "clients";
pub(super) const KEYS_VERSION: &str = "keys";

const BUMP_VERSION: &str = "UPDATE change_version SET version = version + 1 WHERE name = $1";
const CHANGE_VERSIONS: &str = "SELECT name, version FROM change_version";

/// Builds the purge statements: each deletes at most `$2` rows that expired by `$1`.
/// `$lock` is appended to the inner SELECT.
macro_rules! purge_statements {
    ($lock:literal) => {
        [
            concat!(
                "DELETE FROM auth_code WHERE code_hash IN (SELECT code_hash FROM auth_code \
                 WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM session WHERE session_hash IN (SELECT session_hash FROM session \
                 WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM finished_interaction WHERE interaction_id IN (SELECT interaction_id \
                 FROM finished_interaction WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Rotated tokens stay until they would have expired: a replay of one is then still
            // recognised as reuse, which revokes a family an attacker may have taken over.
            concat!(
                "DELETE FROM refresh_token WHERE token_hash IN (SELECT token_hash \
                 FROM refresh_token WHERE idle_expires_at <= $1 OR expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Runs after codes and refresh tokens: a grant goes only once nothing that can
            // still mint tokens refers to it, whatever expiry the caller gave it.
            concat!(
                "DELETE FROM auth_grant WHERE grant_id IN (SELECT grant_id FROM auth_grant \
                 WHERE expires_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM refresh_token rt WHERE rt.grant_id = auth_grant.grant_id) \
                 AND NOT EXISTS (SELECT 1 FROM auth_code c WHERE c.grant_id = auth_grant.grant_id) \
                 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM revoked_access_token WHERE jti IN (SELECT jti \
                 FROM revoked_access_token WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            concat!(
                "DELETE FROM throttle WHERE throttle_key IN (SELECT throttle_key \
                 FROM throttle WHERE expires_at <= $1 AND locked_until <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // A session's clients are forgotten once the session can no longer be live.
            concat!(
                "DELETE FROM session_client WHERE expires_at <= $1 AND sid IN (SELECT sid \
                 FROM session_client WHERE expires_at <= $1 LIMIT $2",
                $lock,
                ")"
            ),
            // Audit events are kept for audit::AUDIT_RETENTION (90 days).
            concat!(
                "DELETE FROM audit_event WHERE event_id IN (SELECT event_id \
                 FROM audit_event WHERE occurred_at <= $1 - 7776000 LIMIT $2",
                $lock,
                ")"
            ),
        ]
    };
}

/// Postgres: nodes purging at once take disjoint batches instead of deadlocking on each
/// other's row locks.
const PURGE_POSTGRES: [&str; 9] = purge_statements!(" FOR UPDATE SKIP LOCKED");
/// SQLite: one writer at a time, so concurrent purges cannot deadlock.
const PURGE_SQLITE: [&str; 9] = purge_statements!("");

macro_rules! impl_housekeeping {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Bumps the change counter `name` inside `tx`, so that nodes see the change
            /// exactly when it commits.
            pub(super) async fn bump_version(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> StoreResult<()> {
                ::sqlx::query(BUMP_VERSION)
                    .bind(name)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Runs one write and, when it touched a row, bumps `version`, atomically.
            pub(super) async fn write_and_bump<'q>(
                &self,
                query: ::sqlx::query::Query<'q, $db, <$db as ::sqlx::Database>::Arguments<'q>>,
                version: &str,
            ) -> StoreResult<u64> {
                let mut tx = sql::begin_write(&self.pool).await?;
                let affected = query
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if affected > 0 {
                    Self::bump_version(&mut tx, version).await?;
                    sql::commit(tx).await?;
                }
                Ok(affected)
            }
        }

        #[async_trait]
        impl Housekeeping for $store {
            async fn purge_expired(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let statements = match <$db as Dialect>::BACKEND {
                    Backend::Postgres => PURGE_POSTGRES,
                    Backend::Sqlite => PURGE_SQLITE,
                };
                // Each statement commits on its own: short transactions keep the locks
                // brief, and a node that dies half-way leaves nothing inconsistent.
                let mut purged = 0;
                for statement in statements {
                    purged += ::sqlx::query(statement)
                        .bind(now)
                        .bind(i64::from(batch))
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                }
                Ok(purged)
            }

            async fn change_versions(&self) -> StoreResult<ChangeVersions> {
                let rows = ::sqlx::query(CHANGE_VERSIONS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                let mut versions = ChangeVersions::default();
                for row in &rows {
                    let name: String = row.col("name")?;
                    let version: i64 = row.col("version")?;
                    match name.as_str() {
                        CLIENTS_VERSION => versions.clients = version,
                        KEYS_VERSION => versions.keys = version,
                        _ => {}
                    }
                }
                Ok(versions)
            }

            async fn ping(&self) -> StoreResult<()> {
                ::sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn migrate(&self) -> StoreResult<()> {
                <$store>::migrate(self).await
            }

            fn pool_stats(&self) -> PoolStats {
                PoolStats {
                    size: self.pool.size(),
                    idle: self.pool.num_idle(),
                }
            }
        }
    };
}

impl_housekeeping!(PgStore, sqlx::Postgres);
impl_housekeeping!(SqliteStore, sqlx::Sqlite);
