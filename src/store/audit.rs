//! The audit log: security events, written on their own (`record_event`) or in the same
//! statement as what they record (`sessions.rs`, `interactions.rs` use `bind_event`), and
//! listed with filters, newest first. Housekeeping deletes events after `AUDIT_RETENTION`.
//!
//! Contract: `contract/audit.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{Backend, Bind, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// How long audit events are kept before housekeeping deletes them (90 days).
pub const AUDIT_RETENTION: i64 = 90 * 24 * 3600;

/// A security event in the audit log. `detail` is a JSON object; it never holds a secret,
/// password, token or code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEvent {
    /// Assigned by the store; ignored on insert.
    pub event_id: i64,
    pub occurred_at: i64,
    pub kind: String,
    pub user_sub: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// Which events to list: every set field must match. Newest first; `before` is an
/// `event_id` cursor (events with a smaller id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub user_sub: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events matching `filter`, newest first, at most `filter.limit`.
    async fn list_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

pub(super) const INSERT_EVENT: &str = "INSERT INTO audit_event \
     (occurred_at, kind, user_sub, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)";
/// The listing statement for the filters `filter` sets, one condition per set filter (and
/// `$n` numbered in that order), so that each combination has its own statement and plan:
/// a single statement with `($1 IS NULL OR kind = $1)` gets a generic plan on Postgres that
/// cannot use the `(kind, event_id)` or `(user_sub, event_id)` indexes, and at millions of
/// events a filtered page then reads the table backwards (bench/RESULTS-scale.md).
///
/// On Postgres the page's ids are chosen first, from the filter column's index alone, and the
/// rows fetched by id after. Asked for the rows directly, Postgres weighs walking the primary
/// key backwards and filtering against the `(kind, event_id)` index, reckons that a kind
/// shared by many events turns up soon enough either way, and walks the primary key: at
/// millions of recent events of other kinds that reads them all (30 ms instead of 0.4 ms for
/// a page of `login_failed` in a table of two million). The page size is written in, not
/// bound (`sql::paged`).
fn list_events_sql(filter: &AuditFilter, backend: Backend) -> String {
    const COLUMNS: &str = "SELECT event_id, occurred_at, kind, user_sub, client_id, ip, detail \
         FROM audit_event";
    let mut page = String::from("WHERE TRUE");
    let mut n = 0;
    let conditions = [
        (filter.kind.is_some(), "kind ="),
        (filter.user_sub.is_some(), "user_sub ="),
        (filter.client_id.is_some(), "client_id ="),
        (filter.since.is_some(), "occurred_at >="),
        (filter.before.is_some(), "event_id <"),
    ];
    for (set, condition) in conditions {
        if set {
            n += 1;
            page.push_str(&format!(" AND {condition} ${n}"));
        }
    }
    page = super::sql::paged(&format!("{page} ORDER BY event_id DESC"), filter.limit);
    match backend {
        Backend::Postgres => format!(
            "{COLUMNS} WHERE event_id = ANY(ARRAY(SELECT event_id FROM audit_event {page})) \
             ORDER BY event_id DESC"
        ),
        Backend::Sqlite => format!("{COLUMNS} {page}"),
    }
}

/// Binds an audit event's six columns (all but its id), in `INSERT_EVENT` order.
pub(super) fn bind_event<'q, Q: Bind<'q>>(query: Q, event: &'q AuditEvent) -> Q {
    query
        .arg(event.occurred_at)
        .arg(&event.kind)
        .arg(&event.user_sub)
        .arg(&event.client_id)
        .arg(&event.ip)
        .arg(&event.detail)
}

fn event_from_row(row: &impl SqlRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        event_id: row.col("event_id")?,
        occurred_at: row.col("occurred_at")?,
        kind: row.col("kind")?,
        user_sub: row.col("user_sub")?,
        client_id: row.col("client_id")?,
        ip: row.col("ip")?,
        detail: row.col("detail")?,
    })
}

macro_rules! impl_audit_store {
    ($store:ty, $backend:expr) => {
        #[async_trait]
        impl AuditStore for $store {
            async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
                bind_event(::sqlx::query(INSERT_EVENT), event)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn list_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
                let sql = list_events_sql(filter, $backend);
                // Bound in the order list_events_sql numbers them.
                let mut query = ::sqlx::query(&sql);
                if let Some(kind) = &filter.kind {
                    query = query.bind(kind);
                }
                if let Some(sub) = &filter.user_sub {
                    query = query.bind(sub);
                }
                if let Some(client_id) = &filter.client_id {
                    query = query.bind(client_id);
                }
                if let Some(since) = filter.since {
                    query = query.bind(since);
                }
                if let Some(before) = filter.before {
                    query = query.bind(before);
                }
                query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(event_from_row)
                    .collect()
            }
        }
    };
}

impl_audit_store!(PgStore, Backend::Postgres);
impl_audit_store!(SqliteStore, Backend::Sqlite);
