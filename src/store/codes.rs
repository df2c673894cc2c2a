//! Authorization codes: stored by hash with the grant (family) they start, and redeemed once.
//! Redeeming is one conditional `UPDATE … RETURNING`, so of racing redemptions on any number
//! of nodes exactly one wins; on Postgres the grant's expiry is raised in the same
//! statement, on SQLite in the same transaction.
//!
//! Contract: `contract/codes.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::grants::{GrantRecord, INSERT_GRANT, bind_grant, grant_columns};
use super::postgres::PgStore;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, active_user, db_err, live_grant};
use super::sqlite::SqliteStore;

/// An authorization code, stored by hash and bound to everything the token request must match.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthCodeRecord {
    pub code_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
    pub acr: Option<String>,
    pub resource: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The result of trying to redeem a code.
// One value per token request, moved straight into the caller's match: boxing the record to
// shrink the enum would cost an allocation and buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRedemption {
    /// First redemption within its lifetime: the code is now consumed.
    Redeemed(AuthCodeRecord),
    /// The code was redeemed before: the caller must revoke `grant_id`.
    Reused { grant_id: String },
    /// Unknown or expired.
    Invalid,
}

#[async_trait]
pub trait AuthCodeStore: Send + Sync {
    /// Stores the code and creates its grant (family) row with the given expiry, atomically.
    async fn insert_code(&self, code: &AuthCodeRecord, grant_expires_at: i64) -> StoreResult<()>;
    /// Marks the code consumed with one conditional update, so that of any number of racing
    /// calls (on any number of nodes) exactly one gets `Redeemed`. An expired code, or one
    /// whose user is disabled or gone, is `Invalid` (and stays unconsumed); a consumed one is
    /// `Reused`. On success the grant's expiry is raised to at
    /// least `grant_expires_at`.
    async fn consume_code(
        &self,
        code_hash: &[u8],
        now: i64,
        grant_expires_at: i64,
    ) -> StoreResult<CodeRedemption>;
}

macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_sub, redirect_uri, scope, code_challenge, nonce, \
         sid, auth_time, amr, acr, resource, created_at, expires_at"
    };
}
pub(super) use code_columns;

const INSERT_CODE: &str = concat!(
    "INSERT INTO auth_code (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
);
/// Postgres: the grant and its code in one statement (one round trip, atomic without a
/// transaction). The grant takes the code's ids, scope and creation time; `$16` is the
/// grant's expiry.
const INSERT_GRANT_AND_CODE: &str = concat!(
    "WITH new_grant AS (INSERT INTO auth_grant (",
    grant_columns!(),
    ") VALUES ($2, $3, $4, $6, $14, $16, NULL)) INSERT INTO auth_code (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
);
// The single conditional update that redeems a code: of racing calls, the database lets
// exactly one see `consumed_at IS NULL`. A code whose family was revoked (for example by
// revoke_grants_for_user) cannot be redeemed either.
const CONSUME_CODE: &str = concat!(
    "UPDATE auth_code SET consumed_at = $2 \
     WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 AND ",
    live_grant!("auth_code"),
    " AND ",
    active_user!("auth_code"),
    " RETURNING ",
    code_columns!()
);
/// Only ever raises the expiry: the grant must outlive every token already issued.
const EXTEND_GRANT: &str =
    "UPDATE auth_grant SET expires_at = $2 WHERE grant_id = $1 AND expires_at < $2";
/// Postgres: `CONSUME_CODE` and `EXTEND_GRANT` (to `$3`) of the redeemed code's grant in
/// one statement. Of racing calls the row lock on the code lets one through; the others
/// see no row and extend nothing.
const CONSUME_CODE_AND_EXTEND_GRANT: &str = concat!(
    "WITH consumed AS (UPDATE auth_code SET consumed_at = $2 \
     WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 AND ",
    live_grant!("auth_code"),
    " AND ",
    active_user!("auth_code"),
    " RETURNING ",
    code_columns!(),
    "), extended AS (UPDATE auth_grant SET expires_at = $3 \
     WHERE grant_id IN (SELECT grant_id FROM consumed) AND expires_at < $3) SELECT ",
    code_columns!(),
    " FROM consumed"
);
const CODE_STATE: &str = "SELECT grant_id, consumed_at FROM auth_code WHERE code_hash = $1";

/// Binds a code's fifteen columns, in `code_columns!` order, as `$1`..`$15`.
pub(super) fn bind_code<'q, Q: Bind<'q>>(query: Q, code: &'q AuthCodeRecord) -> Q {
    query
        .arg(&code.code_hash)
        .arg(&code.grant_id)
        .arg(&code.client_id)
        .arg(&code.user_sub)
        .arg(&code.redirect_uri)
        .arg(&code.scope)
        .arg(code.code_challenge.as_deref())
        .arg(code.nonce.as_deref())
        .arg(&code.sid)
        .arg(code.auth_time)
        .arg(&code.amr)
        .arg(code.acr.as_deref())
        .arg(code.resource.as_deref())
        .arg(code.created_at)
        .arg(code.expires_at)
}

fn code_from_row(row: &impl SqlRow) -> StoreResult<AuthCodeRecord> {
    Ok(AuthCodeRecord {
        code_hash: row.col("code_hash")?,
        grant_id: row.col("grant_id")?,
        client_id: row.col("client_id")?,
        user_sub: row.col("user_sub")?,
        redirect_uri: row.col("redirect_uri")?,
        scope: row.col("scope")?,
        code_challenge: row.col("code_challenge")?,
        nonce: row.col("nonce")?,
        sid: row.col("sid")?,
        auth_time: row.col("auth_time")?,
        amr: row.col("amr")?,
        acr: row.col("acr")?,
        resource: row.col("resource")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
    })
}

/// The grant (family) row a new code starts.
fn code_grant(code: &AuthCodeRecord, expires_at: i64) -> GrantRecord {
    GrantRecord {
        grant_id: code.grant_id.clone(),
        client_id: code.client_id.clone(),
        user_sub: code.user_sub.clone(),
        scope: code.scope.clone(),
        created_at: code.created_at,
        expires_at,
        revoked_at: None,
    }
}

macro_rules! impl_code_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts the code and the grant it starts inside `tx` (SQLite's
            /// `INSERT_GRANT_AND_CODE`, and the end of a finished interaction).
            pub(super) async fn insert_code_in(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                code: &AuthCodeRecord,
                grant_expires_at: i64,
            ) -> StoreResult<()> {
                let grant = code_grant(code, grant_expires_at);
                bind_grant(::sqlx::query(INSERT_GRANT), &grant)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                bind_code(::sqlx::query(INSERT_CODE), code)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Why a code was not redeemed: a reused code (whose grant the caller revokes),
            /// or an unknown or expired one.
            async fn unredeemed<'c, E>(executor: E, code_hash: &[u8]) -> StoreResult<CodeRedemption>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                let state = ::sqlx::query(CODE_STATE)
                    .bind(code_hash)
                    .fetch_optional(executor)
                    .await
                    .map_err(db_err)?;
                Ok(match state {
                    Some(row) if row.col::<Option<i64>>("consumed_at")?.is_some() => {
                        CodeRedemption::Reused {
                            grant_id: row.col("grant_id")?,
                        }
                    }
                    _ => CodeRedemption::Invalid,
                })
            }
        }

        #[async_trait]
        impl AuthCodeStore for $store {
            async fn insert_code(
                &self,
                code: &AuthCodeRecord,
                grant_expires_at: i64,
            ) -> StoreResult<()> {
                match <$db as Dialect>::BACKEND {
                    Backend::Postgres => {
                        bind_code(::sqlx::query(INSERT_GRANT_AND_CODE), code)
                            .bind(grant_expires_at)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                        Ok(())
                    }
                    Backend::Sqlite => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        Self::insert_code_in(&mut tx, code, grant_expires_at).await?;
                        sql::commit(tx).await
                    }
                }
            }

            async fn consume_code(
                &self,
                code_hash: &[u8],
                now: i64,
                grant_expires_at: i64,
            ) -> StoreResult<CodeRedemption> {
                if let Backend::Postgres = <$db as Dialect>::BACKEND {
                    let consumed = ::sqlx::query(CONSUME_CODE_AND_EXTEND_GRANT)
                        .bind(code_hash)
                        .bind(now)
                        .bind(grant_expires_at)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if let Some(row) = consumed {
                        return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
                    }
                    return Self::unredeemed(&self.pool, code_hash).await;
                }
                // SQLite: the same in one transaction.
                let mut tx = sql::begin_write(&self.pool).await?;
                let consumed = ::sqlx::query(CONSUME_CODE)
                    .bind(code_hash)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let outcome = match consumed.first() {
                    Some(row) => {
                        let code = code_from_row(row)?;
                        ::sqlx::query(EXTEND_GRANT)
                            .bind(&code.grant_id)
                            .bind(grant_expires_at)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        CodeRedemption::Redeemed(code)
                    }
                    None => Self::unredeemed(&mut *tx, code_hash).await?,
                };
                sql::commit(tx).await?;
                Ok(outcome)
            }
        }
    };
}

impl_code_store!(PgStore, sqlx::Postgres);
impl_code_store!(SqliteStore, sqlx::Sqlite);
