//! Fresh, empty databases for tests, public so that the integration tests in `tests/` can use
//! them too. Each call makes a new database, so tests never see each other's rows. Compiled
//! only for the library's own tests and with the `testing` feature, which the integration
//! tests enable (Cargo.toml); the shipped library does not carry it.
//!
//! Postgres is not optional: when it cannot be reached these helpers panic with a message
//! saying how to point them at one, so a missing database fails the run instead of silently
//! skipping half of it. Old test databases are left behind (they are cheap, and dropping
//! anything we did not create this run would be a hazard on a shared server).

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{ConnectOptions, Store};

/// The variable naming the Postgres server (and a database on it to connect to) under which
/// test databases are created.
pub const POSTGRES_URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Pool settings for tests: enough connections for the concurrency tests, and a timeout long
/// enough that a slow CI machine does not turn waiting into `Unavailable`.
pub fn connect_options() -> ConnectOptions {
    ConnectOptions {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
    }
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

/// Creates an empty database named `latchkey_test_<random hex>` on the server named by
/// `LATCHKEY_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
/// returns its URL. Panics when the server cannot be reached.
pub async fn fresh_postgres_url() -> String {
    let admin_url =
        std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let unreachable = |reason: String| -> ! {
        panic!(
            "cannot reach the test Postgres at {}: {reason}. These tests need Postgres: \
             start one there (trust auth, user postgres) or set {POSTGRES_URL_VAR} to the URL \
             of a server where the user may CREATE DATABASE.",
            redacted(&admin_url)
        )
    };
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect(&admin_url),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => unreachable(e.to_string()),
        Err(_) => unreachable("no answer within 10 seconds".to_owned()),
    };
    let name = format!("latchkey_test_{}", random_hex());
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a valid URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.into()
}

/// A path for a new SQLite database, in a new directory under the system's temporary
/// directory that does not exist yet (the store creates it).
pub fn fresh_sqlite_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("latchkey_test_{}", random_hex()))
        .join("latchkey.db")
}

/// A migrated store on a fresh Postgres database.
pub async fn postgres_store() -> Arc<dyn Store> {
    let url = fresh_postgres_url().await;
    let store = PgStore::connect(&url, &connect_options())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the fresh test database: {e}"));
    store
        .migrate()
        .await
        .expect("migrating the Postgres test database");
    Arc::new(store)
}

/// A migrated store on a fresh SQLite file.
pub async fn sqlite_store() -> Arc<dyn Store> {
    let store = SqliteStore::connect(&fresh_sqlite_path(), &connect_options())
        .await
        .expect("opening the SQLite test database");
    store
        .migrate()
        .await
        .expect("migrating the SQLite test database");
    Arc::new(store)
}
