//! The SQLite backend: opening (and creating) the database file with the pragmas the store
//! relies on, and the dialect-specific settings handed to the shared SQL implementation in
//! `sql`. Every query lives in `sql`; this file must not grow its own.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::sql::{self, impl_sql_store};
use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Writes are short, so running out of it means the database is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store in one SQLite file, for a single node.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its directory when missing.
    /// Does not migrate.
    pub async fn connect(path: &Path, options: &ConnectOptions) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the database directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        // WAL lets readers work while a writer commits; the busy timeout makes writers queue
        // for the single write lock instead of failing at once.
        let connect_options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await
            .map_err(sql::db_err)?;
        Ok(Self { pool })
    }
}

impl_sql_store! {
    store: SqliteStore,
    database: sqlx::Sqlite,
    // A write transaction takes the write lock when it starts. A deferred one would take a
    // read lock first and could not upgrade it while another connection writes: SQLite
    // answers that with SQLITE_BUSY at once, without waiting for the busy timeout.
    begin_write: "BEGIN IMMEDIATE",
    // SQLite has one writer at a time, so concurrent purges cannot deadlock.
    purge_lock: "",
    // SQLite has no data-modifying CTEs; its transactions cost no round trips anyway.
    one_statement_code_writes: false,
    migrator: MIGRATOR,
}
