//! The Postgres backend: the connection pool and its migrations. The statements live with
//! their concern (`clients.rs`, `refresh.rs`, …), which implements its trait for `PgStore`
//! and `SqliteStore` alike; what is Postgres' own there (one-statement CTEs, `FOR UPDATE
//! SKIP LOCKED`, relaxed commits) is marked where it occurs. This file must not grow queries.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::sql;
use super::{ConnectOptions, StoreError, StoreResult};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A store on a Postgres database, shared by any number of nodes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

impl PgStore {
    /// Applies the pending migrations of this dialect. Safe to run on several nodes at once: sqlx
    /// holds an advisory lock meanwhile.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(sql::migrate_err)
    }

    /// Connects to `url` and checks that one connection can be opened. Does not migrate.
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        // The parse error is not passed on: it can quote the URL, password included.
        let connect_options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::Database("the Postgres URL is not valid".to_owned()))?;
        let connect_options = with_statement_timeout(connect_options, options.acquire_timeout);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection when it goes back to the pool, and by default again
            // when it is taken out: with the statement itself, three round trips. The second
            // ping only tells something when the connection has sat idle (Postgres restarted,
            // a proxy dropped it), so it is kept for those alone.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(sql::db_err)?;
        Ok(Self { pool })
    }
}

/// A pooled connection idle at least this long is pinged before use; one used more recently
/// was pinged when it was released, at most this long ago.
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Bounds every statement by the same time a request may wait for a connection
/// (`LATCHKEY_DATABASE_TIMEOUT_MS`). Without it, a statement stuck behind a lock or on an
/// overloaded server holds its pooled connection for as long as that lasts: the pool runs dry
/// and every request behind it waits its full acquire timeout, the one stuck request for ever.
/// With it, Postgres cancels the statement and the request fails in bounded time.
///
/// It is sent as a startup parameter, so it holds from the first statement on and costs no
/// round trip. A `statement_timeout` the operator put in the URL (`?options=-c
/// statement_timeout=…`) is kept. Migrations run under it too: one that needs longer is run
/// with `latchkey migrate` and a larger `LATCHKEY_DATABASE_TIMEOUT_MS`.
fn with_statement_timeout(
    options: PgConnectOptions,
    timeout: std::time::Duration,
) -> PgConnectOptions {
    if options
        .get_options()
        .is_some_and(|o| o.contains("statement_timeout"))
    {
        return options;
    }
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128);
    options.options([("statement_timeout", format!("{millis}ms"))])
}
