//! Signing keys, sealed with the master key. Nodes cache the key set, so inserting and
//! rotating bump the `keys` change counter in the same transaction; the bump (or, for the
//! first keys, a no-op update of the same row) is also the lock that serialises nodes
//! starting or rotating at once. A scheduled rotation is claimed by one conditional `UPDATE`
//! of the key it replaces, so of any number of nodes noticing that a rotation is due exactly
//! one inserts the next key.
//!
//! Contract: `contract/keys.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::housekeeping::KEYS_VERSION;
use super::postgres::PgStore;
use super::sql::{self, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// A signing key. `private_sealed` is the PKCS#8 private key sealed with the master key
/// (`crypto::Sealer`, with the kid as associated data); `public_jwk` is the public JWK as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_sealed: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    /// When the key starts signing; before that it is only published (`next`).
    pub activates_at: i64,
    /// When its successor takes over (may lie in the future once the successor is
    /// scheduled). A retired key stays published until every token it signed has expired.
    pub retired_at: Option<i64>,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All keys, latest activation first.
    async fn list_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// A rotation by hand: `new_keys` (whose `activates_at` is `starts`, `now` or later) take
    /// over at `starts`. In one transaction: deletes the keys that are not yet active at
    /// `now` (scheduled ones, or an earlier rotation's, which never signed anything), sets
    /// `retired_at = starts` on every key not already retired by `now`, and inserts
    /// `new_keys`. Bumps the keys version. Rotations racing on any number of nodes are
    /// serialised by the version row: the last one's keys are the only pending ones left.
    async fn rotate_keys(
        &self,
        new_keys: &[SigningKeyRecord],
        now: i64,
        starts: i64,
    ) -> StoreResult<()>;
    /// A scheduled rotation: sets `retired_at = next.activates_at` on key `current_kid` only
    /// if it has no `retired_at` yet, and inserts `next` only if that update matched, in one
    /// transaction. Of nodes racing to schedule the successor of the same key exactly one
    /// gets true. Bumps the keys version when it inserts.
    async fn schedule_next_key(
        &self,
        next: &SigningKeyRecord,
        current_kid: &str,
    ) -> StoreResult<bool>;
    /// Inserts the first keys only if the table is empty (several nodes may start at once);
    /// true when these were inserted. Bumps the keys version when it inserts.
    async fn insert_initial_keys(&self, keys: &[SigningKeyRecord]) -> StoreResult<bool>;
    /// Deletes keys retired before `retired_before`.
    async fn delete_retired_keys(&self, retired_before: i64) -> StoreResult<u64>;
}

macro_rules! key_columns {
    () => {
        "kid, alg, private_sealed, public_jwk, created_at, activates_at, retired_at"
    };
}

const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM signing_key ORDER BY activates_at DESC, created_at DESC, kid DESC"
);
const INSERT_KEY: &str = concat!(
    "INSERT INTO signing_key (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
// A no-op update whose point is the row lock it takes on Postgres: it serialises nodes
// that insert or rotate keys at the same moment. On SQLite, BEGIN IMMEDIATE already did.
const LOCK_KEYS: &str = "UPDATE change_version SET version = version WHERE name = 'keys'";
const ANY_KEY: &str = "SELECT EXISTS (SELECT 1 FROM signing_key) AS present";
const DROP_PENDING_KEYS: &str = "DELETE FROM signing_key WHERE activates_at > $1";
// Every key still signing at $1 (or due to stop later) stops when the new keys start, $2.
const RETIRE_KEYS: &str =
    "UPDATE signing_key SET retired_at = $2 WHERE retired_at IS NULL OR retired_at > $1";
// The claim of a scheduled rotation: only the first node to set the successor's start wins.
const CLAIM_SUCCESSION: &str =
    "UPDATE signing_key SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL";
const DELETE_RETIRED_KEYS: &str =
    "DELETE FROM signing_key WHERE retired_at IS NOT NULL AND retired_at < $1";

fn key_from_row(row: &impl SqlRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.col("kid")?,
        alg: row.col("alg")?,
        private_sealed: row.col("private_sealed")?,
        public_jwk: row.col("public_jwk")?,
        created_at: row.col("created_at")?,
        activates_at: row.col("activates_at")?,
        retired_at: row.col("retired_at")?,
    })
}

macro_rules! impl_key_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn insert_keys_in(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                keys: &[SigningKeyRecord],
            ) -> StoreResult<()> {
                for key in keys {
                    ::sqlx::query(INSERT_KEY)
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(&key.private_sealed)
                        .bind(&key.public_jwk)
                        .bind(key.created_at)
                        .bind(key.activates_at)
                        .bind(key.retired_at)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl KeyStore for $store {
            async fn list_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                ::sqlx::query(LIST_KEYS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(key_from_row)
                    .collect()
            }

            async fn rotate_keys(
                &self,
                new_keys: &[SigningKeyRecord],
                now: i64,
                starts: i64,
            ) -> StoreResult<()> {
                // Bumping first takes the 'keys' row lock before anything else, which
                // serialises this against other rotations and initial insertions.
                let mut tx = sql::begin_write(&self.pool).await?;
                Self::bump_version(&mut tx, KEYS_VERSION).await?;
                ::sqlx::query(DROP_PENDING_KEYS)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                ::sqlx::query(RETIRE_KEYS)
                    .bind(now)
                    .bind(starts)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                Self::insert_keys_in(&mut tx, new_keys).await?;
                sql::commit(tx).await
            }

            async fn schedule_next_key(
                &self,
                next: &SigningKeyRecord,
                current_kid: &str,
            ) -> StoreResult<bool> {
                let mut tx = sql::begin_write(&self.pool).await?;
                // The bump comes first, as in `rotate_keys`: both take the 'keys' row lock
                // before any key row, so they cannot deadlock; a loser's bump is rolled back.
                Self::bump_version(&mut tx, KEYS_VERSION).await?;
                // The claim alone would already decide the race: on Postgres a second node's
                // UPDATE re-evaluates `retired_at IS NULL` against the committed row once the
                // first one's lock is released, and matches nothing.
                let claimed = ::sqlx::query(CLAIM_SUCCESSION)
                    .bind(next.activates_at)
                    .bind(current_kid)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if claimed != 1 {
                    return Ok(false);
                }
                Self::insert_keys_in(&mut tx, std::slice::from_ref(next)).await?;
                sql::commit(tx).await?;
                Ok(true)
            }

            async fn insert_initial_keys(&self, keys: &[SigningKeyRecord]) -> StoreResult<bool> {
                if keys.is_empty() {
                    return Ok(false);
                }
                let mut tx = sql::begin_write(&self.pool).await?;
                ::sqlx::query(LOCK_KEYS)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                // Read after taking the lock: a node that waited for another one's
                // insertion sees its keys here (each Postgres statement reads the latest
                // committed data) and backs off.
                let row = ::sqlx::query(ANY_KEY)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if row.col::<bool>("present")? {
                    return Ok(false);
                }
                Self::insert_keys_in(&mut tx, keys).await?;
                Self::bump_version(&mut tx, KEYS_VERSION).await?;
                sql::commit(tx).await?;
                Ok(true)
            }

            async fn delete_retired_keys(&self, retired_before: i64) -> StoreResult<u64> {
                let result = ::sqlx::query(DELETE_RETIRED_KEYS)
                    .bind(retired_before)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected())
            }
        }
    };
}

impl_key_store!(PgStore, sqlx::Postgres);
impl_key_store!(SqliteStore, sqlx::Sqlite);
