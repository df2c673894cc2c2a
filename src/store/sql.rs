//! What every concern's SQL shares: the two dialects (`Dialect`, with the few settings in
//! which they differ), mapping sqlx errors to `StoreError`, JSON columns, typed access to the
//! rows and arguments of either backend, and the SQL fragments that several concerns write
//! into their statements.
//!
//! Each concern file (`clients.rs`, `refresh.rs`, …) holds its own statements and implements
//! its trait for both stores with one small macro, instantiated at its bottom for
//! `postgres::PgStore` and `sqlite::SqliteStore`. The SQL text is the same for both dialects
//! wherever it can be: runtime-checked `sqlx::query` with `$N` placeholders, which
//! sqlx-sqlite accepts too. Where they differ, the code says so in place with
//! `match <$db as Dialect>::BACKEND { Backend::Postgres => …, Backend::Sqlite => … }`.
//!
//! Concurrency rules every concern follows:
//! - A security decision (consume a code, rotate a refresh token, take an interaction) is made
//!   by one conditional `UPDATE`/`DELETE` (or a primary key), so the database, not the
//!   caller, picks the one winner among racing requests on any number of nodes.
//! - Write transactions open with `Dialect::BEGIN_WRITE` (`BEGIN IMMEDIATE` on SQLite), so a
//!   SQLite transaction never has to upgrade a read lock to a write lock, which fails at once
//!   with `SQLITE_BUSY` instead of waiting for the busy timeout.
//! - On Postgres, several writes that belong together are one statement of data-modifying
//!   CTEs (one round trip, atomic without a transaction); SQLite has no data-modifying CTEs,
//!   and its transactions cost no round trips, so there they are one transaction.
//! - Cache counters in `change_version` are bumped in the same transaction as the change.
//!
//! Nothing here may put a bound value into an error message.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

use super::{StoreError, StoreResult};

/// `select` (a statement ending in its `ORDER BY`) limited to one page of `limit` rows, the
/// number written into the SQL rather than bound. Postgres plans a generic plan's `LIMIT $n`
/// as if it returned a tenth of the rows: at a million rows that plan looks a hundred times
/// costlier than a custom one, so the plan cache plans every execution again (one planning
/// per admin list request at scale, bench/RESULTS-scale.md). A number cannot carry SQL; each
/// page size is its own prepared statement.
pub(super) fn paged(select: &str, limit: u32) -> String {
    format!("{select} LIMIT {limit}")
}

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

/// The settings in which the two dialects differ, on sqlx's database types.
pub(crate) trait Dialect: sqlx::Database {
    const BACKEND: Backend;
    /// The statement that opens a write transaction.
    const BEGIN_WRITE: &'static str;
}

impl Dialect for Postgres {
    const BACKEND: Backend = Backend::Postgres;
    // Read committed is enough: every decision is a conditional UPDATE, which Postgres
    // re-checks against the latest committed row after waiting for a competing writer.
    const BEGIN_WRITE: &'static str = "BEGIN";
}

impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    // A write transaction takes the write lock when it starts. A deferred one would take a
    // read lock first and could not upgrade it while another connection writes: SQLite
    // answers that with SQLITE_BUSY at once, without waiting for the busy timeout.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
}

pub(crate) async fn begin_write<DB: Dialect>(
    pool: &sqlx::Pool<DB>,
) -> StoreResult<sqlx::Transaction<'static, DB>> {
    pool.begin_with(DB::BEGIN_WRITE).await.map_err(db_err)
}

pub(crate) async fn commit<DB: Dialect>(tx: sqlx::Transaction<'static, DB>) -> StoreResult<()> {
    tx.commit().await.map_err(db_err)
}

/// A column type both backends decode.
pub(crate) trait Decodable:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<T> Decodable for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

/// A row of either backend, so that one function turns it into a record for both.
pub(crate) trait SqlRow {
    fn col<T: Decodable>(&self, name: &str) -> StoreResult<T>;
}

impl SqlRow for PgRow {
    fn col<T: Decodable>(&self, name: &str) -> StoreResult<T> {
        sqlx::Row::try_get(self, name).map_err(db_err)
    }
}

impl SqlRow for SqliteRow {
    fn col<T: Decodable>(&self, name: &str) -> StoreResult<T> {
        sqlx::Row::try_get(self, name).map_err(db_err)
    }
}

/// An argument type both backends encode.
pub(crate) trait Encodable<'q>:
    'q + Send + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

impl<'q, T> Encodable<'q> for T where
    T: 'q + Send + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

/// A query of either backend, so that one function binds a record's columns for both.
pub(crate) trait Bind<'q>: Sized {
    fn arg<T: Encodable<'q>>(self, value: T) -> Self;
}

impl<'q> Bind<'q> for Query<'q, Postgres, PgArguments> {
    fn arg<T: Encodable<'q>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q> Bind<'q> for Query<'q, Sqlite, SqliteArguments<'q>> {
    fn arg<T: Encodable<'q>>(self, value: T) -> Self {
        self.bind(value)
    }
}

/// The unique constraints of the schema: Postgres constraint name, the first column SQLite
/// names in "UNIQUE constraint failed: table.column", and the field `Conflict` reports.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("client_pkey", "client.client_id", "client_id"),
    ("app_user_pkey", "app_user.sub", "sub"),
    ("app_user_username_key", "app_user.username", "username"),
    ("session_pkey", "session.session_hash", "session_hash"),
    (
        "interaction_pkey",
        "interaction.interaction_id",
        "interaction_id",
    ),
    ("auth_grant_pkey", "auth_grant.grant_id", "grant_id"),
    ("auth_code_pkey", "auth_code.code_hash", "code_hash"),
    ("refresh_family_pkey", "refresh_family.grant_id", "grant_id"),
    (
        "revoked_access_token_pkey",
        "revoked_access_token.jti",
        "jti",
    ),
    ("consent_pkey", "consent.user_sub", "consent"),
    ("signing_key_pkey", "signing_key.kid", "kid"),
    ("upstream_pkey", "upstream.upstream_id", "upstream_id"),
    (
        "upstream_identity_pkey",
        "upstream_identity.upstream_id",
        "upstream_identity",
    ),
    (
        "passkey_credential_id_key",
        "passkey.credential_id",
        "credential_id",
    ),
    (
        "change_version_pkey",
        "change_version.name",
        "change_version",
    ),
];

/// The field named by a unique violation, found by constraint name (Postgres) or by the
/// column in the message (SQLite, whose errors carry no constraint name).
fn conflict_field(db: &dyn DatabaseError) -> &'static str {
    let sqlite_column = db
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .and_then(|columns| columns.split(", ").next());
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(pg, lite, _)| db.constraint() == Some(*pg) || sqlite_column == Some(*lite))
        .map_or("unique", |(_, _, field)| *field)
}

/// True for errors that say "try again later" rather than "this request is wrong": the
/// connection broke, the server is shutting down or full, a lock could not be had in time.
fn is_transient(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        // SQLSTATE class 08 is connection exceptions; 57P01-03 are shutdowns and start-ups;
        // 53300 is too many connections; 40001 and 40P01 are serialization failures and
        // deadlocks, which succeed when retried; 57014 is a statement cancelled by
        // statement_timeout and 55P03 a lock not available: the database is too busy now.
        // 25006 is a write refused as read-only: the server is a standby, or a primary being
        // demoted, reached in the seconds before the proxy in front of the cluster routes to
        // the new primary (a failover).
        code.starts_with("08")
            || matches!(
                &*code,
                "57P01"
                    | "57P02"
                    | "57P03"
                    | "53300"
                    | "40001"
                    | "40P01"
                    | "57014"
                    | "55P03"
                    | "25006"
            )
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended result codes; the low byte is the primary code. SQLITE_BUSY
        // (5) and SQLITE_LOCKED (6) arrive only after the busy timeout has run out.
        code.parse::<i32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
    } else {
        false
    }
}

/// True for errors caused by a value the database cannot hold at all, whatever the request
/// meant: Postgres refuses NUL characters in text (22021) and over-long index entries (54000).
/// They come from client input, so they are the client's error, not the server's.
fn is_unstorable_value(db: &dyn DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
        && matches!(db.code().as_deref(), Some("22021" | "22P05" | "54000"))
}

/// A database error's message and code, without the detail that can quote row values.
fn describe(db: &dyn DatabaseError) -> String {
    match db.code() {
        Some(code) => format!("{} (code {code})", db.message()),
        None => db.message().to_owned(),
    }
}

/// Maps an sqlx error to the store's error. Messages never contain bound values: sqlx puts
/// none in its own messages, and `describe` leaves out Postgres' `DETAIL`, which can.
pub(crate) fn db_err(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            StoreError::Conflict(conflict_field(db.as_ref()))
        }
        sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
            StoreError::Unavailable(describe(db.as_ref()))
        }
        sqlx::Error::Database(db) if is_unstorable_value(db.as_ref()) => {
            StoreError::InvalidInput(describe(db.as_ref()))
        }
        sqlx::Error::Database(db) => StoreError::Database(describe(db.as_ref())),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        // A configuration error can quote the connection URL, password included.
        sqlx::Error::Configuration(_) => {
            StoreError::Database("invalid database connection settings".to_owned())
        }
        other => StoreError::Database(other.to_string()),
    }
}

pub(crate) fn migrate_err(error: sqlx::migrate::MigrateError) -> StoreError {
    match error {
        sqlx::migrate::MigrateError::Execute(e) => db_err(e),
        other => StoreError::Database(format!("migration failed: {other}")),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Database(format!("cannot serialize {what}: {:?}", e.classify())))
}

/// Parses a JSON column. The error names the position, not the content, because the content
/// can be personal data (user claims).
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what} is not valid: {:?} error at line {}, column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Postgres: a CTE named `relaxed` (one row) that turns `synchronous_commit` off for the
/// statement's own transaction; the statement selects from it, so it runs first. Used only
/// by writes whose loss in a Postgres crash or failover costs no more than repeating a step
/// or a few free attempts: a new session with its login event (the user logs in again),
/// throttle counters. Their commit waits neither for its WAL to reach the disk nor for a
/// synchronous standby; the WAL writer flushes it within `wal_writer_delay` (200 ms by
/// default), many commits to one flush. WAL order keeps such rows ahead of any later
/// synchronous commit, so a code issued in a session carries that session with it.
///
/// Never for what is acknowledged to a client as done: a code, a consent, a token. Those
/// commit synchronously (docs/deployment.md, "High availability").
macro_rules! relaxed_commit {
    () => {
        "relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)"
    };
}
pub(crate) use relaxed_commit;

/// Housekeeping's purge of `$table` (primary key `$key`): deletes at most `$2` rows for which
/// `$cond` holds. On Postgres the batch is chosen `FOR UPDATE SKIP LOCKED`, so that nodes
/// purging at once take disjoint batches and never wait on each other's row locks (no
/// deadlock, no row counted twice), and its rows are then deleted by primary key
/// (`= ANY(ARRAY(…))`): written `IN (…)`, with a batch size the generic plan cannot see, the
/// planner expected a tenth of the table and joined the batch to it by sequential scan
/// (bench/RESULTS-scale.md). SQLite has one writer at a time.
macro_rules! purge_batch {
    (postgres, $table:literal, $key:literal, $cond:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " = ANY(ARRAY(SELECT ",
            $key,
            " FROM ",
            $table,
            " WHERE ",
            $cond,
            " LIMIT $2 FOR UPDATE SKIP LOCKED))"
        )
    };
    (sqlite, $table:literal, $key:literal, $cond:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " IN (SELECT ",
            $key,
            " FROM ",
            $table,
            " WHERE ",
            $cond,
            " LIMIT $2)"
        )
    };
}
pub(crate) use purge_batch;

/// `$table`'s user exists and is not disabled.
macro_rules! active_user {
    ($table:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM app_user u WHERE u.sub = ",
            $table,
            ".user_sub AND NOT u.disabled)"
        )
    };
}
pub(crate) use active_user;

/// The family of the row being examined (`$table.grant_id`) exists and is not revoked.
macro_rules! live_grant {
    ($table:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM auth_grant g WHERE g.grant_id = ",
            $table,
            ".grant_id AND g.revoked_at IS NULL)"
        )
    };
}
pub(crate) use live_grant;
