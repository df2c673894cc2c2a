//! Upstream identity providers, `UpstreamStore`: their settings (JSON) and sealed client
//! secrets, and the upstream identities linked to local users. An identity (upstream id +
//! subject) is the primary key of its link, so it belongs to exactly one local user, and of
//! racing links of one identity exactly one wins. Deleting an upstream deletes its links (a
//! new upstream under the same id must not inherit them); deleting a user deletes theirs
//! (`users.rs`). The statements are the same in both dialects but for the JSON lookup of a
//! user's email.
//!
//! Contract: `contract/upstreams.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, SqlRow, db_err};
use super::sqlite::SqliteStore;
use super::users::user_from_row;
use super::{UserRecord, users::USER_COLUMNS_U};
use crate::protocol::upstream::UpstreamSettings;

/// A registered upstream. `secret_sealed` is the client secret sealed under the master key
/// with the upstream id as associated data (`upstream::secret`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRecord {
    pub settings: UpstreamSettings,
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What `unlink_identity` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// The user has no such link.
    NotLinked,
    /// It is the user's last way to sign in; nothing changed.
    LastWayIn,
}

/// One upstream identity linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub upstream_id: String,
    pub subject: String,
    pub user_sub: String,
    pub created_at: i64,
}

#[async_trait]
pub trait UpstreamStore: Send + Sync {
    /// Fails with `Conflict("upstream_id")` when the id is taken.
    async fn insert_upstream(&self, upstream: &UpstreamRecord) -> StoreResult<()>;
    async fn get_upstream(&self, id: &str) -> StoreResult<Option<UpstreamRecord>>;
    /// Ordered by id, those strictly after `after`, at most `limit`.
    async fn list_upstreams(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UpstreamRecord>>;
    /// Replaces settings, sealed secret and `updated_at`; false when there is no such upstream.
    async fn update_upstream(&self, upstream: &UpstreamRecord) -> StoreResult<bool>;
    /// Deletes the upstream and every identity linked through it; false when there was none.
    async fn delete_upstream(&self, id: &str) -> StoreResult<bool>;

    /// The local user an upstream identity is linked to.
    async fn identity_user(&self, upstream_id: &str, subject: &str) -> StoreResult<Option<String>>;
    /// Links an identity to a user; false when the identity is already linked (to anyone).
    /// Of racing calls for one identity exactly one gets true.
    async fn link_identity(&self, identity: &IdentityRecord) -> StoreResult<bool>;
    /// Removes a user's link of an identity, unless it is the user's last way to sign in: no
    /// password (a PHC string), no passkey and no other identity would be left. The check and
    /// the delete hold the user's row (one write transaction), so of racing unlinks of a
    /// user's identities at least one way in always stays.
    async fn unlink_identity(
        &self,
        user_sub: &str,
        upstream_id: &str,
        subject: &str,
    ) -> StoreResult<Unlinked>;
    /// A user's identities, ordered by upstream and subject.
    async fn identities_of_user(&self, user_sub: &str) -> StoreResult<Vec<IdentityRecord>>;
    /// The users whose stored claims say `email` with `email_verified: true` (at most `limit`).
    async fn users_with_verified_email(
        &self,
        email: &str,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;
}

const COLUMNS: &str = "upstream_id, settings, secret_sealed, created_at, updated_at";
pub(super) const INSERT_UPSTREAM: &str = "INSERT INTO upstream (upstream_id, settings, secret_sealed, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5)";
pub(super) const UPDATE_UPSTREAM: &str = "UPDATE upstream SET settings = $2, secret_sealed = $3, updated_at = $4 \
     WHERE upstream_id = $1";
pub(super) const DELETE_IDENTITIES_OF_UPSTREAM: &str =
    "DELETE FROM upstream_identity WHERE upstream_id = $1";
pub(super) const DELETE_UPSTREAM: &str = "DELETE FROM upstream WHERE upstream_id = $1";
const IDENTITY_USER: &str =
    "SELECT user_sub FROM upstream_identity WHERE upstream_id = $1 AND subject = $2";
// ON CONFLICT DO NOTHING: a second link of a linked identity changes nothing and says so.
const LINK: &str = "INSERT INTO upstream_identity (upstream_id, subject, user_sub, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (upstream_id, subject) DO NOTHING";
const IS_LINKED: &str = "SELECT COUNT(*) FROM upstream_identity \
     WHERE user_sub = $1 AND upstream_id = $2 AND subject = $3";
// A password is a PHC string (`$argon2id$…`); users created through an upstream hold a marker
// no password matches (`upstream::accounts`), which is no way in.
const UNLINK_KEEPING_A_WAY_IN: &str = "DELETE FROM upstream_identity \
     WHERE user_sub = $1 AND upstream_id = $2 AND subject = $3 \
     AND (EXISTS (SELECT 1 FROM app_user WHERE sub = $1 AND password_hash LIKE '$%') \
       OR EXISTS (SELECT 1 FROM passkey WHERE user_sub = $1) \
       OR EXISTS (SELECT 1 FROM upstream_identity o WHERE o.user_sub = $1 \
                  AND NOT (o.upstream_id = $2 AND o.subject = $3)))";
const IDENTITIES_OF_USER: &str = "SELECT upstream_id, subject, user_sub, created_at \
     FROM upstream_identity WHERE user_sub = $1 ORDER BY upstream_id, subject";

// The email lookup reads the claims JSON: `->>` on Postgres (the column is text, so cast),
// `json_extract` on SQLite. A rare path (a first login through a linking upstream), so no
// index: a full scan of the users is acceptable there.
fn verified_email_query(postgres: bool) -> String {
    let (email, verified) = if postgres {
        (
            "(u.claims::jsonb ->> 'email')",
            "(u.claims::jsonb ->> 'email_verified') = 'true'",
        )
    } else {
        (
            "json_extract(u.claims, '$.email')",
            "json_extract(u.claims, '$.email_verified') = 1",
        )
    };
    format!(
        "SELECT {USER_COLUMNS_U} FROM app_user u WHERE {email} = $1 AND {verified} \
         ORDER BY u.sub LIMIT $2"
    )
}

fn upstream_from_row(row: &impl SqlRow) -> StoreResult<UpstreamRecord> {
    let settings: String = row.col("settings")?;
    Ok(UpstreamRecord {
        settings: sql::from_json(&settings, "upstream settings")?,
        secret_sealed: row.col("secret_sealed")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

fn identity_from_row(row: &impl SqlRow) -> StoreResult<IdentityRecord> {
    Ok(IdentityRecord {
        upstream_id: row.col("upstream_id")?,
        subject: row.col("subject")?,
        user_sub: row.col("user_sub")?,
        created_at: row.col("created_at")?,
    })
}

// The user's row is locked before the check on Postgres (its write transactions may run side
// by side); SQLite's write transaction (`BEGIN IMMEDIATE`) is alone already.
const LOCK_USER_PG: &str = "SELECT sub FROM app_user WHERE sub = $1 FOR UPDATE";
const LOCK_USER_SQLITE: &str = "SELECT sub FROM app_user WHERE sub = $1";

macro_rules! impl_upstream_store {
    ($store:ty, $postgres:literal, $lock_user:expr) => {
        #[async_trait]
        impl UpstreamStore for $store {
            async fn insert_upstream(&self, upstream: &UpstreamRecord) -> StoreResult<()> {
                let settings = sql::to_json(&upstream.settings, "upstream settings")?;
                ::sqlx::query(INSERT_UPSTREAM)
                    .bind(&upstream.settings.id)
                    .bind(settings)
                    .bind(&upstream.secret_sealed)
                    .bind(upstream.created_at)
                    .bind(upstream.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn get_upstream(&self, id: &str) -> StoreResult<Option<UpstreamRecord>> {
                ::sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM upstream WHERE upstream_id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(upstream_from_row)
                .transpose()
            }

            async fn list_upstreams(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<UpstreamRecord>> {
                ::sqlx::query(&super::sql::paged(
                    &format!(
                        "SELECT {COLUMNS} FROM upstream WHERE upstream_id > $1 ORDER BY upstream_id"
                    ),
                    limit,
                ))
                .bind(after.unwrap_or(""))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(upstream_from_row)
                .collect()
            }

            async fn update_upstream(&self, upstream: &UpstreamRecord) -> StoreResult<bool> {
                let settings = sql::to_json(&upstream.settings, "upstream settings")?;
                let done = ::sqlx::query(UPDATE_UPSTREAM)
                    .bind(&upstream.settings.id)
                    .bind(settings)
                    .bind(&upstream.secret_sealed)
                    .bind(upstream.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_upstream(&self, id: &str) -> StoreResult<bool> {
                let mut tx = sql::begin_write(&self.pool).await?;
                ::sqlx::query(DELETE_IDENTITIES_OF_UPSTREAM)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let deleted = ::sqlx::query(DELETE_UPSTREAM)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                sql::commit(tx).await?;
                Ok(deleted == 1)
            }

            async fn identity_user(
                &self,
                upstream_id: &str,
                subject: &str,
            ) -> StoreResult<Option<String>> {
                ::sqlx::query_scalar(IDENTITY_USER)
                    .bind(upstream_id)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)
            }

            async fn link_identity(&self, identity: &IdentityRecord) -> StoreResult<bool> {
                let done = ::sqlx::query(LINK)
                    .bind(&identity.upstream_id)
                    .bind(&identity.subject)
                    .bind(&identity.user_sub)
                    .bind(identity.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn unlink_identity(
                &self,
                user_sub: &str,
                upstream_id: &str,
                subject: &str,
            ) -> StoreResult<Unlinked> {
                let mut tx = sql::begin_write(&self.pool).await?;
                ::sqlx::query($lock_user)
                    .bind(user_sub)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let deleted = ::sqlx::query(UNLINK_KEEPING_A_WAY_IN)
                    .bind(user_sub)
                    .bind(upstream_id)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                let outcome = if deleted == 1 {
                    Unlinked::Done
                } else {
                    let linked: i64 = ::sqlx::query_scalar(IS_LINKED)
                        .bind(user_sub)
                        .bind(upstream_id)
                        .bind(subject)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if linked == 0 {
                        Unlinked::NotLinked
                    } else {
                        Unlinked::LastWayIn
                    }
                };
                sql::commit(tx).await?;
                Ok(outcome)
            }

            async fn identities_of_user(&self, user_sub: &str) -> StoreResult<Vec<IdentityRecord>> {
                ::sqlx::query(IDENTITIES_OF_USER)
                    .bind(user_sub)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(identity_from_row)
                    .collect()
            }

            async fn users_with_verified_email(
                &self,
                email: &str,
                limit: u32,
            ) -> StoreResult<Vec<UserRecord>> {
                ::sqlx::query(&verified_email_query($postgres))
                    .bind(email)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }
        }
    };
}

impl_upstream_store!(PgStore, true, LOCK_USER_PG);
impl_upstream_store!(SqliteStore, false, LOCK_USER_SQLITE);
