//! Device authorization grants (RFC 8628), `DeviceStore`: created by the device authorization
//! endpoint, approved or denied by a person on `/device`, polled by the device at the token
//! endpoint. Every change of state is one conditional write or a transaction that locks the
//! row first, so that of racing polls at most one takes an approved grant, on any number of
//! nodes.
//!
//! Contract: `contract/devices.rs`.

use async_trait::async_trait;

use super::{AuditEvent, StoreResult};

/// A device authorization as stored. `user_code` is in its normal form (eight letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_code_hash: Vec<u8>,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub interval_secs: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Who approved a device, taken from their session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceApproval {
    pub user_sub: String,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
}

/// What a device's poll found (RFC 8628 §3.5).
// One value per poll, matched at once by the caller: boxing the approved records would cost
// an allocation and buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Approved: the grant is now taken (single use); issue the tokens.
    Approved {
        record: DeviceRecord,
        approval: DeviceApproval,
    },
    Pending,
    /// Polled sooner than the interval allows; the interval grew by 5 s.
    SlowDown,
    Denied,
    Expired,
    /// Unknown, another client's, or already taken.
    Invalid,
}

/// The person's answer on `/device`, written only while the session it was asked in is live
/// and its user enabled.
#[derive(Debug, Clone, Copy)]
pub struct DeviceAnswer<'a> {
    pub user_code: &'a str,
    pub session_hash: &'a [u8],
    pub session_sid: &'a str,
    pub allowed: bool,
    pub now: i64,
    /// Recorded with an approval (its `user_sub` is the session's).
    pub event: &'a AuditEvent,
}

/// What `answer_device` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAnswered {
    /// Answered by the session's user.
    Done { user_sub: String },
    /// No live session of an enabled user, or not the one the question was asked in.
    NoSession,
    /// The authorization is no longer pending (answered, taken, or expired).
    NotPending,
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Fails with `Conflict` when the user code is taken (the caller draws another).
    async fn insert_device(&self, record: &DeviceRecord) -> StoreResult<()>;
    /// The pending authorization a user code names, when it has not expired at `now`.
    async fn pending_device(&self, user_code: &str, now: i64) -> StoreResult<Option<DeviceRecord>>;
    /// Approves or denies a pending authorization, in one transaction that checks the session.
    async fn answer_device(&self, answer: &DeviceAnswer<'_>) -> StoreResult<DeviceAnswered>;
    /// A poll by `client_id` at `now`: decides and records it in one transaction.
    async fn poll_device(
        &self,
        device_code_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<Poll>;
    /// Deletes at most `batch` authorizations that expired by `now`; returns how many.
    async fn purge_devices(&self, now: i64, batch: u32) -> StoreResult<u64>;
}

const INSERT: &str = "INSERT INTO device_authorization (device_code_hash, user_code, client_id, \
     scope, resource, interval_secs, created_at, expires_at, status) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')";
const PENDING: &str = "SELECT device_code_hash, user_code, client_id, scope, resource, \
     interval_secs, created_at, expires_at FROM device_authorization \
     WHERE user_code = $1 AND status = 'pending' AND expires_at > $2";
/// The session that answers: live at `$2`, the one asked (`$3`), its user enabled.
const ANSWERING_SESSION: &str = "SELECT s.user_sub, s.sid, s.auth_time, s.amr \
     FROM session s JOIN app_user u ON u.sub = s.user_sub \
     WHERE s.session_hash = $1 AND s.expires_at > $2 AND s.sid = $3 AND NOT u.disabled";
const APPROVE: &str = "UPDATE device_authorization SET status = 'approved', user_sub = $2, \
     sid = $3, auth_time = $4, amr = $5 \
     WHERE user_code = $1 AND status = 'pending' AND expires_at > $6";
const DENY: &str = "UPDATE device_authorization SET status = 'denied' \
     WHERE user_code = $1 AND status = 'pending' AND expires_at > $2";
const RECORD_EVENT: &str = "INSERT INTO audit_event \
     (occurred_at, kind, user_sub, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)";
const POLLED: &str = "UPDATE device_authorization SET last_polled_at = $2, \
     interval_secs = $3, status = $4 WHERE device_code_hash = $1";

/// The rules of a poll, given the row's state: what to answer, and what to write back.
fn decide_poll(
    status: &str,
    last_polled_at: Option<i64>,
    interval: i64,
    expires_at: i64,
    now: i64,
) -> (PollKind, i64, &'static str) {
    if expires_at <= now {
        return (PollKind::Expired, interval, "expired");
    }
    if status == "consumed" {
        // Taken: the device code is dead, however often it comes back.
        return (PollKind::Invalid, interval, "consumed");
    }
    if last_polled_at.is_some_and(|last| now - last < interval) {
        // RFC 8628 §3.5: slow_down, and the interval grows by 5 seconds for this and every
        // later request.
        let keep = match status {
            "approved" => "approved",
            "denied" => "denied",
            _ => "pending",
        };
        return (PollKind::SlowDown, interval + 5, keep);
    }
    match status {
        "approved" => (PollKind::Approved, interval, "consumed"),
        "denied" => (PollKind::Denied, interval, "denied"),
        _ => (PollKind::Pending, interval, "pending"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollKind {
    Approved,
    Pending,
    SlowDown,
    Denied,
    Expired,
    Invalid,
}

macro_rules! impl_device_store {
    ($store:ty, $begin:literal, $row_lock:literal, $dialect:ident) => {
        #[async_trait]
        impl DeviceStore for $store {
            async fn insert_device(&self, record: &DeviceRecord) -> StoreResult<()> {
                ::sqlx::query(INSERT)
                    .bind(&record.device_code_hash)
                    .bind(&record.user_code)
                    .bind(&record.client_id)
                    .bind(&record.scope)
                    .bind(&record.resource)
                    .bind(record.interval_secs)
                    .bind(record.created_at)
                    .bind(record.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(())
            }

            async fn pending_device(
                &self,
                user_code: &str,
                now: i64,
            ) -> StoreResult<Option<DeviceRecord>> {
                let row = ::sqlx::query(PENDING)
                    .bind(user_code)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                row.as_ref().map(record_from_row).transpose()
            }

            async fn answer_device(
                &self,
                answer: &DeviceAnswer<'_>,
            ) -> StoreResult<DeviceAnswered> {
                use ::sqlx::Row as _;
                let mut tx = self
                    .pool
                    .begin_with($begin)
                    .await
                    .map_err(super::sql::db_err)?;
                let session = ::sqlx::query(ANSWERING_SESSION)
                    .bind(answer.session_hash)
                    .bind(answer.now)
                    .bind(answer.session_sid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(super::sql::db_err)?;
                let Some(session) = session else {
                    return Ok(DeviceAnswered::NoSession);
                };
                let get = |name: &str| -> StoreResult<String> {
                    session.try_get(name).map_err(super::sql::db_err)
                };
                let user_sub = get("user_sub")?;
                let done = if answer.allowed {
                    let auth_time: i64 =
                        session.try_get("auth_time").map_err(super::sql::db_err)?;
                    ::sqlx::query(APPROVE)
                        .bind(answer.user_code)
                        .bind(&user_sub)
                        .bind(get("sid")?)
                        .bind(auth_time)
                        .bind(get("amr")?)
                        .bind(answer.now)
                        .execute(&mut *tx)
                        .await
                        .map_err(super::sql::db_err)?
                } else {
                    ::sqlx::query(DENY)
                        .bind(answer.user_code)
                        .bind(answer.now)
                        .execute(&mut *tx)
                        .await
                        .map_err(super::sql::db_err)?
                };
                if done.rows_affected() != 1 {
                    return Ok(DeviceAnswered::NotPending);
                }
                if answer.allowed {
                    let e = answer.event;
                    ::sqlx::query(RECORD_EVENT)
                        .bind(e.occurred_at)
                        .bind(&e.kind)
                        .bind(&user_sub)
                        .bind(&e.client_id)
                        .bind(&e.ip)
                        .bind(&e.detail)
                        .execute(&mut *tx)
                        .await
                        .map_err(super::sql::db_err)?;
                }
                tx.commit().await.map_err(super::sql::db_err)?;
                Ok(DeviceAnswered::Done { user_sub })
            }

            async fn poll_device(
                &self,
                device_code_hash: &[u8],
                client_id: &str,
                now: i64,
            ) -> StoreResult<Poll> {
                use ::sqlx::Row as _;
                let mut tx = self
                    .pool
                    .begin_with($begin)
                    .await
                    .map_err(super::sql::db_err)?;
                let row = ::sqlx::query(concat!(
                    "SELECT device_code_hash, user_code, client_id, scope, resource, \
                     interval_secs, created_at, expires_at, status, user_sub, sid, auth_time, \
                     amr, last_polled_at FROM device_authorization WHERE device_code_hash = $1",
                    $row_lock
                ))
                .bind(device_code_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(super::sql::db_err)?;
                let Some(row) = row else {
                    return Ok(Poll::Invalid);
                };
                let record = record_from_row(&row)?;
                if record.client_id != client_id {
                    return Ok(Poll::Invalid);
                }
                let status: String = row.try_get("status").map_err(super::sql::db_err)?;
                let last: Option<i64> =
                    row.try_get("last_polled_at").map_err(super::sql::db_err)?;
                let (kind, interval, new_status) =
                    decide_poll(&status, last, record.interval_secs, record.expires_at, now);
                if kind != PollKind::Expired {
                    ::sqlx::query(POLLED)
                        .bind(device_code_hash)
                        .bind(now)
                        .bind(interval)
                        .bind(new_status)
                        .execute(&mut *tx)
                        .await
                        .map_err(super::sql::db_err)?;
                }
                let approval = if kind == PollKind::Approved {
                    Some(DeviceApproval {
                        user_sub: row.try_get("user_sub").map_err(super::sql::db_err)?,
                        sid: row.try_get("sid").map_err(super::sql::db_err)?,
                        auth_time: row.try_get("auth_time").map_err(super::sql::db_err)?,
                        amr: row.try_get("amr").map_err(super::sql::db_err)?,
                    })
                } else {
                    None
                };
                tx.commit().await.map_err(super::sql::db_err)?;
                Ok(match (kind, approval) {
                    (PollKind::Approved, Some(approval)) => Poll::Approved { record, approval },
                    (PollKind::Pending, _) => Poll::Pending,
                    (PollKind::SlowDown, _) => Poll::SlowDown,
                    (PollKind::Denied, _) => Poll::Denied,
                    (PollKind::Expired, _) => Poll::Expired,
                    _ => Poll::Invalid,
                })
            }

            async fn purge_devices(&self, now: i64, batch: u32) -> StoreResult<u64> {
                let done = ::sqlx::query(super::sql::purge_batch!(
                    $dialect,
                    "device_authorization",
                    "device_code_hash",
                    "expires_at <= $1"
                ))
                    .bind(now)
                    .bind(i64::from(batch))
                    .execute(&self.pool)
                    .await
                    .map_err(super::sql::db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

fn record_from_row<R>(row: &R) -> StoreResult<DeviceRecord>
where
    R: ::sqlx::Row,
    for<'r> &'r str: ::sqlx::ColumnIndex<R>,
    for<'r> Vec<u8>: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
    for<'r> String: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
    for<'r> Option<String>: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
    for<'r> i64: ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
{
    let db = super::sql::db_err;
    Ok(DeviceRecord {
        device_code_hash: row.try_get("device_code_hash").map_err(db)?,
        user_code: row.try_get("user_code").map_err(db)?,
        client_id: row.try_get("client_id").map_err(db)?,
        scope: row.try_get("scope").map_err(db)?,
        resource: row.try_get("resource").map_err(db)?,
        interval_secs: row.try_get("interval_secs").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        expires_at: row.try_get("expires_at").map_err(db)?,
    })
}

impl_device_store!(super::postgres::PgStore, "BEGIN", " FOR UPDATE", postgres);
impl_device_store!(super::sqlite::SqliteStore, "BEGIN IMMEDIATE", "", sqlite);
