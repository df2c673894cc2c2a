//! The outbox: work that any node carries out later and that must survive a crash (back-channel
//! logout notifications today, mail later). An item has a `kind`, a `subject` it is listed
//! under (the client id, for logout notifications) and a `payload` whose shape its kind
//! defines. A node claims a due item by pushing `next_attempt_at` ahead by a lease, in one
//! statement: on Postgres its inner `SELECT … FOR UPDATE SKIP LOCKED` lets racing nodes take
//! different items; on SQLite the one writer makes the `UPDATE … WHERE outbox_id = (SELECT …)
//! RETURNING` atomic. A node that dies mid-delivery leaves the item pending: when the lease runs
//! out any node claims it again. An attempt's result is recorded only while the item is still
//! at that attempt, so a node that was overtaken changes nothing.
//!
//! Contract: `contract/outbox.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{SqlRow, db_err};
use super::sqlite::SqliteStore;

/// One item of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub outbox_id: i64,
    pub kind: String,
    pub subject: String,
    pub payload: String,
    /// `pending` (waiting, or claimed by a node), `delivered`, or `failed` (given up).
    pub status: String,
    /// Attempts started so far (each claim is one).
    pub attempts: i64,
    pub created_at: i64,
    /// When a pending item is due; while it is claimed, when the claim's lease runs out.
    pub next_attempt_at: i64,
    /// No attempt starts after this; an item that has not been delivered by then fails.
    pub give_up_at: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// Failed with `error`; tried again at `retry_at`, or never again when `None`.
    Failed {
        error: String,
        retry_at: Option<i64>,
    },
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Adds a pending item, due at once; returns its id.
    async fn enqueue(
        &self,
        kind: &str,
        subject: &str,
        payload: &str,
        now: i64,
        give_up_at: i64,
    ) -> StoreResult<i64>;
    /// Claims the pending item of `kind` that has been due longest (at `now`), if any: one more
    /// attempt, and due again only at `now + lease`. Of racing claims on any number of nodes,
    /// each gets a different item.
    async fn claim_due(&self, kind: &str, now: i64, lease: i64) -> StoreResult<Option<OutboxItem>>;
    /// Records how attempt `attempt` of an item ended; false (and nothing changed) when the
    /// item is no longer pending at that attempt (another node claimed it after the lease).
    async fn finish_attempt(
        &self,
        outbox_id: i64,
        attempt: i64,
        result: &AttemptResult,
        now: i64,
    ) -> StoreResult<bool>;
    /// The newest `limit` items of `kind` listed under `subject`, newest first.
    async fn list_outbox(
        &self,
        kind: &str,
        subject: &str,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Deletes at most `batch` items that finished (delivered or failed) by `before`.
    async fn purge_outbox(&self, before: i64, batch: u32) -> StoreResult<u64>;
}

macro_rules! outbox_columns {
    () => {
        "outbox_id, kind, subject, payload, status, attempts, created_at, next_attempt_at, \
         give_up_at, last_error, finished_at"
    };
}

const ENQUEUE: &str = "INSERT INTO outbox (kind, subject, payload, status, attempts, \
     created_at, next_attempt_at, give_up_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $5) \
     RETURNING outbox_id";

/// `$lock` locks the chosen row on Postgres and skips rows other claims hold.
macro_rules! claim_due {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2 + $3 \
             WHERE outbox_id = (SELECT outbox_id FROM outbox WHERE kind = $1 \
             AND status = 'pending' AND next_attempt_at <= $2 AND give_up_at > $2 \
             ORDER BY next_attempt_at, outbox_id LIMIT 1",
            $lock,
            ") RETURNING ",
            outbox_columns!()
        )
    };
}

/// Items whose time ran out unclaimed (a pending item past `give_up_at`) fail here, so the
/// status never shows them pending for ever.
const EXPIRE: &str = "UPDATE outbox SET status = 'failed', finished_at = $2, \
     last_error = COALESCE(last_error, 'not delivered in time') \
     WHERE kind = $1 AND status = 'pending' AND give_up_at <= $2 AND next_attempt_at <= $2";
const DELIVERED: &str = "UPDATE outbox SET status = 'delivered', finished_at = $3, \
     last_error = NULL WHERE outbox_id = $1 AND attempts = $2 AND status = 'pending'";
const RETRY: &str = "UPDATE outbox SET next_attempt_at = $3, last_error = $4 \
     WHERE outbox_id = $1 AND attempts = $2 AND status = 'pending'";
const GIVE_UP: &str = "UPDATE outbox SET status = 'failed', finished_at = $3, last_error = $4 \
     WHERE outbox_id = $1 AND attempts = $2 AND status = 'pending'";
const LIST: &str = concat!(
    "SELECT ",
    outbox_columns!(),
    " FROM outbox WHERE kind = $1 AND subject = $2 ORDER BY outbox_id DESC LIMIT $3"
);

fn item_from_row(row: &impl SqlRow) -> StoreResult<OutboxItem> {
    Ok(OutboxItem {
        outbox_id: row.col("outbox_id")?,
        kind: row.col("kind")?,
        subject: row.col("subject")?,
        payload: row.col("payload")?,
        status: row.col("status")?,
        attempts: row.col("attempts")?,
        created_at: row.col("created_at")?,
        next_attempt_at: row.col("next_attempt_at")?,
        give_up_at: row.col("give_up_at")?,
        last_error: row.col("last_error")?,
        finished_at: row.col("finished_at")?,
    })
}

macro_rules! impl_outbox_store {
    ($store:ty, $lock:literal, $dialect:ident) => {
        #[async_trait]
        impl OutboxStore for $store {
            async fn enqueue(
                &self,
                kind: &str,
                subject: &str,
                payload: &str,
                now: i64,
                give_up_at: i64,
            ) -> StoreResult<i64> {
                let row = ::sqlx::query(ENQUEUE)
                    .bind(kind)
                    .bind(subject)
                    .bind(payload)
                    .bind(now)
                    .bind(give_up_at)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.col("outbox_id")
            }

            async fn claim_due(
                &self,
                kind: &str,
                now: i64,
                lease: i64,
            ) -> StoreResult<Option<OutboxItem>> {
                ::sqlx::query(EXPIRE)
                    .bind(kind)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                ::sqlx::query(claim_due!($lock))
                    .bind(kind)
                    .bind(now)
                    .bind(lease)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(item_from_row)
                    .transpose()
            }

            async fn finish_attempt(
                &self,
                outbox_id: i64,
                attempt: i64,
                result: &AttemptResult,
                now: i64,
            ) -> StoreResult<bool> {
                let query = match result {
                    AttemptResult::Delivered => ::sqlx::query(DELIVERED)
                        .bind(outbox_id)
                        .bind(attempt)
                        .bind(now),
                    AttemptResult::Failed {
                        error,
                        retry_at: Some(at),
                    } => ::sqlx::query(RETRY)
                        .bind(outbox_id)
                        .bind(attempt)
                        .bind(*at)
                        .bind(error.as_str()),
                    AttemptResult::Failed {
                        error,
                        retry_at: None,
                    } => ::sqlx::query(GIVE_UP)
                        .bind(outbox_id)
                        .bind(attempt)
                        .bind(now)
                        .bind(error.as_str()),
                };
                let done = query.execute(&self.pool).await.map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_outbox(
                &self,
                kind: &str,
                subject: &str,
                limit: u32,
            ) -> StoreResult<Vec<OutboxItem>> {
                ::sqlx::query(LIST)
                    .bind(kind)
                    .bind(subject)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(item_from_row)
                    .collect()
            }

            async fn purge_outbox(&self, before: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(super::sql::purge_batch!(
                    $dialect,
                    "outbox",
                    "outbox_id",
                    "status <> 'pending' AND finished_at <= $1"
                ))
                .bind(before)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

impl_outbox_store!(PgStore, " FOR UPDATE SKIP LOCKED", postgres);
impl_outbox_store!(SqliteStore, "", sqlite);
