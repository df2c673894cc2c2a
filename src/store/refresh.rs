//! Refresh tokens, rotated on every use (RFC 9700 §4.14.2). `rotate_refresh_token` decides
//! everything about a presented token in one operation: on Postgres one statement, on
//! SQLite one `BEGIN IMMEDIATE` transaction. A current token of a live family, presented by
//! its client for its enabled user within the scope granted, is rotated and its successor
//! stored; a token used before, or one of a revoked family, is reuse; reuse, another
//! client's token and a token whose user is no longer active revoke the family in that same
//! operation. The decision is one SQL `CASE` (`refresh_verdict!`) both dialects share, so
//! "reuse" has one definition.
//!
//! Contract: `contract/refresh.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::grants::revoke_families;
use super::postgres::PgStore;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, active_user, db_err, live_grant};
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
    /// The thumbprint of the DPoP key the family is bound to (RFC 9449 §5): every refresh
    /// must come with a proof of that key.
    pub dpop_jkt: Option<String>,
}

/// The result of presenting a refresh token (`RefreshTokenStore::rotate_refresh_token`).
// One value per refresh request, returned and matched at once: boxing the record would cost
// an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented token was current: it is now rotated out and its successor stored. The
    /// record is the presented token's.
    Rotated(RefreshTokenRecord),
    /// The presented token had been rotated out before (or lost a race to another rotation),
    /// or its family was revoked: the family `grant_id` is now revoked.
    Reused { grant_id: String },
    /// The token was issued to another client, which means it leaked: the family `grant_id`
    /// is now revoked.
    OtherClient { grant_id: String },
    /// The token's user is disabled or gone: the family `grant_id` is now revoked.
    UserInactive { grant_id: String },
    /// The scope asked for is not within the scope granted: nothing changed, and the token
    /// stays usable.
    ScopeTooWide,
    /// The family is bound to a DPoP key and the request proved possession of no key, or of
    /// another: nothing changed (the token is useless without its key, so whoever presents
    /// it cannot use it, nor end the family for its owner).
    KeyMismatch,
    /// Unknown, expired, or its family is gone: nothing changed.
    Invalid,
}

/// The scope a refresh asks for (RFC 6749 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshScope<'a> {
    /// No `scope` parameter: the new tokens carry the scope originally granted.
    Granted,
    /// These space-separated scope tokens, each of which must have been granted.
    Requested(&'a str),
    /// A `scope` parameter the caller could not parse: never within what was granted, but
    /// the token is still checked (and reuse still revokes its family) before that counts.
    Malformed,
}

/// A refresh token presented at the token endpoint, and its successor.
#[derive(Debug, Clone, Copy)]
pub struct RotationRequest<'a> {
    /// The hash of the token presented.
    pub token_hash: &'a [u8],
    /// The client presenting it.
    pub client_id: &'a str,
    pub scope: RefreshScope<'a>,
    /// The thumbprint of the DPoP key the request proved possession of, if any.
    pub dpop_jkt: Option<&'a str>,
    /// The hash of the token that replaces it; the successor copies the family (grant,
    /// client, user, scope, sid, auth_time, amr, resource, absolute expiry and DPoP key)
    /// from it.
    pub new_token_hash: &'a [u8],
    /// When the presented token is rotated out and its successor created.
    pub now: i64,
    /// The successor dies unused at `now + idle_ttl`, or with its family if that is sooner.
    pub idle_ttl: i64,
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// Presents a refresh token, in one operation (one statement on Postgres, one
    /// transaction on SQLite). In this order: a token rotated before, or of a revoked family,
    /// is `Reused`; unknown, expired or of a missing family, `Invalid`; another client's,
    /// `OtherClient`; bound to a DPoP key other than the one proven, `KeyMismatch`; asking for
    /// a scope not granted, `ScopeTooWide`; of a disabled or deleted user, `UserInactive`;
    /// else `Rotated`, with its successor stored. `Reused`, `OtherClient` and `UserInactive`
    /// have revoked the family (grant revoked, its refresh tokens deleted) by the time they
    /// are returned; `KeyMismatch`, `ScopeTooWide` and `Invalid` changed nothing. Of racing calls with one token (on any number of nodes) exactly one gets
    /// `Rotated`; the rest get `Reused`, so the family is revoked after the race.
    async fn rotate_refresh_token(&self, request: &RotationRequest<'_>) -> StoreResult<Rotation>;
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
         created_at, idle_expires_at, expires_at, dpop_jkt"
    };
}

const INSERT_REFRESH_TOKEN: &str = concat!(
    "INSERT INTO refresh_token (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
const GET_REFRESH_TOKEN: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_token WHERE token_hash = $1 AND rotated_at IS NULL \
     AND idle_expires_at > $2 AND expires_at > $2 AND ",
    live_grant!("refresh_token")
);

/// What a presented token `$1` means for client `$3` at `$2`, asking for the scope tokens in
/// the JSON array `$4` (NULL: the scope granted; `$5` true: a malformed scope), with a proof
/// of the DPoP key of thumbprint `$8` (NULL: none), in the order `rotate_refresh_token`
/// documents. `$within` is the dialect's test that every token of `$4`
/// is one of the space-separated `rt.scope`. The one definition of reuse both dialects use.
macro_rules! refresh_verdict {
    ($within:literal) => {
        concat!(
            "SELECT rt.token_hash, rt.grant_id, rt.client_id, rt.user_sub, rt.scope, rt.sid, \
             rt.auth_time, rt.amr, rt.resource, rt.created_at, rt.idle_expires_at, \
             rt.expires_at, rt.dpop_jkt, CASE \
             WHEN rt.rotated_at IS NOT NULL OR g.revoked_at IS NOT NULL THEN 'reused' \
             WHEN g.grant_id IS NULL OR rt.idle_expires_at <= $2 OR rt.expires_at <= $2 \
             THEN 'invalid' \
             WHEN rt.client_id <> $3 THEN 'other_client' \
             WHEN rt.dpop_jkt IS NOT NULL AND (CAST($8 AS TEXT) IS NULL \
             OR rt.dpop_jkt <> CAST($8 AS TEXT)) THEN 'key_mismatch' \
             WHEN $5 OR ($4 IS NOT NULL AND NOT ",
            $within,
            ") THEN 'scope_too_wide' WHEN NOT ",
            active_user!("rt"),
            " THEN 'user_inactive' ELSE 'rotate' END AS verdict \
             FROM refresh_token rt LEFT JOIN auth_grant g ON g.grant_id = rt.grant_id \
             WHERE rt.token_hash = $1"
        )
    };
}

/// SQLite: the verdict, read inside the transaction that then acts on it. JSON1's
/// `json_each` lists the requested scope tokens.
const REFRESH_VERDICT: &str = refresh_verdict!(
    "NOT EXISTS (SELECT 1 FROM json_each($4) r \
     WHERE instr(' ' || rt.scope || ' ', ' ' || r.value || ' ') = 0)"
);
/// SQLite: rotates out the token whose verdict was read under the same write lock.
const MARK_ROTATED: &str = "UPDATE refresh_token SET rotated_at = $2 WHERE token_hash = $1";

/// Postgres: `rotate_refresh_token` in one statement. `found` is the verdict as of the
/// statement's snapshot; `rotated` then takes the token with one conditional update, which
/// Postgres re-checks against the latest row after waiting for a racing rotation, so exactly
/// one of racing statements rotates it. One that found the token current but could not
/// rotate it lost the race: its `outcome` is `reused`, like one that found it rotated.
/// `$6` is the successor's hash, `$7` its idle lifetime. A successor that a racing rotation
/// inserted after this statement's snapshot is not among the tokens `dropped` deletes, but
/// its family is revoked, so it is dead all the same; housekeeping removes it.
const ROTATE_REFRESH_TOKEN: &str = concat!(
    "WITH found AS (",
    refresh_verdict!(
        "NOT EXISTS (SELECT 1 FROM json_array_elements_text($4::json) AS r(token) \
         WHERE strpos(' ' || rt.scope || ' ', ' ' || r.token || ' ') = 0)"
    ),
    "), rotated AS (UPDATE refresh_token SET rotated_at = $2 \
     WHERE token_hash = $1 AND rotated_at IS NULL \
     AND EXISTS (SELECT 1 FROM found WHERE verdict = 'rotate') RETURNING token_hash), \
     outcome AS (SELECT found.*, CASE WHEN verdict = 'rotate' \
     AND NOT EXISTS (SELECT 1 FROM rotated) THEN 'reused' ELSE verdict END AS outcome \
     FROM found), \
     successor AS (INSERT INTO refresh_token (",
    refresh_columns!(),
    ") SELECT $6, grant_id, client_id, user_sub, scope, sid, auth_time, amr, resource, $2, \
     CASE WHEN $2 + $7 < expires_at THEN $2 + $7 ELSE expires_at END, expires_at, dpop_jkt \
     FROM outcome WHERE outcome = 'rotate'), \
     families AS (SELECT grant_id FROM outcome \
     WHERE outcome IN ('reused', 'other_client', 'user_inactive')), ",
    revoke_families!("families", "$2"),
    " SELECT token_hash, grant_id, client_id, user_sub, scope, sid, auth_time, amr, resource, \
     created_at, idle_expires_at, expires_at, dpop_jkt, outcome AS verdict FROM outcome"
);

/// The requested scope tokens as a JSON array (`$4` of `refresh_verdict!`), and whether the
/// request's scope was malformed (`$5`).
fn scope_arguments(scope: RefreshScope<'_>) -> StoreResult<(Option<String>, bool)> {
    Ok(match scope {
        RefreshScope::Granted => (None, false),
        RefreshScope::Requested(scope) => {
            let tokens: Vec<&str> = scope.split(' ').filter(|t| !t.is_empty()).collect();
            (Some(sql::to_json(&tokens, "requested scope")?), false)
        }
        RefreshScope::Malformed => (None, true),
    })
}

/// Binds a token's thirteen columns, in `refresh_columns!` order.
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
        .arg(token.dpop_jkt.as_deref())
}

/// A `refresh_verdict!` (or `ROTATE_REFRESH_TOKEN`) row: the token and what it means.
fn token_and_verdict(row: &impl SqlRow) -> StoreResult<(RefreshTokenRecord, String)> {
    Ok((refresh_from_row(row)?, row.col("verdict")?))
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
        dpop_jkt: row.col("dpop_jkt")?,
    })
}

macro_rules! impl_refresh_token_store {
    ($store:ty, $db:ty) => {
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
                request: &RotationRequest<'_>,
            ) -> StoreResult<Rotation> {
                let (scope, malformed) = scope_arguments(request.scope)?;
                let now = request.now;
                let (found, tx) = match <$db as Dialect>::BACKEND {
                    // Postgres: decided and done in one statement.
                    Backend::Postgres => {
                        let row = ::sqlx::query(ROTATE_REFRESH_TOKEN)
                            .bind(request.token_hash)
                            .bind(now)
                            .bind(request.client_id)
                            .bind(scope)
                            .bind(malformed)
                            .bind(request.new_token_hash)
                            .bind(request.idle_ttl)
                            .bind(request.dpop_jkt)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(db_err)?;
                        (row.as_ref().map(token_and_verdict).transpose()?, None)
                    }
                    // SQLite: the verdict read under the write lock, then acted on below in
                    // the same transaction.
                    Backend::Sqlite => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        let row = ::sqlx::query(REFRESH_VERDICT)
                            .bind(request.token_hash)
                            .bind(now)
                            .bind(request.client_id)
                            .bind(scope)
                            .bind(malformed)
                            // $6 and $7 are Postgres's alone; SQLite numbers them all the same.
                            .bind(request.new_token_hash)
                            .bind(request.idle_ttl)
                            .bind(request.dpop_jkt)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        (row.as_ref().map(token_and_verdict).transpose()?, Some(tx))
                    }
                };
                let Some((old, verdict)) = found else {
                    return Ok(Rotation::Invalid);
                };
                let grant_id = old.grant_id.clone();
                let outcome = match verdict.as_str() {
                    "rotate" => Rotation::Rotated(old),
                    "reused" => Rotation::Reused { grant_id },
                    "other_client" => Rotation::OtherClient { grant_id },
                    "user_inactive" => Rotation::UserInactive { grant_id },
                    "scope_too_wide" => Rotation::ScopeTooWide,
                    "key_mismatch" => Rotation::KeyMismatch,
                    _ => Rotation::Invalid,
                };
                let Some(mut tx) = tx else {
                    return Ok(outcome);
                };
                match &outcome {
                    Rotation::Rotated(old) => {
                        ::sqlx::query(MARK_ROTATED)
                            .bind(request.token_hash)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        // As Postgres's `successor` computes it.
                        let successor = RefreshTokenRecord {
                            token_hash: request.new_token_hash.to_vec(),
                            created_at: now,
                            idle_expires_at: (now + request.idle_ttl).min(old.expires_at),
                            ..old.clone()
                        };
                        bind_refresh(::sqlx::query(INSERT_REFRESH_TOKEN), &successor)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    Rotation::Reused { grant_id }
                    | Rotation::OtherClient { grant_id }
                    | Rotation::UserInactive { grant_id } => {
                        Self::revoke_family(&mut tx, grant_id, now).await?;
                    }
                    Rotation::ScopeTooWide | Rotation::KeyMismatch | Rotation::Invalid => {}
                }
                sql::commit(tx).await?;
                Ok(outcome)
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

impl_refresh_token_store!(PgStore, sqlx::Postgres);
impl_refresh_token_store!(SqliteStore, sqlx::Sqlite);
