//! Attempt counters, shared by every node: the rule (`ThrottleRule`) is applied inside the
//! statement that counts an attempt, so that the count, the lock check and the next lock are
//! one atomic step. An attempt's one or two keys (address, then account) are counted in one
//! round trip: one statement on Postgres, one `BEGIN IMMEDIATE` transaction on SQLite.
//!
//! On Postgres every throttle write commits relaxed (`sql::relaxed_commit!`): a counter lost
//! in a crash of the database costs at most the attempts counted in its last fraction of a
//! second, that is a few more free guesses for an attacker (or a success's release lost, a
//! few attempts more counted against a user), and buys each login one disk flush less.
//!
//! Contract: `contract/throttle.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, Backend, Dialect, SqlRow, db_err, relaxed_commit};
use super::sqlite::SqliteStore;

/// How one kind of throttle key is limited, in plain numbers that the store applies inside
/// the statement that counts an attempt (`ThrottleStore::count_attempt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Attempts within `window` that cost nothing.
    pub free: i64,
    /// Seconds over which attempts are counted; the window starts again once this long has
    /// passed since the last counted attempt.
    pub window: i64,
    /// After the free attempts each one locks the key for a back-off that doubles from one
    /// second up to this many seconds.
    pub max_delay: i64,
    /// The attempt that brings the count to this locks the key for `lockout` seconds.
    pub lockout_after: i64,
    pub lockout: i64,
}

impl ThrottleRule {
    /// The lock (a Unix time; 0 for none) that the attempt bringing the count to `attempts`
    /// puts on its key at `now`. The store applies the same rule in SQL; this is its
    /// reference, used for a key's first attempt and by tests.
    pub fn lock_after(&self, attempts: i64, now: i64) -> i64 {
        if attempts >= self.lockout_after {
            now + self.lockout
        } else if attempts > self.free {
            let exponent = attempts - self.free - 1;
            let delay = if exponent >= 20 {
                self.max_delay
            } else {
                (1_i64 << exponent).min(self.max_delay)
            };
            now + delay
        } else {
            0
        }
    }
}

/// One key and the rule it is counted under.
pub type AttemptKey<'a> = (&'a str, &'a ThrottleRule);

/// What `ThrottleStore::count_attempt` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptCount {
    /// The attempt is counted: `attempts` in the current window, this one included.
    /// `locked_until` is the lock it put on the key for the attempts after it (0: none).
    Counted { attempts: i64, locked_until: i64 },
    /// The key is locked until then: nothing was counted or written.
    Refused { locked_until: i64 },
}

/// Attempt counters, shared by every node. An attempt is counted before the work it guards
/// (a password hash, a secret comparison), in the same statement that checks the lock, so
/// that racing attempts on any number of nodes cannot all pass a check made before any of
/// them was counted.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// The latest lock still in force at `now` (`locked_until > now`) among `keys` (one or
    /// two): a read that lets a refused attempt cost no write. It decides nothing on its own:
    /// `count_attempt` checks the lock again in the statement that counts.
    async fn latest_lock(&self, keys: &[&str], now: i64) -> StoreResult<Option<i64>>;
    /// In one statement: when `key` is locked at `now`, `Refused` and nothing written;
    /// otherwise counts the attempt (in a new window when the last one has passed) and, when
    /// `rule` says so for the count reached, locks the key for the attempts after this one.
    /// Of N racing calls on an unlocked key, exactly those the rule lets through are
    /// `Counted` (for a rule with `free` = 5: five, then the sixth locks the rest out).
    async fn count_attempt(
        &self,
        key: &str,
        rule: &ThrottleRule,
        now: i64,
    ) -> StoreResult<AttemptCount> {
        Ok(self.count_attempts((key, rule), None, now).await?.0)
    }
    /// `count_attempt` of `first` and then, only if that was counted, of `then`, in one round
    /// trip (one statement on Postgres, one transaction on SQLite). The second count is
    /// `None` when there was no second key or the first refused. The keys must differ.
    async fn count_attempts(
        &self,
        first: AttemptKey<'_>,
        then: Option<AttemptKey<'_>>,
        now: i64,
    ) -> StoreResult<(AttemptCount, Option<AttemptCount>)>;
    /// After an attempt that succeeded: forgets every attempt of `clear` (the account that
    /// proved itself), and takes back the one attempt counted for `release` (the address it
    /// came from, whose other attempts stand), lifting that key's lock when what remains is
    /// within `rule.free`.
    async fn settle_success(
        &self,
        clear: Option<&str>,
        release: Option<(&str, &ThrottleRule)>,
    ) -> StoreResult<()>;
}

/// The attempt count an upsert of `count_upsert!` reaches: 1 in a new window (the last one
/// has passed at `$2`), else one more than before.
macro_rules! next_attempt {
    () => {
        "(CASE WHEN throttle.expires_at <= $2 THEN 1 ELSE throttle.failures + 1 END)"
    };
}
/// The lock an upsert of `count_upsert!` sets at `$2` for the count `next_attempt!` reaches
/// (n): the lockout at `$lockout_after` attempts, else past the `$free` ones a back-off of
/// 2^(n - free - 1) seconds capped at `$max_delay`, else none (0). Shifts stand in for powers,
/// which SQLite lacks; the exponent is bounded before shifting.
macro_rules! attempt_lock {
    ($free:literal, $max_delay:literal, $lockout_after:literal, $lockout:literal) => {
        concat!(
            "CASE WHEN ",
            next_attempt!(),
            " >= ",
            $lockout_after,
            " THEN $2 + ",
            $lockout,
            " WHEN ",
            next_attempt!(),
            " > ",
            $free,
            " THEN $2 + (CASE WHEN ",
            next_attempt!(),
            " - ",
            $free,
            " > 20 THEN ",
            $max_delay,
            " WHEN (CAST(1 AS BIGINT) << CAST(",
            next_attempt!(),
            " - ",
            $free,
            " - 1 AS INTEGER)) >= ",
            $max_delay,
            " THEN ",
            $max_delay,
            " ELSE (CAST(1 AS BIGINT) << CAST(",
            next_attempt!(),
            " - ",
            $free,
            " - 1 AS INTEGER)) END) ELSE 0 END"
        )
    };
}
/// Counts an attempt at `$2` for the key in `$row` (a `VALUES` or `SELECT` giving the key,
/// 1, the window's end and the lock a first attempt sets, which `ThrottleRule` computes),
/// under a rule (`$window`, `$free`, `$max_delay`, `$lockout_after`, `$lockout` name its
/// parameters), unless the key is locked: the `WHERE` of the upsert leaves a locked row
/// alone, and then no row is returned. The row lock of the upsert orders racing attempts,
/// so each sees the count of the ones before it.
macro_rules! count_upsert {
    (
        $row:literal,
        $window:literal,
        $free:literal,
        $max_delay:literal,
        $lockout_after:literal,
        $lockout:literal
    ) => {
        concat!(
            "INSERT INTO throttle (throttle_key, failures, expires_at, locked_until) ",
            $row,
            " ON CONFLICT (throttle_key) DO UPDATE SET failures = ",
            next_attempt!(),
            ", locked_until = ",
            attempt_lock!($free, $max_delay, $lockout_after, $lockout),
            ", expires_at = $2 + ",
            $window,
            " WHERE throttle.locked_until <= $2 \
             RETURNING failures AS attempts, locked_until"
        )
    };
}

/// One key `$1` at `$2` under the rule `$3` window, `$4` free, `$5` max_delay, `$6`
/// lockout_after, `$7` lockout; `$8` the lock a first attempt sets.
const COUNT_ATTEMPT: &str =
    count_upsert!("VALUES ($1, 1, $2 + $3, $8)", "$3", "$4", "$5", "$6", "$7");
/// Postgres: `COUNT_ATTEMPT` of `$1` and then, only when that counted (the second upsert
/// selects from the first's result), of `$9` (NULL: none) under its rule `$10`..`$14` with
/// first lock `$15`: one statement, committed relaxed.
const COUNT_ATTEMPTS: &str = concat!(
    "WITH ",
    relaxed_commit!(),
    ", first AS (",
    count_upsert!(
        "SELECT $1, 1, $2 + $3, $8 FROM relaxed",
        "$3",
        "$4",
        "$5",
        "$6",
        "$7"
    ),
    "), second AS (",
    count_upsert!(
        "SELECT $9, 1, $2 + $10, $15 FROM first WHERE $9 IS NOT NULL",
        "$10",
        "$11",
        "$12",
        "$13",
        "$14"
    ),
    ") SELECT (SELECT attempts FROM first) AS first_attempts, \
     (SELECT locked_until FROM first) AS first_lock, \
     (SELECT attempts FROM second) AS second_attempts, \
     (SELECT locked_until FROM second) AS second_lock"
);
/// Two lookups by the primary key rather than `IN ($1, $2)`: once the throttle table has
/// statistics and is a few pages long, Postgres planned the list as a sequential scan that
/// built the array again for every row, which doubled the database's CPU per admin request.
const LATEST_LOCK: &str = "SELECT \
     MAX(CASE WHEN locked_until > $3 THEN locked_until END) AS locked_until \
     FROM (SELECT locked_until FROM throttle WHERE throttle_key = $1 \
     UNION ALL SELECT locked_until FROM throttle WHERE throttle_key = $2) AS keyed";
const THROTTLE_LOCK: &str = "SELECT locked_until FROM throttle WHERE throttle_key = $1";
const CLEAR_ATTEMPTS: &str = "DELETE FROM throttle WHERE throttle_key = $1";
/// Takes back one attempt of `$1`; a lock goes when the attempts left are within the
/// rule's free ones (`$2`): it was set by an attempt that turned out a success.
const RELEASE_ATTEMPT: &str = "UPDATE throttle SET failures = failures - 1, \
     locked_until = CASE WHEN failures - 1 <= $2 THEN 0 ELSE locked_until END \
     WHERE throttle_key = $1 AND failures > 0";
/// Postgres: `CLEAR_ATTEMPTS` of `$3` and `RELEASE_ATTEMPT` of `$1` (either may be NULL:
/// nothing to do there) in one statement, committed relaxed.
const SETTLE_SUCCESS: &str = concat!(
    "WITH ",
    relaxed_commit!(),
    ", cleared AS (DELETE FROM throttle WHERE throttle_key = (SELECT $3 FROM relaxed)) \
     UPDATE throttle SET failures = failures - 1, \
     locked_until = CASE WHEN failures - 1 <= $2 THEN 0 ELSE locked_until END \
     WHERE throttle_key = (SELECT $1 FROM relaxed) AND failures > 0"
);

/// The two throttle keys a lock query compares against; callers pass one or two.
pub(super) fn key_pair<'k>(keys: &[&'k str]) -> (&'k str, &'k str) {
    let first = keys.first().copied().unwrap_or_default();
    (first, keys.get(1).copied().unwrap_or(first))
}

macro_rules! impl_throttle_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// `COUNT_ATTEMPT` of one key: `None` when it was locked.
            async fn count_one<'c, E>(
                executor: E,
                key: &str,
                rule: &ThrottleRule,
                now: i64,
            ) -> StoreResult<Option<AttemptCount>>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                let counted = ::sqlx::query(COUNT_ATTEMPT)
                    .bind(key)
                    .bind(now)
                    .bind(rule.window)
                    .bind(rule.free)
                    .bind(rule.max_delay)
                    .bind(rule.lockout_after)
                    .bind(rule.lockout)
                    .bind(rule.lock_after(1, now))
                    .fetch_optional(executor)
                    .await
                    .map_err(db_err)?;
                counted
                    .map(|row| {
                        Ok(AttemptCount::Counted {
                            attempts: row.col("attempts")?,
                            locked_until: row.col("locked_until")?,
                        })
                    })
                    .transpose()
            }

            /// A refused attempt on `key`: reads the lock for the caller's Retry-After. A row
            /// that vanished in between (purged) still refuses this attempt, for a second.
            async fn refusal(&self, key: &str, now: i64) -> StoreResult<AttemptCount> {
                let locked_until: Option<i64> = ::sqlx::query_scalar(THROTTLE_LOCK)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(AttemptCount::Refused {
                    locked_until: locked_until.unwrap_or(now + 1).max(now + 1),
                })
            }
        }

        #[async_trait]
        impl ThrottleStore for $store {
            async fn latest_lock(&self, keys: &[&str], now: i64) -> StoreResult<Option<i64>> {
                let (first, second) = key_pair(keys);
                ::sqlx::query_scalar(LATEST_LOCK)
                    .bind(first)
                    .bind(second)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)
            }

            async fn count_attempts(
                &self,
                first: AttemptKey<'_>,
                then: Option<AttemptKey<'_>>,
                now: i64,
            ) -> StoreResult<(AttemptCount, Option<AttemptCount>)> {
                let (key, rule) = first;
                match (<$db as Dialect>::BACKEND, then) {
                    // Postgres: both keys in one statement, committed relaxed.
                    (Backend::Postgres, _) => {
                        let (then_key, then_rule) = match then {
                            Some((k, r)) => (Some(k), *r),
                            None => (None, *rule),
                        };
                        let row = ::sqlx::query(COUNT_ATTEMPTS)
                            .bind(key)
                            .bind(now)
                            .bind(rule.window)
                            .bind(rule.free)
                            .bind(rule.max_delay)
                            .bind(rule.lockout_after)
                            .bind(rule.lockout)
                            .bind(rule.lock_after(1, now))
                            .bind(then_key)
                            .bind(then_rule.window)
                            .bind(then_rule.free)
                            .bind(then_rule.max_delay)
                            .bind(then_rule.lockout_after)
                            .bind(then_rule.lockout)
                            .bind(then_rule.lock_after(1, now))
                            .fetch_one(&self.pool)
                            .await
                            .map_err(db_err)?;
                        let counted = |attempts: Option<i64>, lock: Option<i64>| {
                            attempts.map(|attempts| AttemptCount::Counted {
                                attempts,
                                locked_until: lock.unwrap_or_default(),
                            })
                        };
                        let Some(first) =
                            counted(row.col("first_attempts")?, row.col("first_lock")?)
                        else {
                            return Ok((self.refusal(key, now).await?, None));
                        };
                        let second = match then_key {
                            None => None,
                            Some(then_key) => Some(
                                match counted(row.col("second_attempts")?, row.col("second_lock")?)
                                {
                                    Some(second) => second,
                                    None => self.refusal(then_key, now).await?,
                                },
                            ),
                        };
                        Ok((first, second))
                    }
                    // SQLite, one key: one statement.
                    (Backend::Sqlite, None) => {
                        let first = match Self::count_one(&self.pool, key, rule, now).await? {
                            Some(first) => first,
                            None => self.refusal(key, now).await?,
                        };
                        Ok((first, None))
                    }
                    // SQLite, two keys: one transaction.
                    (Backend::Sqlite, Some((then_key, then_rule))) => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        let Some(first) = Self::count_one(&mut *tx, key, rule, now).await? else {
                            drop(tx);
                            return Ok((self.refusal(key, now).await?, None));
                        };
                        let second = Self::count_one(&mut *tx, then_key, then_rule, now).await?;
                        sql::commit(tx).await?;
                        let second = match second {
                            Some(second) => second,
                            None => self.refusal(then_key, now).await?,
                        };
                        Ok((first, Some(second)))
                    }
                }
            }

            async fn settle_success(
                &self,
                clear: Option<&str>,
                release: Option<(&str, &ThrottleRule)>,
            ) -> StoreResult<()> {
                if let Backend::Postgres = <$db as Dialect>::BACKEND {
                    ::sqlx::query(SETTLE_SUCCESS)
                        .bind(release.map(|(key, _)| key))
                        .bind(release.map(|(_, rule)| rule.free))
                        .bind(clear)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    return Ok(());
                }
                // SQLite: each on its own; a lost one costs no more than it would on Postgres.
                if let Some(clear) = clear {
                    ::sqlx::query(CLEAR_ATTEMPTS)
                        .bind(clear)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                }
                if let Some((key, rule)) = release {
                    ::sqlx::query(RELEASE_ATTEMPT)
                        .bind(key)
                        .bind(rule.free)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                }
                Ok(())
            }
        }
    };
}
impl_throttle_store!(PgStore, sqlx::Postgres);
impl_throttle_store!(SqliteStore, sqlx::Sqlite);
