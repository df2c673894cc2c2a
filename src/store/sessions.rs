//! Browser sessions after login, stored by the hash of the cookie's random token. A login's
//! session is written with its audit event, all or nothing: on Postgres in one statement
//! with a relaxed commit (`sql::relaxed_commit!`), on SQLite in one transaction.
//!
//! The clients that got tokens in a session and asked to hear of its end (back-channel
//! logout) are recorded beside it (`session_client`); ending a session queues their
//! notifications in the outbox (`outbox.rs`) in the same transaction that deletes it, so a
//! session never ends without them. Every way a session ends (sign-out, a new login in the
//! same browser, the account page's "sign out" and "sign out everywhere else", a password
//! change, an operator) runs one `end_sessions!` set of statements, so each queues its
//! notifications the same way.
//!
//! Each session also records what the account page lists (`device`, `ip`, `last_used_at`);
//! `touch_session` moves its last use forward, and only when it is stale, so reading a session
//! rarely writes.
//!
//! Contract: `contract/sessions.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::audit::{AuditEvent, INSERT_EVENT, bind_event};
use super::postgres::PgStore;
use super::sql::{self, Backend, Bind, Dialect, SqlRow, db_err, relaxed_commit};
use super::sqlite::SqliteStore;

/// A browser session after login. The cookie holds a random token; only its hash is stored.
/// `sid` is the public session identifier put in ID tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionRecord {
    pub session_hash: Vec<u8>,
    pub sid: String,
    pub user_sub: String,
    pub auth_time: i64,
    /// Authentication methods references (RFC 8176), space-separated, e.g. `pwd`.
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// A short summary of the browser that started the session (`accounts::user_agent`), or
    /// "" when it said nothing recognisable.
    pub device: String,
    /// The client address the session was started from.
    pub ip: Option<String>,
    /// When the session was last used, to the minute (`accounts::session::note_use`).
    pub last_used_at: i64,
}

/// A live session with what the pages ask about its user and one client, read at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub session: SessionRecord,
    pub username: String,
    pub user_disabled: bool,
    /// The scope the user has granted the client, if any.
    pub consented_scope: Option<String>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session and the audit event of the login that started it, all or nothing: the
    /// log shows a login exactly when it led to a session.
    async fn insert_session_with_event(
        &self,
        session: &SessionRecord,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// The session, when it exists and `expires_at > now`.
    async fn get_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRecord>>;
    /// The live session with its user (who must still exist) and the scope that user granted
    /// `client_id`: one read.
    async fn get_session_view(
        &self,
        session_hash: &[u8],
        now: i64,
        client_id: &str,
    ) -> StoreResult<Option<SessionView>>;
    /// Ends a session, queueing a back-channel logout notification (`LOGOUT_KIND`) for every
    /// client recorded in it, in the same transaction.
    async fn delete_session(&self, session_hash: &[u8], now: i64) -> StoreResult<()>;
    /// Ends every session of a user (disable, delete, password change, an operator), with
    /// their notifications as `delete_session`; returns how many sessions ended.
    async fn delete_sessions_for_user(&self, sub: &str, now: i64) -> StoreResult<u64>;
    /// Ends the session `sid` if it belongs to `sub` (the account page's "sign out" of one
    /// session), with its notifications as `delete_session`; false when `sub` has no such
    /// session, whether or not another user has.
    async fn end_session_of_user(&self, sub: &str, sid: &str, now: i64) -> StoreResult<bool>;
    /// Ends every session of `sub` except the one stored as `keep` ("sign out everywhere
    /// else"), with their notifications as `delete_session`; returns how many ended.
    async fn end_other_sessions_of_user(
        &self,
        sub: &str,
        keep: &[u8],
        now: i64,
    ) -> StoreResult<u64>;
    /// The live sessions of `sub`, most recently used first, at most `limit`.
    async fn list_sessions_of_user(
        &self,
        sub: &str,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Records that the session was used at `now`, if its recorded last use is before
    /// `stale_before`: one conditional write, so racing requests on any number of nodes write
    /// it at most once. A lost write costs only the accuracy of the account page (committed
    /// relaxed on Postgres).
    async fn touch_session(
        &self,
        session_hash: &[u8],
        now: i64,
        stale_before: i64,
    ) -> StoreResult<()>;
    /// Records that `client_id` got tokens in session `sid` and wants to hear of its end,
    /// until `expires_at` (idempotent).
    async fn record_session_client(
        &self,
        sid: &str,
        client_id: &str,
        user_sub: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
}

/// The outbox kind of back-channel logout notifications; their subject is the client id and
/// their payload `{"sid": …, "sub": …}`.
pub const LOGOUT_KIND: &str = "backchannel_logout";
/// How long a notification is retried (OpenID Connect Back-Channel Logout leaves it to the
/// OP; a day outlasts an RP's usual outage).
pub const LOGOUT_RETRY_FOR: i64 = 24 * 3600;

macro_rules! session_columns {
    () => {
        "session_hash, sid, user_sub, auth_time, amr, created_at, expires_at, device, ip, \
         last_used_at"
    };
}

const INSERT_SESSION: &str = concat!(
    "INSERT INTO session (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
/// Postgres: a session and the audit event of the login that started it, in one
/// statement. `$1`..`$10` the session, `$11`..`$16` the event (`bind_event`).
const INSERT_SESSION_WITH_EVENT: &str = concat!(
    "WITH ",
    relaxed_commit!(),
    ", logged AS (INSERT INTO audit_event \
     (occurred_at, kind, user_sub, client_id, ip, detail) \
     SELECT $11, $12, $13, $14, $15, $16 FROM relaxed) INSERT INTO session (",
    session_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM relaxed"
);
const GET_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM session WHERE session_hash = $1 AND expires_at > $2"
);
const LIST_SESSIONS_OF_USER: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM session WHERE user_sub = $1 AND expires_at > $2 \
     ORDER BY last_used_at DESC, created_at DESC, sid LIMIT $3"
);
/// Postgres: the last use, committed relaxed (`sql::relaxed_commit!`) like the session's
/// insert: losing one costs a minute of accuracy on the account page, never access.
const TOUCH_SESSION_PG: &str = concat!(
    "WITH ",
    relaxed_commit!(),
    " UPDATE session SET last_used_at = $2 FROM relaxed \
     WHERE session_hash = $1 AND last_used_at < $3"
);
const TOUCH_SESSION_SQLITE: &str =
    "UPDATE session SET last_used_at = $2 WHERE session_hash = $1 AND last_used_at < $3";
const RECORD_SESSION_CLIENT: &str = "INSERT INTO session_client \
     (sid, client_id, user_sub, expires_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (sid, client_id) DO NOTHING";

/// The statements that end the sessions `$which` picks (by the values of a `Which`, `$1`
/// on): queue a logout notification (due at `$now`, the placeholder after them, which only
/// this first statement binds) for each client recorded in them, forget those records, delete
/// the sessions. `$payload` is the dialect's JSON object of `sc.sid` and `sc.user_sub`.
macro_rules! end_sessions {
    (sqlite, $which:literal, $now:literal) => {
        &[
            concat!(
                "INSERT INTO outbox (kind, subject, payload, status, attempts, created_at, \
                 next_attempt_at, give_up_at) SELECT 'backchannel_logout', sc.client_id, \
                 json_object('sid', sc.sid, 'sub', sc.user_sub), 'pending', 0, ",
                $now,
                ", ",
                $now,
                ", ",
                $now,
                " + 86400 FROM session_client sc \
                 WHERE sc.sid IN (SELECT sid FROM session WHERE ",
                $which,
                ")"
            ),
            concat!(
                "DELETE FROM session_client WHERE sid IN (SELECT sid FROM session WHERE ",
                $which,
                ")"
            ),
            concat!("DELETE FROM session WHERE ", $which),
        ]
    };
    // Postgres: one statement, one round trip. A racing end of the same sessions waits for
    // this one's row locks and then finds the clients' rows gone: each notification is queued
    // once.
    (postgres, $which:literal, $now:literal) => {
        &[concat!(
            "WITH dropped AS (DELETE FROM session_client WHERE sid IN \
             (SELECT sid FROM session WHERE ",
            $which,
            ") RETURNING client_id, sid, user_sub), \
             queued AS (INSERT INTO outbox (kind, subject, payload, status, attempts, \
             created_at, next_attempt_at, give_up_at) SELECT 'backchannel_logout', \
             d.client_id, json_build_object('sid', d.sid, 'sub', d.user_sub)::text, \
             'pending', 0, ",
            $now,
            ", ",
            $now,
            ", ",
            $now,
            " + 86400 FROM dropped d) DELETE FROM session WHERE ",
            $which
        )]
    };
}

/// Which sessions a set of `end_sessions!` statements ends, with the values its `$which`
/// binds (`$1`, `$2`), and the statements for each dialect.
#[derive(Clone, Copy)]
pub(super) enum Which<'a> {
    /// The session stored under this hash.
    Hash(&'a [u8]),
    /// Every session of a user.
    User(&'a str),
    /// The session `sid`, only if it belongs to the user.
    UserSid(&'a str, &'a str),
    /// Every session of a user but the one stored under this hash.
    UserExcept(&'a str, &'a [u8]),
}

impl<'a> Which<'a> {
    fn statements(self, backend: Backend) -> &'static [&'static str] {
        macro_rules! pick {
            ($which:literal, $now:literal) => {
                match backend {
                    Backend::Postgres => end_sessions!(postgres, $which, $now),
                    Backend::Sqlite => end_sessions!(sqlite, $which, $now),
                }
            };
        }
        match self {
            Which::Hash(_) => pick!("session_hash = $1", "$2"),
            Which::User(_) => pick!("user_sub = $1", "$2"),
            Which::UserSid(..) => pick!("user_sub = $1 AND sid = $2", "$3"),
            Which::UserExcept(..) => pick!("user_sub = $1 AND session_hash <> $2", "$3"),
        }
    }

    fn bind<'q, Q: Bind<'q>>(self, query: Q) -> Q
    where
        'a: 'q,
    {
        match self {
            Which::Hash(hash) => query.arg(hash),
            Which::User(sub) => query.arg(sub),
            Which::UserSid(sub, sid) => query.arg(sub).arg(sid),
            Which::UserExcept(sub, hash) => query.arg(sub).arg(hash),
        }
    }
}

// A session with its user and that user's consent for one client ($3), in one read.
pub(super) const GET_SESSION_VIEW: &str = "SELECT s.session_hash, s.sid, s.user_sub, \
     s.auth_time, s.amr, s.created_at, s.expires_at, s.device, s.ip, s.last_used_at, \
     u.username, u.disabled, \
     c.scope AS consented_scope \
     FROM session s JOIN app_user u ON u.sub = s.user_sub \
     LEFT JOIN consent c ON c.user_sub = s.user_sub AND c.client_id = $3 \
     WHERE s.session_hash = $1 AND s.expires_at > $2";

/// Binds a session's ten columns, in `session_columns!` order.
fn bind_session<'q, Q: Bind<'q>>(query: Q, session: &'q SessionRecord) -> Q {
    query
        .arg(&session.session_hash)
        .arg(&session.sid)
        .arg(&session.user_sub)
        .arg(session.auth_time)
        .arg(&session.amr)
        .arg(session.created_at)
        .arg(session.expires_at)
        .arg(&session.device)
        .arg(&session.ip)
        .arg(session.last_used_at)
}

fn session_from_row(row: &impl SqlRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        session_hash: row.col("session_hash")?,
        sid: row.col("sid")?,
        user_sub: row.col("user_sub")?,
        auth_time: row.col("auth_time")?,
        amr: row.col("amr")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
        device: row.col("device")?,
        ip: row.col("ip")?,
        last_used_at: row.col("last_used_at")?,
    })
}

/// A `GET_SESSION_VIEW` row.
pub(super) fn session_view_from_row(row: &impl SqlRow) -> StoreResult<SessionView> {
    Ok(SessionView {
        session: session_from_row(row)?,
        username: row.col("username")?,
        user_disabled: row.col("disabled")?,
        consented_scope: row.col("consented_scope")?,
    })
}

macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Ends the sessions `which` picks inside `tx`, queueing their notifications
            /// (`end_sessions!`); returns how many ended. Also used by `users.rs`, whose
            /// password change ends the user's other sessions in its own transaction.
            pub(super) async fn end_sessions_in(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                which: Which<'_>,
                now: i64,
            ) -> StoreResult<u64> {
                let statements = which.statements(<$db as Dialect>::BACKEND);
                let mut ended = 0;
                for (i, statement) in statements.iter().enumerate() {
                    let query = which.bind(::sqlx::query(statement));
                    let query = if i == 0 { query.bind(now) } else { query };
                    ended = query
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                }
                // The last statement deletes the sessions.
                Ok(ended)
            }

            async fn end_sessions(&self, which: Which<'_>, now: i64) -> StoreResult<u64> {
                let mut tx = sql::begin_write(&self.pool).await?;
                let ended = Self::end_sessions_in(&mut tx, which, now).await?;
                sql::commit(tx).await?;
                Ok(ended)
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
                bind_session(::sqlx::query(INSERT_SESSION), session)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn insert_session_with_event(
                &self,
                session: &SessionRecord,
                event: &AuditEvent,
            ) -> StoreResult<()> {
                match <$db as Dialect>::BACKEND {
                    Backend::Postgres => {
                        let query = bind_session(::sqlx::query(INSERT_SESSION_WITH_EVENT), session);
                        bind_event(query, event)
                            .execute(&self.pool)
                            .await
                            .map_err(db_err)?;
                        Ok(())
                    }
                    Backend::Sqlite => {
                        let mut tx = sql::begin_write(&self.pool).await?;
                        bind_event(::sqlx::query(INSERT_EVENT), event)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        bind_session(::sqlx::query(INSERT_SESSION), session)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        sql::commit(tx).await
                    }
                }
            }

            async fn get_session(
                &self,
                session_hash: &[u8],
                now: i64,
            ) -> StoreResult<Option<SessionRecord>> {
                ::sqlx::query(GET_SESSION)
                    .bind(session_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(session_from_row)
                    .transpose()
            }

            async fn get_session_view(
                &self,
                session_hash: &[u8],
                now: i64,
                client_id: &str,
            ) -> StoreResult<Option<SessionView>> {
                ::sqlx::query(GET_SESSION_VIEW)
                    .bind(session_hash)
                    .bind(now)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(session_view_from_row)
                    .transpose()
            }

            async fn delete_session(&self, session_hash: &[u8], now: i64) -> StoreResult<()> {
                self.end_sessions(Which::Hash(session_hash), now).await?;
                Ok(())
            }

            async fn delete_sessions_for_user(&self, sub: &str, now: i64) -> StoreResult<u64> {
                self.end_sessions(Which::User(sub), now).await
            }

            async fn end_session_of_user(
                &self,
                sub: &str,
                sid: &str,
                now: i64,
            ) -> StoreResult<bool> {
                Ok(self.end_sessions(Which::UserSid(sub, sid), now).await? > 0)
            }

            async fn end_other_sessions_of_user(
                &self,
                sub: &str,
                keep: &[u8],
                now: i64,
            ) -> StoreResult<u64> {
                self.end_sessions(Which::UserExcept(sub, keep), now).await
            }

            async fn list_sessions_of_user(
                &self,
                sub: &str,
                now: i64,
                limit: u32,
            ) -> StoreResult<Vec<SessionRecord>> {
                ::sqlx::query(LIST_SESSIONS_OF_USER)
                    .bind(sub)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(session_from_row)
                    .collect()
            }

            async fn touch_session(
                &self,
                session_hash: &[u8],
                now: i64,
                stale_before: i64,
            ) -> StoreResult<()> {
                let statement = match <$db as Dialect>::BACKEND {
                    Backend::Postgres => TOUCH_SESSION_PG,
                    Backend::Sqlite => TOUCH_SESSION_SQLITE,
                };
                ::sqlx::query(statement)
                    .bind(session_hash)
                    .bind(now)
                    .bind(stale_before)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn record_session_client(
                &self,
                sid: &str,
                client_id: &str,
                user_sub: &str,
                expires_at: i64,
            ) -> StoreResult<()> {
                ::sqlx::query(RECORD_SESSION_CLIENT)
                    .bind(sid)
                    .bind(client_id)
                    .bind(user_sub)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }
        }
    };
}

impl_session_store!(PgStore, sqlx::Postgres);
impl_session_store!(SqliteStore, sqlx::Sqlite);
