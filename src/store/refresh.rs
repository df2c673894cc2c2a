//! Refresh tokens, rotated on every use (RFC 9700 §4.14.2). Rotation is a transaction that
//! starts with one conditional update, so of racing rotations on any number of nodes exactly
//! one wins; the others learn that the token was used before.
//!
//! Contract: `contract/refresh.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, Bind, SqlRow, db_err, live_grant};
use super::sqlite::SqliteStore;

/// One refresh token of a family. `scope` is the scope originally granted (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    pub token_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
    pub resource: Option<String>,
    pub created_at: i64,
    /// When this token dies unused (idle lifetime).
    pub idle_expires_at: i64,
    /// When the family dies whatever happens (absolute lifetime).
    pub expires_at: i64,
}

/// The result of trying to rotate a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented token was current; it is now rotated out and the new one stored.
    Rotated(RefreshTokenRecord),
    /// The presented token had been rotated out before (or its family was revoked): the caller
    /// must revoke `grant_id`.
    Reused { grant_id: String },
    /// Unknown, expired, or its family is revoked.
    Invalid,
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// In one transaction: if `old_hash` is the current token of a live, unrevoked family and
    /// neither lifetime has passed, mark it rotated and insert `new` (whose grant, client,
    /// user and scope the caller copied from the old token). Of racing calls with the same
    /// token exactly one gets `Rotated` (carrying the old record); the rest see `Reused`.
    async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation>;
    /// The grant of a token that was rotated out, for reuse detection: `Some` when
    /// `token_hash` names a token whose `rotated_at` is set.
    async fn rotated_token_grant(&self, token_hash: &[u8]) -> StoreResult<Option<String>>;
    /// The current (not rotated) token, when it and its family are live.
    async fn get_refresh_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>>;
}

macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, user_sub, scope, sid, auth_time, amr, resource, \
         created_at, idle_expires_at, expires_at"
    };
}

const INSERT_REFRESH_TOKEN: &str = concat!(
    "INSERT INTO refresh_token (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
// The conditional update that rotates a token out; same reasoning as codes' CONSUME_CODE.
const ROTATE_REFRESH_TOKEN: &str = concat!(
    "UPDATE refresh_token SET rotated_at = $2 \
     WHERE token_hash = $1 AND rotated_at IS NULL \
     AND idle_expires_at > $2 AND expires_at > $2 AND ",
    live_grant!("refresh_token"),
    " RETURNING ",
    refresh_columns!()
);
// Why a rotation failed: a token rotated before, or one whose family was revoked, is
// reuse; anything else (unknown, expired, family gone) is merely invalid.
const REFRESH_TOKEN_STATE: &str = "SELECT rt.grant_id, \
     (rt.rotated_at IS NOT NULL OR g.revoked_at IS NOT NULL) AS reused \
     FROM refresh_token rt LEFT JOIN auth_grant g ON g.grant_id = rt.grant_id \
     WHERE rt.token_hash = $1";
const GET_REFRESH_TOKEN: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_token WHERE token_hash = $1 AND rotated_at IS NULL \
     AND idle_expires_at > $2 AND expires_at > $2 AND ",
    live_grant!("refresh_token")
);
const ROTATED_TOKEN_GRANT: &str =
    "SELECT grant_id FROM refresh_token WHERE token_hash = $1 AND rotated_at IS NOT NULL";

/// Binds a token's twelve columns, in `refresh_columns!` order.
fn bind_refresh<'q, Q: Bind<'q>>(query: Q, token: &'q RefreshTokenRecord) -> Q {
    query
        .arg(&token.token_hash)
        .arg(&token.grant_id)
        .arg(&token.client_id)
        .arg(&token.user_sub)
        .arg(&token.scope)
        .arg(&token.sid)
        .arg(token.auth_time)
        .arg(&token.amr)
        .arg(token.resource.as_deref())
        .arg(token.created_at)
        .arg(token.idle_expires_at)
        .arg(token.expires_at)
}

fn refresh_from_row(row: &impl SqlRow) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.col("token_hash")?,
        grant_id: row.col("grant_id")?,
        client_id: row.col("client_id")?,
        user_sub: row.col("user_sub")?,
        scope: row.col("scope")?,
        sid: row.col("sid")?,
        auth_time: row.col("auth_time")?,
        amr: row.col("amr")?,
        resource: row.col("resource")?,
        created_at: row.col("created_at")?,
        idle_expires_at: row.col("idle_expires_at")?,
        expires_at: row.col("expires_at")?,
    })
}

macro_rules! impl_refresh_token_store {
    ($store:ty) => {
        #[async_trait]
        impl RefreshTokenStore for $store {
            async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
                bind_refresh(::sqlx::query(INSERT_REFRESH_TOKEN), token)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn rotate_refresh_token(
                &self,
                old_hash: &[u8],
                new: &RefreshTokenRecord,
                now: i64,
            ) -> StoreResult<Rotation> {
                // The conditional update is the first statement, so the row lock
                // (Postgres) or write lock (SQLite) is taken before anything is read.
                let mut tx = sql::begin_write(&self.pool).await?;
                let rotated = ::sqlx::query(ROTATE_REFRESH_TOKEN)
                    .bind(old_hash)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let Some(row) = rotated.first() else {
                    let state = ::sqlx::query(REFRESH_TOKEN_STATE)
                        .bind(old_hash)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    return match state {
                        Some(row) if row.col::<bool>("reused")? => Ok(Rotation::Reused {
                            grant_id: row.col("grant_id")?,
                        }),
                        _ => Ok(Rotation::Invalid),
                    };
                };
                let old = refresh_from_row(row)?;
                bind_refresh(::sqlx::query(INSERT_REFRESH_TOKEN), new)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sql::commit(tx).await?;
                Ok(Rotation::Rotated(old))
            }

            async fn rotated_token_grant(&self, token_hash: &[u8]) -> StoreResult<Option<String>> {
                ::sqlx::query_scalar(ROTATED_TOKEN_GRANT)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)
            }

            async fn get_refresh_token(
                &self,
                token_hash: &[u8],
                now: i64,
            ) -> StoreResult<Option<RefreshTokenRecord>> {
                ::sqlx::query(GET_REFRESH_TOKEN)
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(refresh_from_row)
                    .transpose()
            }
        }
    };
}

impl_refresh_token_store!(PgStore);
impl_refresh_token_store!(SqliteStore);
