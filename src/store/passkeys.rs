//! Passkeys (WebAuthn credentials) of users: registered from the account page, used to sign
//! in from the login page (`accounts::factors::passkey`). The statements are the same in both
//! dialects.
//!
//! The security rule kept here is the signature counter (WebAuthn §6.1.1): a sign-in moves it
//! forward in one conditional `UPDATE`, so of two racing sign-ins with the same counter on
//! any number of nodes only one succeeds, and a counter that did not increase (a cloned
//! authenticator) changes nothing and is reported as such.
//!
//! Contract: `contract/passkeys.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{Bind, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// Most passkeys one user may register. The registration ceremony's state lists them all
/// (so that an authenticator is not registered twice) and travels in a cookie, which must
/// stay small; and what a signed-in user can write stays bounded.
pub const MAX_PASSKEYS_PER_USER: i64 = 10;

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Random; names the passkey on the account page and in the admin API.
    pub passkey_id: String,
    /// The credential id the authenticator chose; unique across all users.
    pub credential_id: Vec<u8>,
    pub user_sub: String,
    /// What the user called it.
    pub name: String,
    /// webauthn-rs' serialized `Passkey` (public key and flags); the store does not parse it.
    pub credential: String,
    /// The authenticator's signature counter as last seen (0 for authenticators without one).
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A sign-in with a passkey, to be recorded.
#[derive(Debug, Clone)]
pub struct PasskeyUse<'a> {
    pub credential_id: &'a [u8],
    /// The counter the authenticator reported in this assertion.
    pub sign_count: i64,
    /// The credential as updated by the verification (its counter and backup state).
    pub credential: &'a str,
    pub now: i64,
}

/// What recording a sign-in found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyUsed {
    /// The counter moved forward (or both it and the stored one are 0): the sign-in counts.
    Recorded,
    /// The counter is not above the stored one, and not both are 0: the authenticator may
    /// have been cloned. Nothing was changed.
    CounterNotIncreased,
    /// The passkey is gone (removed meanwhile).
    Gone,
}

#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Stores a new passkey, unless its user already has `MAX_PASSKEYS_PER_USER` (false then).
    /// The cap holds under any number of concurrent registrations on any number of nodes.
    /// A credential id already registered (to anyone) is `Conflict("credential_id")`.
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool>;
    /// The passkey with this credential id, whoever it belongs to.
    async fn get_passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>>;
    /// A user's passkeys, oldest first.
    async fn list_passkeys(&self, user_sub: &str) -> StoreResult<Vec<PasskeyRecord>>;
    /// Removes one passkey of `user_sub`; false when that user has no such passkey.
    async fn delete_passkey(&self, user_sub: &str, passkey_id: &str) -> StoreResult<bool>;
    /// Records a sign-in: moves the counter forward, stores the updated credential and the
    /// time of use, in one conditional statement. Of racing calls with the same counter
    /// exactly one gets `Recorded` (unless both counters are 0: authenticators without a
    /// counter, such as synced passkeys, report 0 forever, and their replays are stopped by
    /// the single-use challenge instead).
    async fn record_passkey_use(&self, used: &PasskeyUse<'_>) -> StoreResult<PasskeyUsed>;
}

macro_rules! passkey_columns {
    () => {
        "passkey_id, credential_id, user_sub, name, credential, sign_count, created_at, \
         last_used_at"
    };
}

/// Takes the lowest free slot (0 to `MAX_PASSKEYS_PER_USER - 1`) of the user and stores the
/// passkey in it, in one statement. The unique index on `(user_sub, slot)` is what holds the
/// cap under concurrency: racing registrations that picked the same slot cannot both commit,
/// and the loser inserts nothing (`ON CONFLICT DO NOTHING`; on Postgres it waits for the
/// winner's commit first). With no free slot nothing is inserted either. The count guards
/// users who got more passkeys than the cap before slots existed (migration 0082).
/// A credential id registered before still fails on its own unique constraint.
const INSERT_PASSKEY: &str = concat!(
    "WITH RECURSIVE slot_number (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slot_number \
     WHERE n + 1 < $9) \
     INSERT INTO passkey (",
    passkey_columns!(),
    ", slot) SELECT $1, $2, $3, $4, $5, $6, $7, $8, n FROM slot_number \
     WHERE NOT EXISTS (SELECT 1 FROM passkey p WHERE p.user_sub = $3 AND p.slot = n) \
     AND (SELECT COUNT(*) FROM passkey p WHERE p.user_sub = $3) < $9 \
     ORDER BY n LIMIT 1 \
     ON CONFLICT (user_sub, slot) DO NOTHING"
);
/// How many passkeys a user has: whether an insert that took no slot found the user full or
/// lost a race for a slot.
const COUNT_PASSKEYS: &str = "SELECT COUNT(*) AS n FROM passkey WHERE user_sub = $1";
const GET_BY_CREDENTIAL: &str = concat!(
    "SELECT ",
    passkey_columns!(),
    " FROM passkey WHERE credential_id = $1"
);
const LIST_PASSKEYS: &str = concat!(
    "SELECT ",
    passkey_columns!(),
    " FROM passkey WHERE user_sub = $1 ORDER BY created_at, passkey_id"
);
/// Unguarded: the account page and the admin API remove a passkey as a factor
/// (`factors.rs`, `delete_factor`), which keeps a user's last required second factor.
const DELETE_PASSKEY: &str = "DELETE FROM passkey WHERE user_sub = $1 AND passkey_id = $2";
/// WebAuthn §7.2 step 21: the new counter must be above the stored one unless both are 0.
const RECORD_USE: &str = "UPDATE passkey SET sign_count = $2, credential = $3, last_used_at = $4 \
     WHERE credential_id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))";
const EXISTS: &str = "SELECT 1 AS found FROM passkey WHERE credential_id = $1";
/// Used by `users.rs` when a user is deleted.
pub(super) const DELETE_PASSKEYS_OF_USER: &str = "DELETE FROM passkey WHERE user_sub = $1";

fn passkey_from_row(row: &impl SqlRow) -> StoreResult<PasskeyRecord> {
    Ok(PasskeyRecord {
        passkey_id: row.col("passkey_id")?,
        credential_id: row.col("credential_id")?,
        user_sub: row.col("user_sub")?,
        name: row.col("name")?,
        credential: row.col("credential")?,
        sign_count: row.col("sign_count")?,
        created_at: row.col("created_at")?,
        last_used_at: row.col("last_used_at")?,
    })
}

fn bind_passkey<'q, Q: Bind<'q>>(query: Q, p: &'q PasskeyRecord) -> Q {
    query
        .arg(&p.passkey_id)
        .arg(&p.credential_id)
        .arg(&p.user_sub)
        .arg(&p.name)
        .arg(&p.credential)
        .arg(p.sign_count)
        .arg(p.created_at)
        .arg(p.last_used_at)
        .arg(MAX_PASSKEYS_PER_USER)
}

macro_rules! impl_passkey_store {
    ($store:ty) => {
        #[async_trait]
        impl PasskeyStore for $store {
            async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
                // Each lost race means another registration of this user took a slot, so
                // after at most one round per slot the user is full or this one got in.
                for _ in 0..=MAX_PASSKEYS_PER_USER {
                    let done = bind_passkey(::sqlx::query(INSERT_PASSKEY), passkey)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 1 {
                        return Ok(true);
                    }
                    let row = ::sqlx::query(COUNT_PASSKEYS)
                        .bind(&passkey.user_sub)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let count: i64 = row.col("n")?;
                    if count >= MAX_PASSKEYS_PER_USER {
                        return Ok(false);
                    }
                }
                Ok(false)
            }

            async fn get_passkey_by_credential(
                &self,
                credential_id: &[u8],
            ) -> StoreResult<Option<PasskeyRecord>> {
                ::sqlx::query(GET_BY_CREDENTIAL)
                    .bind(credential_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(passkey_from_row)
                    .transpose()
            }

            async fn list_passkeys(&self, user_sub: &str) -> StoreResult<Vec<PasskeyRecord>> {
                ::sqlx::query(LIST_PASSKEYS)
                    .bind(user_sub)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(passkey_from_row)
                    .collect()
            }

            async fn delete_passkey(&self, user_sub: &str, passkey_id: &str) -> StoreResult<bool> {
                let done = ::sqlx::query(DELETE_PASSKEY)
                    .bind(user_sub)
                    .bind(passkey_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_passkey_use(&self, used: &PasskeyUse<'_>) -> StoreResult<PasskeyUsed> {
                let done = ::sqlx::query(RECORD_USE)
                    .bind(used.credential_id)
                    .bind(used.sign_count)
                    .bind(used.credential)
                    .bind(used.now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 1 {
                    return Ok(PasskeyUsed::Recorded);
                }
                // Nothing changed, so this read decides nothing: it only tells the caller
                // which refusal to report.
                let found = ::sqlx::query(EXISTS)
                    .bind(used.credential_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(if found.is_some() {
                    PasskeyUsed::CounterNotIncreased
                } else {
                    PasskeyUsed::Gone
                })
            }
        }
    };
}

impl_passkey_store!(PgStore);
impl_passkey_store!(SqliteStore);
