//! Users who log in on the login page. Deleting a user takes their sessions, codes, refresh
//! tokens and consents with them and revokes their grants (`grants.rs`, `OwnerDeletion`).
//!
//! Contract: `contract/users.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::factors::{DELETE_FACTORS_OF_USER, DELETE_RECOVERY_CODES_OF_USER};
use super::grants::{DELETE_REFRESH_TOKENS_OF_USER, OwnerDeletion, REVOKE_GRANTS_OF_USER};
use super::postgres::PgStore;
use super::sessions::Which;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, db_err};
use super::sqlite::SqliteStore;
use super::throttle::key_pair;
use crate::protocol::user::UserClaims;

/// A user who logs in on the login page. `password_hash` is an argon2id PHC string, or, for
/// a user created through an upstream, a marker no password matches (`has_password`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub sub: String,
    pub username: String,
    pub password_hash: String,
    pub claims: UserClaims,
    pub disabled: bool,
    /// The user must choose a new password at the next login; setting a password clears it.
    pub password_reset_required: bool,
    /// The user must use a second factor (and is led to enrol one when they have none).
    pub mfa_required: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRecord {
    /// Whether the user has a password at all: a PHC string starts with `$`; the marker of
    /// users created through an upstream (`upstream::accounts`) does not, and no password
    /// verifies against it. The SQL of the way-in rules reads it the same way
    /// (`password_hash LIKE '$%'`).
    pub fn has_password(&self) -> bool {
        self.password_hash.starts_with('$')
    }
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict("username")` when the username is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn get_user(&self, sub: &str) -> StoreResult<Option<UserRecord>>;
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// What a login attempt needs before it is counted, in one read: the user named
    /// `username` (if any) and `ThrottleStore::latest_lock` of `throttle_keys` (one or two).
    async fn get_user_for_login(
        &self,
        username: &str,
        throttle_keys: &[&str],
        now: i64,
    ) -> StoreResult<(Option<UserRecord>, Option<i64>)>;
    /// Ordered by `sub`, those strictly after `after`, at most `limit`.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<UserRecord>>;
    /// Replaces username, claims, disabled, password_reset_required, mfa_required and
    /// updated_at; false
    /// when there is no such user.
    /// Fails with `Conflict("username")` when the new username is taken.
    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool>;
    /// Sets the password hash and clears `password_reset_required`.
    async fn set_password(&self, sub: &str, password_hash: &str, now: i64) -> StoreResult<bool>;
    /// The forced password change: sets `new_hash` and clears `password_reset_required` only
    /// if the user is enabled, must choose a new password, and still has `current_hash`. Of
    /// racing calls exactly one gets true.
    async fn replace_required_password(
        &self,
        sub: &str,
        current_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// A password change by its user (the account page's form, or a reset link), all or
    /// nothing in one transaction: sets `new_hash` (and clears `password_reset_required`)
    /// only if the user is enabled and still has `current_hash`, so of racing changes exactly
    /// one gets true; then ends the user's sessions with their back-channel logout
    /// notifications (`SessionStore::end_other_sessions_of_user`), every one of them, or all
    /// but the one stored as `keep` (the session the account page's change was made in), and
    /// revokes every grant of the user, so no refresh-token family won with the old password
    /// lives on.
    async fn change_password(
        &self,
        sub: &str,
        current_hash: &str,
        new_hash: &str,
        keep: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Applies `patch`, a JSON merge patch (RFC 7396) of top-level claims whose values are
    /// strings, booleans (`email_verified`) or null (null removes the claim), to the stored claims of an enabled user, in
    /// one statement: claims the patch does not name keep whatever a concurrent writer gave
    /// them. False when there is no such enabled user. The caller validates the result.
    async fn patch_claims(
        &self,
        sub: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes the user with its sessions, codes, refresh tokens and consents, and revokes its
    /// grants; false when there was no such user.
    async fn delete_user(&self, sub: &str, now: i64) -> StoreResult<bool>;
}

macro_rules! user_columns {
    () => {
        "sub, username, password_hash, claims, disabled, created_at, updated_at, \
         password_reset_required, mfa_required"
    };
}

/// The user columns qualified by the alias `u`, for reads that join or filter on them.
pub(super) const USER_COLUMNS_U: &str = "u.sub, u.username, u.password_hash, u.claims, \
     u.disabled, u.created_at, u.updated_at, u.password_reset_required, u.mfa_required";

pub(super) const INSERT_USER: &str = concat!(
    "INSERT INTO app_user (",
    user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const GET_USER: &str = concat!("SELECT ", user_columns!(), " FROM app_user WHERE sub = $1");
const GET_USER_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM app_user WHERE username = $1"
);
// What a login needs before counting its attempt, in one read: the latest lock in force
// at $3 on the throttle keys ($1, $2) and the user named $4 (NULL columns when there is
// none).
const GET_USER_FOR_LOGIN: &str = "SELECT t.locked_until, \
     u.sub, u.username, u.password_hash, u.claims, u.disabled, u.created_at, u.updated_at, \
     u.password_reset_required, u.mfa_required \
     FROM (SELECT MAX(CASE WHEN locked_until > $3 THEN locked_until END) AS locked_until \
           FROM throttle WHERE throttle_key IN ($1, $2)) t \
     LEFT JOIN app_user u ON u.username = $4";
const LIST_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM app_user WHERE sub > $1 ORDER BY sub"
);
pub(super) const UPDATE_USER: &str = "UPDATE app_user \
     SET username = $2, claims = $3, disabled = $4, updated_at = $5, \
     password_reset_required = $6, mfa_required = $7 WHERE sub = $1";
// The forced password change: only while the password is still the one the user proved
// ($2) and a new one is required, so of racing submissions one wins, and a ticket dies
// once the password changed (by this form or by an operator).
const REPLACE_REQUIRED_PASSWORD: &str = "UPDATE app_user \
     SET password_hash = $3, updated_at = $4, password_reset_required = FALSE \
     WHERE sub = $1 AND password_hash = $2 AND password_reset_required AND NOT disabled";
// A change by the user (the account page, a reset link): only while the password is still
// the one the user just proved or the link was issued under ($2), so of racing changes one
// wins.
const CHANGE_PASSWORD: &str = "UPDATE app_user \
     SET password_hash = $3, updated_at = $4, password_reset_required = FALSE \
     WHERE sub = $1 AND password_hash = $2 AND NOT disabled";
// A merge patch of top-level claims ($2), applied where the claims are: jsonb's `||` replaces
// the named claims (a null among them is then stripped: stored claims never hold nulls),
// SQLite's json_patch is RFC 7396 itself.
const PATCH_CLAIMS_PG: &str = "UPDATE app_user \
     SET claims = jsonb_strip_nulls(claims::jsonb || $2::jsonb)::text, updated_at = $3 \
     WHERE sub = $1 AND NOT disabled";
const PATCH_CLAIMS_SQLITE: &str = "UPDATE app_user \
     SET claims = json_patch(claims, $2), updated_at = $3 WHERE sub = $1 AND NOT disabled";
pub(super) const SET_PASSWORD: &str = "UPDATE app_user SET password_hash = $2, updated_at = $3, \
     password_reset_required = FALSE WHERE sub = $1";

pub(super) const USER_DELETION: OwnerDeletion = OwnerDeletion {
    delete_owner: "DELETE FROM app_user WHERE sub = $1",
    revoke_grants: "UPDATE auth_grant SET revoked_at = $2 WHERE user_sub = $1 AND revoked_at IS NULL",
    dependents: &[
        "DELETE FROM auth_code WHERE user_sub = $1",
        "DELETE FROM consent WHERE user_sub = $1",
        super::passkeys::DELETE_PASSKEYS_OF_USER,
        DELETE_RECOVERY_CODES_OF_USER,
        DELETE_FACTORS_OF_USER,
        "DELETE FROM upstream_identity WHERE user_sub = $1",
    ],
    families: &[
        "DELETE FROM refresh_family WHERE user_sub = $1",
        "DELETE FROM legacy_refresh_token WHERE user_sub = $1",
    ],
    ends_sessions: true,
    version: None,
};

pub(super) fn user_from_row(row: &impl SqlRow) -> StoreResult<UserRecord> {
    let claims: String = row.col("claims")?;
    Ok(UserRecord {
        sub: row.col("sub")?,
        username: row.col("username")?,
        password_hash: row.col("password_hash")?,
        claims: sql::from_json(&claims, "user claims")?,
        disabled: row.col("disabled")?,
        password_reset_required: row.col("password_reset_required")?,
        mfa_required: row.col("mfa_required")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// Binds a new user's nine columns, in `user_columns!` order (`INSERT_USER`); `claims` is
/// the claims as JSON. Shared with `apply.rs`, so a new column is bound in one place.
pub(super) fn bind_new_user<'q, Q: Bind<'q>>(query: Q, user: &'q UserRecord, claims: String) -> Q {
    query
        .arg(&user.sub)
        .arg(&user.username)
        .arg(&user.password_hash)
        .arg(claims)
        .arg(user.disabled)
        .arg(user.created_at)
        .arg(user.updated_at)
        .arg(user.password_reset_required)
        .arg(user.mfa_required)
}

/// Binds what `UPDATE_USER` writes: everything but the password and the creation time.
pub(super) fn bind_user_update<'q, Q: Bind<'q>>(
    query: Q,
    user: &'q UserRecord,
    claims: String,
) -> Q {
    query
        .arg(&user.sub)
        .arg(&user.username)
        .arg(claims)
        .arg(user.disabled)
        .arg(user.updated_at)
        .arg(user.password_reset_required)
        .arg(user.mfa_required)
}

macro_rules! impl_user_store {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl UserStore for $store {
            async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
                let claims = sql::to_json(&user.claims, "user claims")?;
                bind_new_user(::sqlx::query(INSERT_USER), user, claims)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn get_user(&self, sub: &str) -> StoreResult<Option<UserRecord>> {
                ::sqlx::query(GET_USER)
                    .bind(sub)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(user_from_row)
                    .transpose()
            }

            async fn get_user_by_username(
                &self,
                username: &str,
            ) -> StoreResult<Option<UserRecord>> {
                ::sqlx::query(GET_USER_BY_USERNAME)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(user_from_row)
                    .transpose()
            }

            async fn get_user_for_login(
                &self,
                username: &str,
                throttle_keys: &[&str],
                now: i64,
            ) -> StoreResult<(Option<UserRecord>, Option<i64>)> {
                let (first, second) = key_pair(throttle_keys);
                let row = ::sqlx::query(GET_USER_FOR_LOGIN)
                    .bind(first)
                    .bind(second)
                    .bind(now)
                    .bind(username)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                let locked_until: Option<i64> = row.col("locked_until")?;
                let sub: Option<String> = row.col("sub")?;
                let user = match sub {
                    Some(_) => Some(user_from_row(&row)?),
                    None => None,
                };
                Ok((user, locked_until))
            }

            async fn list_users(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<UserRecord>> {
                ::sqlx::query(&sql::paged(LIST_USERS, limit))
                    .bind(after.unwrap_or(""))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            async fn update_user(&self, user: &UserRecord) -> StoreResult<bool> {
                let claims = sql::to_json(&user.claims, "user claims")?;
                let result = bind_user_update(::sqlx::query(UPDATE_USER), user, claims)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() > 0)
            }

            async fn replace_required_password(
                &self,
                sub: &str,
                current_hash: &str,
                new_hash: &str,
                now: i64,
            ) -> StoreResult<bool> {
                let result = ::sqlx::query(REPLACE_REQUIRED_PASSWORD)
                    .bind(sub)
                    .bind(current_hash)
                    .bind(new_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() == 1)
            }

            async fn set_password(
                &self,
                sub: &str,
                password_hash: &str,
                now: i64,
            ) -> StoreResult<bool> {
                let result = ::sqlx::query(SET_PASSWORD)
                    .bind(sub)
                    .bind(password_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() > 0)
            }

            async fn change_password(
                &self,
                sub: &str,
                current_hash: &str,
                new_hash: &str,
                keep: Option<&[u8]>,
                now: i64,
            ) -> StoreResult<bool> {
                let mut tx = sql::begin_write(&self.pool).await?;
                let changed = ::sqlx::query(CHANGE_PASSWORD)
                    .bind(sub)
                    .bind(current_hash)
                    .bind(new_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if changed != 1 {
                    return Ok(false);
                }
                let which = match keep {
                    Some(keep) => Which::UserExcept(sub, keep),
                    None => Which::User(sub),
                };
                Self::end_sessions_in(&mut tx, which, now).await?;
                ::sqlx::query(REVOKE_GRANTS_OF_USER)
                    .bind(sub)
                    .bind(None::<&str>)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                ::sqlx::query(DELETE_REFRESH_TOKENS_OF_USER)
                    .bind(sub)
                    .bind(None::<&str>)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sql::commit(tx).await?;
                Ok(true)
            }

            async fn patch_claims(
                &self,
                sub: &str,
                patch: &serde_json::Map<String, serde_json::Value>,
                now: i64,
            ) -> StoreResult<bool> {
                let statement = match <$db as Dialect>::BACKEND {
                    Backend::Postgres => PATCH_CLAIMS_PG,
                    Backend::Sqlite => PATCH_CLAIMS_SQLITE,
                };
                let patch = sql::to_json(patch, "claims patch")?;
                let result = ::sqlx::query(statement)
                    .bind(sub)
                    .bind(patch)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_user(&self, sub: &str, now: i64) -> StoreResult<bool> {
                self.delete_owner(&USER_DELETION, sub, now).await
            }
        }
    };
}

impl_user_store!(PgStore, sqlx::Postgres);
impl_user_store!(SqliteStore, sqlx::Sqlite);
