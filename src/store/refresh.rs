//! Refresh tokens, rotated on every use (RFC 9700 §4.14.2), stored as one row per family
//! whatever the number of rotations. A token names its family (the grant) and generation
//! (`token::refresh_format`); the family row holds the current generation and the keyed hash
//! of the current token, so a token of an older generation is recognised as reuse without
//! any row kept for it.
//!
//! `rotate_refresh_token` decides everything about a presented token in one operation: on
//! Postgres one statement, on SQLite one `BEGIN IMMEDIATE` transaction. The current token of
//! a live family, presented by its client for its enabled user within the scope granted, is
//! rotated by one conditional `UPDATE` of the family row (generation and hash must still be
//! the presented ones); a token of the family that is not the current one, or one of a
//! revoked family, is reuse; reuse, another client's token and a token whose user is no
//! longer active revoke the family in that same operation. The decision is one SQL `CASE`
//! (`refresh_verdict!`) both dialects share, so "reuse" has one definition.
//!
//! Tokens issued before families had generations are found through `legacy_refresh_token`
//! (the old per-token table, read-only since migration 0080, drained by housekeeping).
//!
//! Contract: `contract/refresh.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::grants::revoke_families;
use super::postgres::PgStore;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, active_user, db_err, live_grant};
use super::sqlite::SqliteStore;

/// A refresh-token family: its current token, and what every token of it carries. `scope`
/// is the scope originally granted (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    /// The family: the grant the tokens descend from.
    pub grant_id: String,
    /// The current token's generation: 0 for the first, one more at each rotation.
    pub generation: i64,
    /// The keyed hash of the current token.
    pub token_hash: Vec<u8>,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
    pub resource: Option<String>,
    /// When the current token was issued.
    pub created_at: i64,
    /// When the current token dies unused (idle lifetime); never after `expires_at`.
    pub idle_expires_at: i64,
    /// When the family dies whatever happens (absolute lifetime).
    pub expires_at: i64,
    /// The thumbprint of the DPoP key the family is bound to (RFC 9449 §5): every refresh
    /// must come with a proof of that key.
    pub dpop_jkt: Option<String>,
}

/// A presented refresh token, as the caller read it: which family and generation it names,
/// and its keyed hash. The caller presents only tokens it has authenticated (its own MAC, or
/// found in the legacy table), so one that is not its family's current token is one Latchkey
/// issued and rotated out: reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedRefresh<'a> {
    pub grant_id: &'a str,
    pub generation: i64,
    pub token_hash: &'a [u8],
}

/// A token issued before migration 0080: its family, and the generation it stands for (0
/// if it was current then, -1 if it had been rotated out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRefresh {
    pub grant_id: String,
    pub generation: i64,
}

/// The result of presenting a refresh token (`RefreshTokenStore::rotate_refresh_token`).
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented token was current: the family now holds its successor. The record is
    /// the family as it was when the presented token was current.
    Rotated(Box<RefreshTokenRecord>),
    /// The presented token is the one the family's latest rotation replaced, presented again
    /// within `RotationRequest::reuse_grace` of that rotation, and the family's current token
    /// is the successor derived from it (`new_token_hash`): a client retrying a rotation whose
    /// answer it lost. Nothing changed; the caller answers with that successor again. The
    /// record is the family as it is.
    Retried(Box<RefreshTokenRecord>),
    /// The presented token is not its family's current one (rotated out, or it lost a race
    /// to another rotation), or its family was revoked: the family `grant_id` is now revoked.
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
    /// Expired, or its family is gone: nothing changed.
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
    pub presented: PresentedRefresh<'a>,
    /// The client presenting it.
    pub client_id: &'a str,
    pub scope: RefreshScope<'a>,
    /// The thumbprint of the DPoP key the request proved possession of, if any.
    pub dpop_jkt: Option<&'a str>,
    /// The hash of the token that replaces it, of generation `presented.generation + 1`. The
    /// family keeps everything else (grant, client, user, scope, sid, auth_time, amr,
    /// resource, absolute expiry and DPoP key).
    pub new_token_hash: &'a [u8],
    /// When the presented token is rotated out and its successor created.
    pub now: i64,
    /// Seconds after a rotation during which the token it replaced is answered with the same
    /// successor (`Rotation::Retried`) instead of counting as reuse; 0 turns that off. Only
    /// the immediately previous generation qualifies, and only when `new_token_hash` (derived
    /// from the presented token, `token::refresh_format::successor`) is the family's current
    /// token.
    pub reuse_grace: i64,
    /// The successor dies unused at `now + idle_ttl`, or with its family if that is sooner.
    pub idle_ttl: i64,
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Starts a family with its first token (`idle_expires_at` is capped at `expires_at`).
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// Presents a refresh token, in one operation (one statement on Postgres, one
    /// transaction on SQLite). In this order: a token that is not its family's current one,
    /// or of a revoked family, is `Reused`; expired or of a missing family, `Invalid`;
    /// another client's, `OtherClient`; of a family bound to a DPoP key other than the one
    /// proven (or with no proof), `KeyMismatch`; asking for a scope not granted, `ScopeTooWide`; of a
    /// disabled or deleted user, `UserInactive`; else `Rotated`, the family row now holding
    /// the successor (generation + 1, `new_token_hash`). `Reused`, `OtherClient` and
    /// `UserInactive` have revoked the family (grant revoked, family row deleted) by the time
    /// they are returned; `KeyMismatch`, `ScopeTooWide` and `Invalid` changed nothing. The
    /// token the latest rotation replaced, presented within `reuse_grace` with the successor
    /// derived from it, passes every check but the first as if it were current and gets
    /// `Retried` (nothing changes). Of racing calls with one token (on any number of nodes)
    /// exactly one gets `Rotated`; with `reuse_grace` 0 the rest get `Reused` (or `Invalid`
    /// once the first of them has deleted the family), so the family is revoked after the
    /// race; with a grace they get `Retried`. Nothing is kept per rotation.
    async fn rotate_refresh_token(&self, request: &RotationRequest<'_>) -> StoreResult<Rotation>;
    /// The family, when `presented` is its current token and it is live.
    async fn get_refresh_token(
        &self,
        presented: &PresentedRefresh<'_>,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>>;
    /// The family and generation of a token issued before migration 0080, by its hash.
    async fn legacy_refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<LegacyRefresh>>;
}

macro_rules! refresh_columns {
    () => {
        "grant_id, generation, token_hash, client_id, user_sub, scope, sid, auth_time, amr, \
         resource, created_at, idle_expires_at, expires_at, dpop_jkt"
    };
}

const INSERT_REFRESH_TOKEN: &str = concat!(
    "INSERT INTO refresh_family (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
const GET_REFRESH_TOKEN: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_family WHERE grant_id = $1 AND generation = $2 AND token_hash = $3 \
     AND idle_expires_at > $4 AND expires_at > $4 AND ",
    live_grant!("refresh_family")
);
/// Nothing writes `legacy_refresh_token` after migration 0080, so this read needs no lock:
/// what it maps a hash to never changes.
const LEGACY_REFRESH_TOKEN: &str = "SELECT grant_id, \
     CAST(CASE WHEN rotated_at IS NULL THEN 0 ELSE -1 END AS BIGINT) AS generation \
     FROM legacy_refresh_token WHERE token_hash = $1";

/// What presenting family `$1`'s generation `$2` with hash `$3` means at `$4` for client
/// `$5`, asking for the scope tokens in the JSON array `$6` (NULL: the scope granted; `$7`
/// true: a malformed scope), with a proof of the DPoP key of thumbprint `$10` (NULL: none),
/// in the order `rotate_refresh_token` documents. A token that is not the current one is
/// reuse, unless it is the one the latest rotation replaced (generation `$2 + 1` is current,
/// and its hash is `$8`, the successor derived from the presented token) and that rotation
/// happened at most `$11` seconds ago: then it passes the same checks and is `retried`.
/// `$within` is the
/// dialect's test that every token of `$6` is one of the space-separated `rf.scope`, and
/// `$grant` the relation the family's grant row is read from (`g`: `grant_id`,
/// `revoked_at`). The one definition of reuse both dialects use.
macro_rules! refresh_verdict {
    ($within:literal, $grant:literal) => {
        concat!(
            "SELECT rf.grant_id, rf.generation, rf.token_hash, rf.client_id, rf.user_sub, \
             rf.scope, rf.sid, rf.auth_time, rf.amr, rf.resource, rf.created_at, \
             rf.idle_expires_at, rf.expires_at, rf.dpop_jkt, CASE \
             WHEN g.revoked_at IS NOT NULL THEN 'reused' \
             WHEN (rf.generation <> $2 OR rf.token_hash <> $3) AND NOT (rf.generation = $2 + 1 \
             AND rf.token_hash = $8 AND $11 > 0 AND rf.created_at >= $4 - $11) THEN 'reused' \
             WHEN g.grant_id IS NULL OR rf.idle_expires_at <= $4 OR rf.expires_at <= $4 \
             THEN 'invalid' \
             WHEN rf.client_id <> $5 THEN 'other_client' \
             WHEN rf.dpop_jkt IS NOT NULL AND (CAST($10 AS TEXT) IS NULL \
             OR rf.dpop_jkt <> CAST($10 AS TEXT)) THEN 'key_mismatch' \
             WHEN $7 OR ($6 IS NOT NULL AND NOT ",
            $within,
            ") THEN 'scope_too_wide' WHEN NOT ",
            active_user!("rf"),
            " THEN 'user_inactive' WHEN rf.generation <> $2 THEN 'retried' \
             ELSE 'rotate' END AS verdict \
             FROM refresh_family rf LEFT JOIN ",
            $grant,
            " g ON g.grant_id = rf.grant_id WHERE rf.grant_id = $1"
        )
    };
}

/// The conditional update that rotates family `$1` from generation `$2` (hash `$3`) to its
/// successor (hash `$8`, idle lifetime `$9`) at `$4`. It matches only while the presented
/// token is still current, so of racing updates exactly one matches: Postgres re-checks the
/// condition against the latest row after waiting for the racing writer; SQLite runs it
/// under the write lock. `$extra` adds a dialect's condition.
macro_rules! rotate_family {
    ($extra:literal) => {
        concat!(
            "UPDATE refresh_family SET generation = $2 + 1, token_hash = $8, created_at = $4, \
             idle_expires_at = CASE WHEN $4 + $9 < expires_at THEN $4 + $9 ELSE expires_at END \
             WHERE grant_id = $1 AND generation = $2 AND token_hash = $3",
            $extra
        )
    };
}

/// SQLite: the verdict, read inside the transaction that then acts on it. JSON1's
/// `json_each` lists the requested scope tokens.
const REFRESH_VERDICT: &str = refresh_verdict!(
    "NOT EXISTS (SELECT 1 FROM json_each($6) r \
     WHERE instr(' ' || rf.scope || ' ', ' ' || r.value || ' ') = 0)",
    "auth_grant"
);
/// SQLite: rotates the family whose verdict was read under the same write lock. It is bound
/// with the same eleven arguments as the Postgres statement; SQLite leaves `$5` to `$7`, `$10` and `$11`
/// unused.
const ROTATE_SQLITE: &str = rotate_family!("");

/// Postgres: `rotate_refresh_token` in one statement. `found` is the verdict as of the
/// statement's snapshot; `rotated` then moves the family on with one conditional update, so
/// exactly one of racing statements rotates it. One that found the token current but could
/// not rotate it lost the race: without a reuse grace its `outcome` is `reused`, like one
/// that found it rotated; with one it is `lost_race`, which changes nothing, and the caller
/// asks again (the statement's snapshot cannot see the winner's row; the next one can, and
/// finds the token `retried` or `reused`).
///
/// Lock order: the grant row first (`locked_grant`, read by `found` before `rotated` touches
/// the family row), then the family row, the order every other path takes them in
/// (`revoke_families!`, `revoke_family`, `consume_code`, owner deletion). Without it a racer
/// whose `rotated` update waited for the winner keeps the family row locked although its
/// re-check failed (Postgres keeps the lock of a row an `UPDATE` waited for), and then waits
/// for the grant row held by a racer already revoking the family, which waits for that
/// family row: a deadlock (40P01), answered 503 instead of `invalid_grant`.
const ROTATE_POSTGRES: &str = concat!(
    "WITH locked_grant AS MATERIALIZED (SELECT grant_id, revoked_at FROM auth_grant \
     WHERE grant_id = $1 FOR NO KEY UPDATE), found AS (",
    refresh_verdict!(
        "NOT EXISTS (SELECT 1 FROM json_array_elements_text($6::json) AS r(token) \
         WHERE strpos(' ' || rf.scope || ' ', ' ' || r.token || ' ') = 0)",
        "locked_grant"
    ),
    "), rotated AS (",
    rotate_family!(" AND EXISTS (SELECT 1 FROM found WHERE verdict = 'rotate') RETURNING grant_id"),
    "), outcome AS (SELECT found.*, CASE WHEN verdict = 'rotate' \
     AND NOT EXISTS (SELECT 1 FROM rotated) \
     THEN CASE WHEN $11 > 0 THEN 'lost_race' ELSE 'reused' END ELSE verdict END AS outcome \
     FROM found), \
     families AS (SELECT grant_id FROM outcome \
     WHERE outcome IN ('reused', 'other_client', 'user_inactive')), ",
    revoke_families!("families", "$4"),
    " SELECT grant_id, generation, token_hash, client_id, user_sub, scope, sid, auth_time, \
     amr, resource, created_at, idle_expires_at, expires_at, dpop_jkt, outcome AS verdict \
     FROM outcome"
);

/// The requested scope tokens as a JSON array (`$6` of `refresh_verdict!`), and whether the
/// request's scope was malformed (`$7`).
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

/// Binds a family's fourteen columns, in `refresh_columns!` order.
fn bind_refresh<'q, Q: Bind<'q>>(query: Q, token: &'q RefreshTokenRecord) -> Q {
    query
        .arg(&token.grant_id)
        .arg(token.generation)
        .arg(&token.token_hash)
        .arg(&token.client_id)
        .arg(&token.user_sub)
        .arg(&token.scope)
        .arg(&token.sid)
        .arg(token.auth_time)
        .arg(&token.amr)
        .arg(token.resource.as_deref())
        .arg(token.created_at)
        .arg(token.idle_expires_at.min(token.expires_at))
        .arg(token.expires_at)
        .arg(token.dpop_jkt.as_deref())
}

/// Binds `refresh_verdict!`'s `$1` to `$7`, `rotate_family!`'s `$8` (which the verdict also
/// reads) and `$9`, and `refresh_verdict!`'s `$10` and `$11`.
fn bind_rotation<'q, Q: Bind<'q>>(
    query: Q,
    request: &'q RotationRequest<'_>,
    scope: Option<String>,
    malformed: bool,
) -> Q {
    query
        .arg(request.presented.grant_id)
        .arg(request.presented.generation)
        .arg(request.presented.token_hash)
        .arg(request.now)
        .arg(request.client_id)
        .arg(scope)
        .arg(malformed)
        .arg(request.new_token_hash)
        .arg(request.idle_ttl)
        .arg(request.dpop_jkt)
        .arg(request.reuse_grace)
}

/// A `refresh_verdict!` (or `ROTATE_POSTGRES`) row: the family and what the token means.
fn family_and_verdict(row: &impl SqlRow) -> StoreResult<(RefreshTokenRecord, String)> {
    Ok((refresh_from_row(row)?, row.col("verdict")?))
}

fn refresh_from_row(row: &impl SqlRow) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        grant_id: row.col("grant_id")?,
        generation: row.col("generation")?,
        token_hash: row.col("token_hash")?,
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
                let (found, tx) = match <$db as Dialect>::BACKEND {
                    // Postgres: decided and done in one statement.
                    // A statement that lost a race under a reuse grace changed nothing and is
                    // asked again once: the winner has committed by then, so the token is no
                    // longer current and cannot lose a race again.
                    Backend::Postgres => {
                        let mut found = None;
                        for _ in 0..2 {
                            let query = ::sqlx::query(ROTATE_POSTGRES);
                            let row = bind_rotation(query, request, scope.clone(), malformed)
                                .fetch_optional(&self.pool)
                                .await
                                .map_err(db_err)?;
                            found = row.as_ref().map(family_and_verdict).transpose()?;
                            if !matches!(&found, Some((_, verdict)) if verdict == "lost_race") {
                                break;
                            }
                        }
                        (found, None)
                    }
                    // SQLite: the verdict read under the write lock, then acted on below in
                    // the same transaction.
                    Backend::Sqlite => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        let row = bind_rotation(
                            ::sqlx::query(REFRESH_VERDICT),
                            request,
                            scope.clone(),
                            malformed,
                        )
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        let found = row.as_ref().map(family_and_verdict).transpose()?;
                        if matches!(&found, Some((_, verdict)) if verdict == "rotate") {
                            bind_rotation(::sqlx::query(ROTATE_SQLITE), request, scope, malformed)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                        (found, Some(tx))
                    }
                };
                let Some((family, verdict)) = found else {
                    return Ok(Rotation::Invalid);
                };
                let grant_id = family.grant_id.clone();
                let outcome = match verdict.as_str() {
                    "rotate" => Rotation::Rotated(Box::new(family)),
                    "retried" => Rotation::Retried(Box::new(family)),
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
                if let Rotation::Reused { grant_id }
                | Rotation::OtherClient { grant_id }
                | Rotation::UserInactive { grant_id } = &outcome
                {
                    Self::revoke_family(&mut tx, grant_id, request.now).await?;
                }
                sql::commit(tx).await?;
                Ok(outcome)
            }

            async fn get_refresh_token(
                &self,
                presented: &PresentedRefresh<'_>,
                now: i64,
            ) -> StoreResult<Option<RefreshTokenRecord>> {
                ::sqlx::query(GET_REFRESH_TOKEN)
                    .bind(presented.grant_id)
                    .bind(presented.generation)
                    .bind(presented.token_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(refresh_from_row)
                    .transpose()
            }

            async fn legacy_refresh_token(
                &self,
                token_hash: &[u8],
            ) -> StoreResult<Option<LegacyRefresh>> {
                let Some(row) = ::sqlx::query(LEGACY_REFRESH_TOKEN)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                else {
                    return Ok(None);
                };
                Ok(Some(LegacyRefresh {
                    grant_id: row.col("grant_id")?,
                    generation: row.col("generation")?,
                }))
            }
        }
    };
}

impl_refresh_token_store!(PgStore, sqlx::Postgres);
impl_refresh_token_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests;
