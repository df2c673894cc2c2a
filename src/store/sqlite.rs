//! The SQLite backend: opening (and creating) the database file with the pragmas the store
//! relies on, and its migrations. The statements live with their concern (`clients.rs`,
//! `refresh.rs`, …), which implements its trait for `PgStore` and `SqliteStore` alike; what
//! is SQLite's own there (transactions opened with `BEGIN IMMEDIATE` where Postgres runs one
//! statement) is marked where it occurs. This file must not grow queries.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::sql;
use super::{ConnectOptions, StoreError, StoreResult};
use crate::files::{self, Privacy};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Writes are short, so running out of it means the database is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store in one SQLite file, for a single node.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

impl SqliteStore {
    /// Applies the pending migrations of this dialect.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(sql::migrate_err)
    }

    /// Opens the database at `path`, creating the file and its directory when missing.
    /// Does not migrate.
    ///
    /// The database holds hashed secrets, sealed signing keys and personal data, so it is
    /// readable by its owner only: a directory created here is 0700, and the file is created
    /// 0600 before SQLite opens it. SQLite gives its `-wal` and `-shm` files the database
    /// file's permission bits, so they follow. An existing file (or leftover `-wal`/`-shm`)
    /// that group or others can read is tightened to the owner's bits, with a warning: such
    /// a file was most likely created by an older Latchkey under a permissive umask.
    pub async fn connect(path: &Path, options: &ConnectOptions) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_private_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the database directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        make_private(path)?;
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

/// The database file and the files SQLite keeps beside it in WAL mode.
fn make_private(path: &Path) -> StoreResult<()> {
    let unavailable = |file: &Path, e: std::io::Error| {
        StoreError::Unavailable(format!(
            "cannot restrict the permissions of {}: {e}",
            file.display()
        ))
    };
    let mut companions = Vec::new();
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        companions.push(std::path::PathBuf::from(name));
    }
    let database = files::make_private(path).map_err(|e| unavailable(path, e))?;
    let mut outcomes = vec![(path.to_path_buf(), database)];
    for companion in companions {
        let outcome =
            files::tighten_if_present(&companion).map_err(|e| unavailable(&companion, e))?;
        outcomes.push((companion, outcome));
    }
    for (file, outcome) in outcomes {
        if let Privacy::Tightened { old_mode } = outcome {
            tracing::warn!(
                file = %file.display(),
                old_mode = format!("{old_mode:o}"),
                new_mode = format!("{:o}", old_mode & 0o7700),
                "the database file was readable by group or others; restricted it to its owner"
            );
        }
    }
    Ok(())
}
