//! A user's second factors (`FactorStore`): TOTP authenticators, recovery-code sets and, later,
//! passkeys. Secrets never reach this layer in the clear: a TOTP secret arrives sealed by
//! `accounts::factors` and recovery codes as keyed hashes. The two single-use rules are each
//! one conditional `UPDATE`, the same in both dialects, so of racing submissions on any number
//! of nodes exactly one wins: a TOTP time step is accepted only if it is later than the last
//! one accepted (`accept_totp_step`), and a recovery code only while unused
//! (`use_recovery_code`). Replacing a TOTP or a recovery set is one transaction.
//!
//! Contract: `contract/factors.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::audit::{AuditEvent, INSERT_EVENT, bind_event};
use super::postgres::PgStore;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// The kinds of second factor. The stored name is `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorKind {
    Totp,
    RecoveryCodes,
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::RecoveryCodes => "recovery_codes",
            FactorKind::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorKind::Totp),
            "recovery_codes" => Some(FactorKind::RecoveryCodes),
            "passkey" => Some(FactorKind::Passkey),
            _ => None,
        }
    }
}

/// One factor of a user. `sealed_secret` is the TOTP secret sealed under the master key (with
/// the factor id as associated data); `data` is kind-specific public JSON (a passkey's
/// credential). `last_step` is the last accepted TOTP time step (-1: none yet).
#[derive(Debug, Clone, PartialEq)]
pub struct FactorRecord {
    pub id: String,
    pub user_sub: String,
    pub kind: FactorKind,
    pub name: String,
    pub sealed_secret: Option<Vec<u8>>,
    pub last_step: i64,
    pub data: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What `FactorStore::delete_factor` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRemoval {
    Removed,
    /// The user has no such factor.
    NotFound,
    /// Refused, nothing changed: it is the last second factor of a user who must use one.
    LastSecondFactor,
    /// Refused, nothing changed: the user's last passkey, and they have no password and no
    /// linked upstream to sign in with instead.
    LastWayIn,
}

/// A new recovery-code set: its factor row (kind `RecoveryCodes`) and the keyed hashes of its
/// codes.
#[derive(Debug, Clone)]
pub struct RecoverySet {
    pub factor: FactorRecord,
    pub code_hashes: Vec<Vec<u8>>,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The user's factors, oldest first.
    async fn list_factors(&self, user_sub: &str) -> StoreResult<Vec<FactorRecord>>;
    /// What a flow needs to know of a user's second factors, in one read: their
    /// `mfa_required` flag and the kinds of factor they have. `None` when there is no such
    /// user.
    async fn mfa_standing(&self, user_sub: &str) -> StoreResult<Option<(bool, Vec<FactorKind>)>>;
    /// Adds a factor (a passkey: several may coexist).
    async fn add_factor(&self, factor: &FactorRecord) -> StoreResult<()>;
    /// In one transaction: removes the user's TOTP factors, adds `totp`, and, when `recovery`
    /// is given, replaces the user's recovery set with it.
    async fn replace_totp(
        &self,
        totp: &FactorRecord,
        recovery: Option<&RecoverySet>,
    ) -> StoreResult<()>;
    /// In one transaction: removes the user's recovery set (its codes die with it) and adds
    /// `set`.
    async fn replace_recovery_codes(&self, set: &RecoverySet) -> StoreResult<()>;
    /// Records TOTP time step `step` as used for factor `id` of `user_sub`, only if it is
    /// later than the last step accepted; also sets `last_used_at`. False when the step (or
    /// a later one) was used before, or there is no such factor. Of racing calls with one
    /// step exactly one gets true. `event` (the factor's use) is stored with the step, in
    /// the same statement, only when the step is accepted.
    async fn accept_totp_step(
        &self,
        user_sub: &str,
        id: &str,
        step: i64,
        now: i64,
        event: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Uses the unused recovery code with `code_hash` of `user_sub`; returns its set's factor
    /// id, or `None` when there is no such unused code. Of racing calls exactly one wins.
    async fn use_recovery_code(
        &self,
        user_sub: &str,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<String>>;
    /// How many unused codes the user's recovery set has left.
    async fn recovery_codes_left(&self, user_sub: &str) -> StoreResult<u64>;
    /// Sets `last_used_at` of a factor (a passkey's or a recovery set's use).
    async fn touch_factor(&self, user_sub: &str, id: &str, now: i64) -> StoreResult<()>;
    /// Removes factor `id` of `user_sub` (with its recovery codes). The user's own removal
    /// (`own_removal`; an operator's is not bound) is refused when it is the last second
    /// factor (TOTP or passkey) of a user who must use one, or their last passkey while they
    /// have no other way in (no password, no linked upstream). Decided and done under the
    /// user's row lock (on SQLite the write lock), so of racing removals of
    /// a user's last two second factors, on any number of nodes, at most one succeeds.
    async fn delete_factor(
        &self,
        user_sub: &str,
        id: &str,
        own_removal: bool,
    ) -> StoreResult<FactorRemoval>;
}

macro_rules! factor_columns {
    () => {
        "id, user_sub, kind, name, sealed_secret, last_step, data, created_at, last_used_at"
    };
}

const INSERT_FACTOR: &str = concat!(
    "INSERT INTO user_factor (",
    factor_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
/// Passkeys live in their own table (`passkeys.rs`: unique credential ids, the signature
/// counter); they are listed, counted and removed here as factors of kind `passkey`.
const LIST_FACTORS: &str = concat!(
    "SELECT ",
    factor_columns!(),
    " FROM (SELECT ",
    factor_columns!(),
    " FROM user_factor WHERE user_sub = $1 \
     UNION ALL SELECT passkey_id AS id, user_sub, 'passkey' AS kind, name, \
     NULL AS sealed_secret, -1 AS last_step, NULL AS data, created_at, last_used_at \
     FROM passkey WHERE user_sub = $1) f ORDER BY created_at, id"
);
const MFA_STANDING: &str = "SELECT u.mfa_required, f.kind FROM app_user u \
     LEFT JOIN (SELECT user_sub, kind FROM user_factor \
     UNION ALL SELECT user_sub, 'passkey' AS kind FROM passkey) f \
     ON f.user_sub = u.sub WHERE u.sub = $1";
const DELETE_FACTORS_OF_KIND: &str = "DELETE FROM user_factor WHERE user_sub = $1 AND kind = $2";
const DELETE_CODES_OF_USER: &str = "DELETE FROM recovery_code WHERE user_sub = $1";
const INSERT_CODE: &str =
    "INSERT INTO recovery_code (user_sub, code_hash, factor_id) VALUES ($1, $2, $3)";
// The single-use rule of TOTP (RFC 6238 §5.2): a step is accepted only after every step
// accepted before it, decided by the database.
macro_rules! accept_totp_step {
    () => {
        "UPDATE user_factor SET last_step = $3, last_used_at = $4 \
         WHERE id = $2 AND user_sub = $1 AND kind = 'totp' AND last_step < $3"
    };
}
const ACCEPT_TOTP_STEP: &str = accept_totp_step!();
/// Postgres: the step and its event in one statement; the event row is inserted only when the
/// step was accepted, so the rows it inserts (0 or 1) answer the call.
const ACCEPT_TOTP_STEP_WITH_EVENT_PG: &str = concat!(
    "WITH accepted AS (",
    accept_totp_step!(),
    " RETURNING id) INSERT INTO audit_event (occurred_at, kind, user_sub, client_id, ip, \
     detail) SELECT $5, $6, $7, $8, $9, $10 FROM accepted"
);
const USE_RECOVERY_CODE: &str = "UPDATE recovery_code SET used_at = $3 \
     WHERE user_sub = $1 AND code_hash = $2 AND used_at IS NULL RETURNING factor_id";
const RECOVERY_CODES_LEFT: &str =
    "SELECT COUNT(*) AS n FROM recovery_code WHERE user_sub = $1 AND used_at IS NULL";
const TOUCH_FACTOR: &str =
    "UPDATE user_factor SET last_used_at = $3 WHERE id = $2 AND user_sub = $1";
/// Whether factor `$2` of user `$1`, of kind `$kind`, may go: the rule is off (`$3` false:
/// an operator's removal), or it is not a second factor (TOTP or passkey), or its user need
/// not use one, or keeps another. Read under the user's row lock (`LOCK_USER`), so what it
/// counts cannot change before the delete commits.
macro_rules! removable {
    ($kind:literal) => {
        concat!(
            "(NOT $3 OR ",
            $kind,
            " NOT IN ('totp', 'passkey') \
             OR NOT EXISTS (SELECT 1 FROM app_user u WHERE u.sub = $1 AND u.mfa_required) \
             OR EXISTS (SELECT 1 FROM user_factor o \
             WHERE o.user_sub = $1 AND o.kind = 'totp' AND o.id <> $2) \
             OR EXISTS (SELECT 1 FROM passkey o WHERE o.user_sub = $1 AND o.passkey_id <> $2))"
        )
    };
}
/// Postgres: serialises the removals of one user's factors (and changes of their
/// `mfa_required`, which update the row), so that each decides on what the last committed.
/// SQLite's write transaction does this by itself.
const LOCK_USER: &str = "SELECT 1 AS locked FROM app_user WHERE sub = $1 FOR NO KEY UPDATE";
const DELETE_FACTOR: &str = concat!(
    "DELETE FROM user_factor WHERE id = $2 AND user_sub = $1 AND ",
    removable!("kind")
);
/// A passkey is a factor too (its own table; the ids never collide). It can also be a way
/// in: a user without a password (created through an upstream: a marker no password
/// matches, see `upstreams.rs`) who has unlinked their upstream signs in with passkeys only.
/// The user's own removal (`$3`) keeps one way in, as unlinking an upstream does: a password,
/// another passkey or a linked upstream.
const DELETE_PASSKEY_FACTOR: &str = concat!(
    "DELETE FROM passkey WHERE passkey_id = $2 AND user_sub = $1 AND ",
    removable!("'passkey'"),
    " AND (NOT $3 \
     OR EXISTS (SELECT 1 FROM app_user u WHERE u.sub = $1 AND u.password_hash LIKE '$%') \
     OR EXISTS (SELECT 1 FROM passkey o WHERE o.user_sub = $1 AND o.passkey_id <> $2) \
     OR EXISTS (SELECT 1 FROM upstream_identity i WHERE i.user_sub = $1))"
);
/// Whether a refused passkey removal was refused for the way in (else for the second factor).
const PASSKEY_IS_LAST_WAY_IN: &str = "SELECT 1 AS last FROM passkey p \
     WHERE p.user_sub = $1 AND p.passkey_id = $2 \
     AND NOT EXISTS (SELECT 1 FROM app_user u WHERE u.sub = $1 AND u.password_hash LIKE '$%') \
     AND NOT EXISTS (SELECT 1 FROM passkey o WHERE o.user_sub = $1 AND o.passkey_id <> $2) \
     AND NOT EXISTS (SELECT 1 FROM upstream_identity i WHERE i.user_sub = $1)";
/// Whether a removal that deleted nothing found no factor or refused one.
const FACTOR_EXISTS: &str = "SELECT 1 AS found FROM user_factor WHERE user_sub = $1 AND id = $2 \
     UNION ALL SELECT 1 AS found FROM passkey WHERE user_sub = $1 AND passkey_id = $2";
const DELETE_CODES_OF_FACTOR: &str =
    "DELETE FROM recovery_code WHERE factor_id = $2 AND user_sub = $1";
/// What deleting a user removes here (`users.rs`, `USER_DELETION`).
pub(super) const DELETE_FACTORS_OF_USER: &str = "DELETE FROM user_factor WHERE user_sub = $1";
pub(super) const DELETE_RECOVERY_CODES_OF_USER: &str = DELETE_CODES_OF_USER;

fn bind_factor<'q, Q: Bind<'q>>(query: Q, f: &'q FactorRecord) -> Q {
    query
        .arg(&f.id)
        .arg(&f.user_sub)
        .arg(f.kind.as_str())
        .arg(&f.name)
        .arg(&f.sealed_secret)
        .arg(f.last_step)
        .arg(&f.data)
        .arg(f.created_at)
        .arg(f.last_used_at)
}

fn factor_from_row(row: &impl SqlRow) -> StoreResult<FactorRecord> {
    let kind: String = row.col("kind")?;
    Ok(FactorRecord {
        id: row.col("id")?,
        user_sub: row.col("user_sub")?,
        kind: FactorKind::parse(&kind)
            .ok_or_else(|| super::StoreError::Corrupt("unknown factor kind".into()))?,
        name: row.col("name")?,
        sealed_secret: row.col("sealed_secret")?,
        last_step: row.col("last_step")?,
        data: row.col("data")?,
        created_at: row.col("created_at")?,
        last_used_at: row.col("last_used_at")?,
    })
}

macro_rules! impl_factor_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inside `tx`: the user's recovery set replaced by `set`.
            async fn put_recovery_set(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                set: &RecoverySet,
            ) -> StoreResult<()> {
                let sub = &set.factor.user_sub;
                ::sqlx::query(DELETE_CODES_OF_USER)
                    .bind(sub)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                ::sqlx::query(DELETE_FACTORS_OF_KIND)
                    .bind(sub)
                    .bind(FactorKind::RecoveryCodes.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                bind_factor(::sqlx::query(INSERT_FACTOR), &set.factor)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                for hash in &set.code_hashes {
                    ::sqlx::query(INSERT_CODE)
                        .bind(sub)
                        .bind(hash)
                        .bind(&set.factor.id)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl FactorStore for $store {
            async fn list_factors(&self, user_sub: &str) -> StoreResult<Vec<FactorRecord>> {
                ::sqlx::query(LIST_FACTORS)
                    .bind(user_sub)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(factor_from_row)
                    .collect()
            }

            async fn mfa_standing(
                &self,
                user_sub: &str,
            ) -> StoreResult<Option<(bool, Vec<FactorKind>)>> {
                let rows = ::sqlx::query(MFA_STANDING)
                    .bind(user_sub)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                let Some(first) = rows.first() else {
                    return Ok(None);
                };
                let required: bool = first.col("mfa_required")?;
                let mut kinds = Vec::new();
                for row in &rows {
                    let kind: Option<String> = row.col("kind")?;
                    if let Some(kind) = kind.as_deref().and_then(FactorKind::parse)
                        && !kinds.contains(&kind)
                    {
                        kinds.push(kind);
                    }
                }
                Ok(Some((required, kinds)))
            }

            async fn add_factor(&self, factor: &FactorRecord) -> StoreResult<()> {
                bind_factor(::sqlx::query(INSERT_FACTOR), factor)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn replace_totp(
                &self,
                totp: &FactorRecord,
                recovery: Option<&RecoverySet>,
            ) -> StoreResult<()> {
                let mut tx = sql::begin_write(&self.pool).await?;
                ::sqlx::query(DELETE_FACTORS_OF_KIND)
                    .bind(&totp.user_sub)
                    .bind(FactorKind::Totp.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                bind_factor(::sqlx::query(INSERT_FACTOR), totp)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if let Some(set) = recovery {
                    Self::put_recovery_set(&mut tx, set).await?;
                }
                sql::commit(tx).await
            }

            async fn replace_recovery_codes(&self, set: &RecoverySet) -> StoreResult<()> {
                let mut tx = sql::begin_write(&self.pool).await?;
                Self::put_recovery_set(&mut tx, set).await?;
                sql::commit(tx).await
            }

            async fn accept_totp_step(
                &self,
                user_sub: &str,
                id: &str,
                step: i64,
                now: i64,
                event: &AuditEvent,
            ) -> StoreResult<bool> {
                let step_query = |sql| {
                    ::sqlx::query(sql)
                        .bind(user_sub)
                        .bind(id)
                        .bind(step)
                        .bind(now)
                };
                if let Backend::Postgres = <$db as Dialect>::BACKEND {
                    let done = bind_event(step_query(ACCEPT_TOTP_STEP_WITH_EVENT_PG), event)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    return Ok(done.rows_affected() == 1);
                }
                let mut tx = sql::begin_write(&self.pool).await?;
                let done = step_query(ACCEPT_TOTP_STEP)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let accepted = done.rows_affected() == 1;
                if accepted {
                    bind_event(::sqlx::query(INSERT_EVENT), event)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                sql::commit(tx).await?;
                Ok(accepted)
            }

            async fn use_recovery_code(
                &self,
                user_sub: &str,
                code_hash: &[u8],
                now: i64,
            ) -> StoreResult<Option<String>> {
                let row = ::sqlx::query(USE_RECOVERY_CODE)
                    .bind(user_sub)
                    .bind(code_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let factor_id: String = row.col("factor_id")?;
                self.touch_factor(user_sub, &factor_id, now).await?;
                Ok(Some(factor_id))
            }

            async fn recovery_codes_left(&self, user_sub: &str) -> StoreResult<u64> {
                let row = ::sqlx::query(RECOVERY_CODES_LEFT)
                    .bind(user_sub)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                let n: i64 = row.col("n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn touch_factor(&self, user_sub: &str, id: &str, now: i64) -> StoreResult<()> {
                ::sqlx::query(TOUCH_FACTOR)
                    .bind(user_sub)
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn delete_factor(
                &self,
                user_sub: &str,
                id: &str,
                own_removal: bool,
            ) -> StoreResult<FactorRemoval> {
                let mut tx = sql::begin_write(&self.pool).await?;
                if <$db as Dialect>::BACKEND == Backend::Postgres {
                    ::sqlx::query(LOCK_USER)
                        .bind(user_sub)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                let mut removed = 0;
                for statement in [DELETE_FACTOR, DELETE_PASSKEY_FACTOR] {
                    removed += ::sqlx::query(statement)
                        .bind(user_sub)
                        .bind(id)
                        .bind(own_removal)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                }
                if removed == 0 {
                    let found = ::sqlx::query(FACTOR_EXISTS)
                        .bind(user_sub)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if found.is_none() {
                        return Ok(FactorRemoval::NotFound);
                    }
                    let last_way_in = ::sqlx::query(PASSKEY_IS_LAST_WAY_IN)
                        .bind(user_sub)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    return Ok(if last_way_in.is_some() {
                        FactorRemoval::LastWayIn
                    } else {
                        FactorRemoval::LastSecondFactor
                    });
                }
                ::sqlx::query(DELETE_CODES_OF_FACTOR)
                    .bind(user_sub)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sql::commit(tx).await?;
                Ok(FactorRemoval::Removed)
            }
        }
    };
}

impl_factor_store!(PgStore, sqlx::Postgres);
impl_factor_store!(SqliteStore, sqlx::Sqlite);
