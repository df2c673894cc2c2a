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
    /// Deletes at most `batch` expired rows of each kind (`Expiring::ALL`: codes, sessions,
    /// interactions, refresh families, grants, revoked access tokens, throttle counters, and
    /// audit events older than `audit::AUDIT_RETENTION`); returns how many in all.
    async fn purge_expired(&self, now: i64, batch: u32) -> StoreResult<u64>;
    /// Deletes at most `batch` expired rows of `kind`, in one short statement; returns how
    /// many. Nodes purging at once delete disjoint rows: each row is counted by one of them.
    async fn purge_kind(&self, kind: Expiring, now: i64, batch: u32) -> StoreResult<u64>;
    /// How many expired rows of `kind` are still present, counted up to `cap`.
    async fn expired_backlog(&self, kind: Expiring, now: i64, cap: u32) -> StoreResult<u64>;
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

/// The statements of one expiring kind: `table`'s rows (primary key `key`) for which `cond`
/// holds at `$1` are expired. The purges (Postgres's, SQLite's) delete at most `$2` of them
/// (`sql::purge_batch!`); the backlog counts them, up to `$2`.
macro_rules! expiring {
    ($table:literal, $key:literal, $cond:literal) => {
        (
            $table,
            super::sql::purge_batch!(postgres, $table, $key, $cond),
            super::sql::purge_batch!(sqlite, $table, $key, $cond),
            concat!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM ",
                $table,
                " WHERE ",
                $cond,
                " LIMIT $2) AS expired"
            ),
        )
    };
}

/// A kind of row that expires and that housekeeping purges, in the order it purges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiring {
    Codes,
    Sessions,
    FinishedInteractions,
    RefreshFamilies,
    LegacyRefreshTokens,
    Grants,
    RevokedAccessTokens,
    Throttle,
    SessionClients,
    EmailTokens,
    AuditEvents,
}

impl Expiring {
    /// Every kind, in purge order: grants after codes and refresh families, so that a grant
    /// goes only once nothing that can still mint tokens refers to it.
    pub const ALL: [Expiring; 11] = [
        Expiring::Codes,
        Expiring::Sessions,
        Expiring::FinishedInteractions,
        Expiring::RefreshFamilies,
        Expiring::LegacyRefreshTokens,
        Expiring::Grants,
        Expiring::RevokedAccessTokens,
        Expiring::Throttle,
        Expiring::SessionClients,
        Expiring::EmailTokens,
        Expiring::AuditEvents,
    ];

    /// The table, as metrics label it.
    pub fn table(self) -> &'static str {
        self.statements().0
    }

    /// (table, Postgres purge, SQLite purge, backlog count).
    fn statements(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Expiring::Codes => expiring!("auth_code", "code_hash", "expires_at <= $1"),
            Expiring::Sessions => expiring!("session", "session_hash", "expires_at <= $1"),
            Expiring::FinishedInteractions => {
                expiring!("finished_interaction", "interaction_id", "expires_at <= $1")
            }
            // One row per family; its idle expiry is never after its absolute one.
            Expiring::RefreshFamilies => {
                expiring!("refresh_family", "grant_id", "idle_expires_at <= $1")
            }
            // Tokens issued before migration 0080 stay until their family would have
            // expired: a replay of a rotated one is then still recognised as reuse.
            Expiring::LegacyRefreshTokens => {
                expiring!("legacy_refresh_token", "token_hash", "expires_at <= $1")
            }
            // A grant goes only once nothing that can still mint tokens refers to it,
            // whatever expiry the caller gave it.
            Expiring::Grants => expiring!(
                "auth_grant",
                "grant_id",
                "expires_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM refresh_family rf WHERE rf.grant_id = auth_grant.grant_id) \
                 AND NOT EXISTS (SELECT 1 FROM auth_code c WHERE c.grant_id = auth_grant.grant_id)"
            ),
            Expiring::RevokedAccessTokens => {
                expiring!("revoked_access_token", "jti", "expires_at <= $1")
            }
            Expiring::Throttle => expiring!(
                "throttle",
                "throttle_key",
                "expires_at <= $1 AND locked_until <= $1"
            ),
            // A session's clients are forgotten once the session can no longer be live. The
            // key is (sid, client_id): a batch names sessions, and only their expired rows go.
            Expiring::SessionClients => (
                "session_client",
                "DELETE FROM session_client WHERE expires_at <= $1 AND sid = ANY(ARRAY(SELECT \
                 sid FROM session_client WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))",
                "DELETE FROM session_client WHERE expires_at <= $1 AND sid IN (SELECT sid \
                 FROM session_client WHERE expires_at <= $1 LIMIT $2)",
                "SELECT COUNT(*) FROM (SELECT 1 FROM session_client WHERE expires_at <= $1 \
                 LIMIT $2) AS expired",
            ),
            // Links sent by mail that were never used.
            Expiring::EmailTokens => expiring!("email_token", "token_hash", "expires_at <= $1"),
            // Audit events are kept for audit::AUDIT_RETENTION (90 days).
            Expiring::AuditEvents => {
                expiring!("audit_event", "event_id", "occurred_at <= $1 - 7776000")
            }
        }
    }
}

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
                let mut purged = 0;
                for kind in Expiring::ALL {
                    purged += self.purge_kind(kind, now, batch).await?;
                }
                Ok(purged)
            }

            async fn purge_kind(&self, kind: Expiring, now: i64, batch: u32) -> StoreResult<u64> {
                let (_, postgres, sqlite, _) = kind.statements();
                let statement = match <$db as Dialect>::BACKEND {
                    Backend::Postgres => postgres,
                    Backend::Sqlite => sqlite,
                };
                // Each statement commits on its own: short transactions keep the locks
                // brief, and a node that dies half-way leaves nothing inconsistent.
                Ok(::sqlx::query(statement)
                    .bind(now)
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                    .rows_affected())
            }

            async fn expired_backlog(
                &self,
                kind: Expiring,
                now: i64,
                cap: u32,
            ) -> StoreResult<u64> {
                let count: i64 = ::sqlx::query_scalar(kind.statements().3)
                    .bind(now)
                    .bind(i64::from(cap))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(u64::try_from(count).unwrap_or(0))
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

#[cfg(test)]
mod tests;
