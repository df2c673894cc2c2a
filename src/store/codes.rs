//! Authorization codes: stored by hash with the grant (family) they start, and redeemed once.
//! `consume_code` decides everything about a presented code in one operation: on Postgres one
//! statement, on SQLite one `BEGIN IMMEDIATE` transaction. A code redeemed for the first time
//! by its own client is consumed and its grant extended; a code used before, or presented by
//! another client, revokes its grant (RFC 6749 §4.1.2, RFC 9700 §4.5) in that same
//! operation. The decision is one SQL `CASE` (`code_verdict!`) both dialects share.
//!
//! Contract: `contract/codes.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::grants::{GrantRecord, INSERT_GRANT, bind_grant, grant_columns, revoke_families};
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
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (the request's
    /// `dpop_jkt`); the token request must carry a proof signed with that key.
    pub dpop_jkt: Option<String>,
}

/// The result of trying to redeem a code.
// One value per token request, moved straight into the caller's match: boxing the record to
// shrink the enum would cost an allocation and buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRedemption {
    /// First redemption within its lifetime, by its own client: the code is now consumed.
    Redeemed(AuthCodeRecord),
    /// The code was redeemed before (or lost a race to another redemption): its grant
    /// `grant_id` is now revoked.
    Reused { grant_id: String },
    /// The code was issued to another client, which means it leaked: it is now consumed and
    /// its grant `grant_id` revoked.
    OtherClient { grant_id: String },
    /// Unknown or expired, or its grant revoked or its user disabled or gone: nothing changed.
    Invalid,
    /// The code is bound to a DPoP key (RFC 9449 §10) and the request proved possession of
    /// none, or of another: nothing changed, the code is still redeemable with its key.
    WrongKey,
}

#[async_trait]
pub trait AuthCodeStore: Send + Sync {
    /// Stores the code and creates its grant (family) row with the given expiry, atomically.
    async fn insert_code(&self, code: &AuthCodeRecord, grant_expires_at: i64) -> StoreResult<()>;
    /// Redeems the code for `client_id` in one operation (one statement on Postgres, one
    /// transaction on SQLite), so that of any number of racing calls (on any number of nodes)
    /// exactly one gets `Redeemed`, and every other gets `Reused` with the grant already
    /// revoked. An expired code, or one whose grant is revoked or whose user is disabled or
    /// gone, is `Invalid` and stays unconsumed. Presented by another client, it is consumed
    /// and its grant revoked (`OtherClient`). A code bound to a DPoP key that `dpop_jkt` (the
    /// thumbprint of the key the request proved possession of) is not is `WrongKey` and stays
    /// unconsumed. On success the grant's expiry is raised to at least `grant_expires_at`.
    async fn consume_code(
        &self,
        code_hash: &[u8],
        client_id: &str,
        dpop_jkt: Option<&str>,
        now: i64,
        grant_expires_at: i64,
    ) -> StoreResult<CodeRedemption>;
}

macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_sub, redirect_uri, scope, code_challenge, nonce, \
         sid, auth_time, amr, acr, resource, created_at, expires_at, dpop_jkt"
    };
}
pub(super) use code_columns;

const INSERT_CODE: &str = concat!(
    "INSERT INTO auth_code (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);
/// Postgres: the grant and its code in one statement (one round trip, atomic without a
/// transaction). The grant takes the code's ids, scope and creation time; `$17` is the
/// grant's expiry.
const INSERT_GRANT_AND_CODE: &str = concat!(
    "WITH new_grant AS (INSERT INTO auth_grant (",
    grant_columns!(),
    ") VALUES ($2, $3, $4, $6, $14, $17, NULL)) INSERT INTO auth_code (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);
/// What a presented code `$1` means for client `$3` at `$2`, with a DPoP proof of the key
/// whose thumbprint is `$4` (NULL: no proof), in this order: used before (`reused`);
/// expired, its grant revoked or gone, its user disabled or gone (`invalid`); issued to
/// another client (`other_client`); bound to a DPoP key that `$4` is not (`wrong_key`); else
/// `redeem`. The one definition both dialects decide by.
macro_rules! code_verdict {
    () => {
        concat!(
            "SELECT ",
            code_columns!(),
            ", CASE WHEN consumed_at IS NOT NULL THEN 'reused' \
             WHEN expires_at <= $2 OR NOT ",
            live_grant!("auth_code"),
            " OR NOT ",
            active_user!("auth_code"),
            " THEN 'invalid' WHEN client_id <> $3 THEN 'other_client' \
             WHEN dpop_jkt IS NOT NULL AND ($4 IS NULL OR dpop_jkt <> $4) THEN 'wrong_key' \
             ELSE 'redeem' END AS verdict FROM auth_code WHERE code_hash = $1"
        )
    };
}

/// SQLite: the verdict, read inside the transaction that then acts on it.
const CODE_VERDICT: &str = code_verdict!();
/// SQLite: consumes the code whose verdict was read under the same write lock.
const MARK_CONSUMED: &str = "UPDATE auth_code SET consumed_at = $2 WHERE code_hash = $1";
/// Only ever raises the expiry: the grant must outlive every token already issued.
const EXTEND_GRANT: &str =
    "UPDATE auth_grant SET expires_at = $2 WHERE grant_id = $1 AND expires_at < $2";
/// Postgres: `consume_code` in one statement. `found` is the verdict as of the statement's
/// snapshot; `consumed` then takes the code with one conditional update, which Postgres
/// re-checks against the latest row after waiting for a racing redemption, so exactly one
/// of racing statements consumes it. One that found the code redeemable but could not
/// consume it lost the race: its `outcome` is `reused`, like one that found it consumed.
/// A redemption extends the grant to `$5`; reuse and another client's code revoke it; a
/// wrong key changes nothing.
const CONSUME_CODE: &str = concat!(
    "WITH found AS (",
    code_verdict!(),
    "), consumed AS (UPDATE auth_code SET consumed_at = $2 \
     WHERE code_hash = $1 AND consumed_at IS NULL \
     AND EXISTS (SELECT 1 FROM found WHERE verdict IN ('redeem', 'other_client')) \
     RETURNING code_hash), \
     outcome AS (SELECT found.*, CASE WHEN verdict = 'redeem' \
     AND NOT EXISTS (SELECT 1 FROM consumed) THEN 'reused' ELSE verdict END AS outcome \
     FROM found), \
     extended AS (UPDATE auth_grant SET expires_at = $5 WHERE grant_id IN \
     (SELECT grant_id FROM outcome WHERE outcome = 'redeem') AND expires_at < $5), \
     families AS (SELECT grant_id FROM outcome WHERE outcome IN ('reused', 'other_client')), ",
    revoke_families!("families", "$2"),
    " SELECT ",
    code_columns!(),
    ", outcome AS verdict FROM outcome"
);

/// A `code_verdict!` (or `CONSUME_CODE` outcome) row: the code and what it means.
fn code_and_verdict(row: &impl SqlRow) -> StoreResult<(AuthCodeRecord, String)> {
    Ok((code_from_row(row)?, row.col("verdict")?))
}

/// Binds a code's sixteen columns, in `code_columns!` order, as `$1`..`$16`.
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
        .arg(code.dpop_jkt.as_deref())
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
        dpop_jkt: row.col("dpop_jkt")?,
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
                client_id: &str,
                dpop_jkt: Option<&str>,
                now: i64,
                grant_expires_at: i64,
            ) -> StoreResult<CodeRedemption> {
                let (found, tx) = match <$db as Dialect>::BACKEND {
                    // Postgres: decided and done in one statement.
                    Backend::Postgres => {
                        let row = ::sqlx::query(CONSUME_CODE)
                            .bind(code_hash)
                            .bind(now)
                            .bind(client_id)
                            .bind(dpop_jkt)
                            .bind(grant_expires_at)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(db_err)?;
                        (row.as_ref().map(code_and_verdict).transpose()?, None)
                    }
                    // SQLite: the verdict read under the write lock, then acted on below in
                    // the same transaction.
                    Backend::Sqlite => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        let row = ::sqlx::query(CODE_VERDICT)
                            .bind(code_hash)
                            .bind(now)
                            .bind(client_id)
                            .bind(dpop_jkt)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        (row.as_ref().map(code_and_verdict).transpose()?, Some(tx))
                    }
                };
                let Some((code, verdict)) = found else {
                    return Ok(CodeRedemption::Invalid);
                };
                let outcome = match verdict.as_str() {
                    "redeem" => CodeRedemption::Redeemed(code),
                    "reused" => CodeRedemption::Reused {
                        grant_id: code.grant_id,
                    },
                    "other_client" => CodeRedemption::OtherClient {
                        grant_id: code.grant_id,
                    },
                    "wrong_key" => CodeRedemption::WrongKey,
                    _ => CodeRedemption::Invalid,
                };
                let Some(mut tx) = tx else {
                    return Ok(outcome);
                };
                if let CodeRedemption::Redeemed(_) | CodeRedemption::OtherClient { .. } = &outcome {
                    ::sqlx::query(MARK_CONSUMED)
                        .bind(code_hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                match &outcome {
                    CodeRedemption::Redeemed(code) => {
                        ::sqlx::query(EXTEND_GRANT)
                            .bind(&code.grant_id)
                            .bind(grant_expires_at)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    CodeRedemption::Reused { grant_id }
                    | CodeRedemption::OtherClient { grant_id } => {
                        Self::revoke_family(&mut tx, grant_id, now).await?;
                    }
                    CodeRedemption::Invalid | CodeRedemption::WrongKey => {}
                }
                sql::commit(tx).await?;
                Ok(outcome)
            }
        }
    };
}

impl_code_store!(PgStore, sqlx::Postgres);
impl_code_store!(SqliteStore, sqlx::Sqlite);
