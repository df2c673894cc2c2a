//! Grants: the family of tokens descended from one authorization. Revoking a family marks
//! its grant revoked (its access tokens are then inactive) and deletes its refresh-token row
//! (`refresh_family`, one per family);
//! the grant row stays until every access token it produced has expired. Also what deleting
//! a client or a user takes with it (`OwnerDeletion`), and the revocation that `codes.rs`
//! and `refresh.rs` run in the statement or transaction that detects a reuse
//! (`revoke_families!`, `revoke_family`).
//!
//! Contract: `contract/grants.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, Bind, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// The family of tokens descended from one authorization (one code, or one password grant).
/// Revoking it ends every refresh token of the family and makes its access tokens inactive.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub created_at: i64,
    /// Kept at least until every access token of the family has expired.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Creates a grant row (password grant; codes create theirs in `insert_code`).
    async fn insert_grant(&self, grant: &GrantRecord) -> StoreResult<()>;
    async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>>;
    /// Revokes the family: marks the grant revoked and deletes its refresh-token row. Idempotent.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()>;
    /// Revokes every grant of a user (all clients), or of one user and client.
    async fn revoke_grants_for_user(
        &self,
        sub: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> StoreResult<u64>;
}

macro_rules! grant_columns {
    () => {
        "grant_id, client_id, user_sub, scope, created_at, expires_at, revoked_at"
    };
}
pub(super) use grant_columns;

/// Postgres: the CTEs that revoke the families named by the CTE `$families` (a column
/// `grant_id`) at `$now`, for a statement that detects a reuse. The grant is locked first
/// and then its refresh-token row, the order `revoke_grant` takes them in. `revoked` names every
/// family it touched, revoked before or now (the first revocation time stays), so that
/// `dropped` deletes the row of a family revoked before as well.
macro_rules! revoke_families {
    ($families:literal, $now:literal) => {
        concat!(
            "revoked AS (UPDATE auth_grant SET revoked_at = COALESCE(revoked_at, ",
            $now,
            ") WHERE grant_id IN (SELECT grant_id FROM ",
            $families,
            ") RETURNING grant_id), \
             dropped AS (DELETE FROM refresh_family \
             WHERE grant_id IN (SELECT grant_id FROM revoked))"
        )
    };
}
pub(super) use revoke_families;

pub(super) const INSERT_GRANT: &str = concat!(
    "INSERT INTO auth_grant (",
    grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const GET_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM auth_grant WHERE grant_id = $1"
);
const REVOKE_GRANT: &str =
    "UPDATE auth_grant SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL";
const DELETE_REFRESH_TOKENS_OF_GRANT: &str = "DELETE FROM refresh_family WHERE grant_id = $1";
pub(super) const REVOKE_GRANTS_OF_USER: &str = "UPDATE auth_grant SET revoked_at = $3 \
     WHERE user_sub = $1 AND ($2 IS NULL OR client_id = $2) AND revoked_at IS NULL";
pub(super) const DELETE_REFRESH_TOKENS_OF_USER: &str =
    "DELETE FROM refresh_family WHERE user_sub = $1 AND ($2 IS NULL OR client_id = $2)";

/// Binds a grant's seven columns, in `grant_columns!` order.
pub(super) fn bind_grant<'q, Q: Bind<'q>>(query: Q, grant: &'q GrantRecord) -> Q {
    query
        .arg(&grant.grant_id)
        .arg(&grant.client_id)
        .arg(&grant.user_sub)
        .arg(&grant.scope)
        .arg(grant.created_at)
        .arg(grant.expires_at)
        .arg(grant.revoked_at)
}

fn grant_from_row(row: &impl SqlRow) -> StoreResult<GrantRecord> {
    Ok(GrantRecord {
        grant_id: row.col("grant_id")?,
        client_id: row.col("client_id")?,
        user_sub: row.col("user_sub")?,
        scope: row.col("scope")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
        revoked_at: row.col("revoked_at")?,
    })
}

/// What deleting a client or a user takes with it, in one transaction: the owner row, the
/// dependent rows (each a statement binding only the owner's id as `$1`), and its grants,
/// revoked rather than deleted so that their access tokens stay refused until they expire.
pub(super) struct OwnerDeletion {
    pub(super) delete_owner: &'static str,
    /// Binds the owner's id as `$1` and `now` as `$2`.
    pub(super) revoke_grants: &'static str,
    /// Dependent rows deleted before the grants are revoked (codes among them).
    pub(super) dependents: &'static [&'static str],
    /// The refresh-token rows (each a statement binding the owner's id as `$1`), deleted
    /// after the grants are revoked: a grant row is always locked before its family's row.
    pub(super) families: &'static [&'static str],
    /// Whether the owner is a user whose sessions end with it, as every session ends
    /// (`sessions.rs`, `end_sessions!`): the clients that took part in them are notified.
    pub(super) ends_sessions: bool,
    /// The `change_version` row to bump, when nodes cache this kind of owner.
    pub(super) version: Option<&'static str>,
}

macro_rules! impl_grant_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Revokes the family `grant_id` inside `tx`: the grant first, then its tokens (SQLite's
            /// `revoke_families!`).
            pub(super) async fn revoke_family(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                grant_id: &str,
                now: i64,
            ) -> StoreResult<()> {
                ::sqlx::query(REVOKE_GRANT)
                    .bind(grant_id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                ::sqlx::query(DELETE_REFRESH_TOKENS_OF_GRANT)
                    .bind(grant_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Deletes a client or a user as `deletion` says; false when there was none.
            pub(super) async fn delete_owner(
                &self,
                deletion: &OwnerDeletion,
                id: &str,
                now: i64,
            ) -> StoreResult<bool> {
                let mut tx = sql::begin_write(&self.pool).await?;
                if !Self::delete_owner_in(&mut tx, deletion, id, now).await? {
                    return Ok(false);
                }
                sql::commit(tx).await?;
                Ok(true)
            }

            /// `delete_owner` inside `tx` (also used by `apply.rs`, which deletes several
            /// owners in one transaction); false when there was none.
            pub(super) async fn delete_owner_in(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                deletion: &OwnerDeletion,
                id: &str,
                now: i64,
            ) -> StoreResult<bool> {
                let deleted = ::sqlx::query(deletion.delete_owner)
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                if deletion.ends_sessions {
                    Self::end_sessions_in(tx, super::sessions::Which::User(id), now).await?;
                }
                // Locks are taken in the order every other path takes them, so that none
                // can deadlock with this on Postgres: codes first (consume_code locks a code
                // and then its grant), then the grants, then their refresh-token rows (a
                // rotation or a revocation locks the grant and then the family). A family
                // row that a racing redemption inserts after the delete's snapshot is dead
                // all the same: its grant is revoked, and presenting it is reuse.
                for statement in deletion.dependents.iter().copied() {
                    ::sqlx::query(statement)
                        .bind(id)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                ::sqlx::query(deletion.revoke_grants)
                    .bind(id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                for statement in deletion.families.iter().copied() {
                    ::sqlx::query(statement)
                        .bind(id)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                if let Some(version) = deletion.version {
                    Self::bump_version(tx, version).await?;
                }
                Ok(true)
            }
        }

        #[async_trait]
        impl GrantStore for $store {
            async fn insert_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
                bind_grant(::sqlx::query(INSERT_GRANT), grant)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
                ::sqlx::query(GET_GRANT)
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(grant_from_row)
                    .transpose()
            }

            async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
                let mut tx = sql::begin_write(&self.pool).await?;
                Self::revoke_family(&mut tx, grant_id, now).await?;
                sql::commit(tx).await
            }

            async fn revoke_grants_for_user(
                &self,
                sub: &str,
                client_id: Option<&str>,
                now: i64,
            ) -> StoreResult<u64> {
                let mut tx = sql::begin_write(&self.pool).await?;
                let revoked = ::sqlx::query(REVOKE_GRANTS_OF_USER)
                    .bind(sub)
                    .bind(client_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                ::sqlx::query(DELETE_REFRESH_TOKENS_OF_USER)
                    .bind(sub)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sql::commit(tx).await?;
                Ok(revoked)
            }
        }
    };
}

impl_grant_store!(PgStore, sqlx::Postgres);
impl_grant_store!(SqliteStore, sqlx::Sqlite);
