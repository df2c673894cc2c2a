//! The end of a pending interaction. Interactions travel sealed in the browser
//! (`authorize::interaction`); the store only marks them finished (a primary key, so each
//! finishes once), in the same write as what finishing issues: the code with its grant, and
//! for the consent page also the consent and its audit event. On Postgres each finish is one
//! statement, on SQLite one transaction.
//!
//! These writes commit synchronously (Postgres' `synchronous_commit` as the server has it,
//! `on` by default: with a synchronous standby, the commit waits until the standby has
//! flushed it). What they write is acknowledged to the client right after (a code in the
//! redirect, a consent the user was told was saved), so it must survive a primary's crash
//! and a failover; `tests/failover/` checks that it does. They used to commit relaxed, which
//! let a code the client already held vanish with the primary.
//!
//! Contract: `contract/interactions.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::audit::{AuditEvent, INSERT_EVENT, bind_event};
use super::codes::{AuthCodeRecord, bind_code, code_columns};
use super::consents::{SAVE_CONSENT, consent_columns};
use super::grants::grant_columns;
use super::postgres::PgStore;
use super::sessions::{GET_SESSION_VIEW, SessionView, session_view_from_row};
use super::sql::{self, Backend, Dialect, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// The end of a login that issues a code without asking for consent: the interaction that
/// finishes (each finishes once) and the code with its grant.
#[derive(Debug, Clone, Copy)]
pub struct InteractionFinish<'a> {
    pub interaction_id: &'a str,
    /// Until when the interaction could still be presented: its finished mark is kept that
    /// long.
    pub interaction_expires_at: i64,
    pub code: &'a AuthCodeRecord,
    pub grant_expires_at: i64,
}

/// The consent page's Allow: the interaction that finishes, the browser's session, the scope
/// granted, the code and the event. The code's `user_sub`, `sid`, `auth_time` and `amr`, and
/// the event's `user_sub`, are taken from the session (whatever the records hold), so that
/// the page need not read the session first.
#[derive(Debug, Clone, Copy)]
pub struct ConsentFinish<'a> {
    pub interaction_id: &'a str,
    pub interaction_expires_at: i64,
    pub session_hash: &'a [u8],
    /// The public id (`sid`) of the session the interaction was decided for: a browser whose
    /// session changed since (another login, another user) gets `NoSession`.
    pub session_sid: &'a str,
    /// The scope granted now, added to what the user had granted `code.client_id` before
    /// (saved as of `code.created_at`, which is also "now" for the session's expiry).
    pub scope: &'a str,
    pub code: &'a AuthCodeRecord,
    pub grant_expires_at: i64,
    pub event: &'a AuditEvent,
}

/// What `InteractionStore::finish_consent` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Consent, event, grant and code are stored, for the session's user `user_sub`.
    Issued { user_sub: String },
    /// No live session with an enabled user, or not the session the interaction was
    /// decided for: nothing was written.
    NoSession,
    /// The interaction had finished before: nothing was written.
    AlreadyFinished,
}

/// Pending interactions travel sealed in the browser (`authorize::interaction`); the store
/// only remembers which have finished, so that each finishes at most once.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Marks the interaction finished without a code (the user said no). False when it had
    /// already finished. Of racing calls exactly one gets true.
    async fn finish_interaction(&self, interaction_id: &str, expires_at: i64) -> StoreResult<bool>;
    /// Marks the interaction finished and stores the code with its grant, all or nothing.
    /// False, with nothing written, when it had already finished (by any method). Of racing
    /// calls exactly one gets true.
    async fn finish_interaction_with_code(
        &self,
        finish: &InteractionFinish<'_>,
    ) -> StoreResult<bool>;
    /// All or nothing, when the session is live and its user enabled: marks the interaction
    /// finished, adds the scope to the user's consent for the client, records the event and
    /// stores the code with its grant. Of racing calls for one interaction exactly one gets
    /// `Issued`.
    async fn finish_consent(&self, finish: &ConsentFinish<'_>) -> StoreResult<ConsentOutcome>;
}

// The primary key lets exactly one of racing finishes insert the mark.
const FINISH_INTERACTION: &str = "INSERT INTO finished_interaction \
     (interaction_id, expires_at) VALUES ($1, $2) ON CONFLICT (interaction_id) DO NOTHING";
/// Postgres: the finished mark, the grant and the code in one statement; when the mark
/// already existed, `finished` is empty and nothing else is written. `$1`..`$16` are the
/// code (`bind_code`), `$17` the grant's expiry, `$18`/`$19` the interaction id and its
/// expiry.
const FINISH_INTERACTION_WITH_CODE: &str = concat!(
    "WITH finished AS (INSERT INTO finished_interaction (interaction_id, expires_at) \
     VALUES ($18, $19) ON CONFLICT (interaction_id) DO NOTHING RETURNING interaction_id), \
     new_grant AS (INSERT INTO auth_grant (",
    grant_columns!(),
    ") SELECT $2, $3, $4, $6, $14, $17, NULL FROM finished) INSERT INTO auth_code (",
    code_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM finished"
);
/// Postgres: the consent page's Allow in one statement. `live` is the session `$20` if it
/// is live at `$14`, is the one the interaction was decided for (public id `$28`) and its
/// user enabled; only then is the finished mark inserted; only
/// when both (`go`) are the consent merged, the event, the grant and the code written,
/// with the session's user, sid, auth_time and amr. The consent keeps the scopes granted
/// before, in their order, then adds the new ones (`$21`). Answers whether there was a
/// session and whether the code was stored. `$1`..`$16` the code (its `$4`, `$9`..`$11`
/// unused), `$17` the grant's expiry, `$18`/`$19` the interaction, `$22`..`$27` the
/// event (`bind_event`; its `$24` unused).
const FINISH_CONSENT: &str = concat!(
    "WITH live AS (SELECT s.user_sub, s.sid, s.auth_time, s.amr FROM session s \
     JOIN app_user u ON u.sub = s.user_sub \
     WHERE s.session_hash = $20 AND s.sid = $28 AND s.expires_at > $14 AND NOT u.disabled), \
     finished AS (INSERT INTO finished_interaction (interaction_id, expires_at) \
     SELECT $18, $19 FROM live ON CONFLICT (interaction_id) DO NOTHING \
     RETURNING interaction_id), \
     go AS (SELECT live.* FROM live, finished), \
     consented AS (INSERT INTO consent (",
    consent_columns!(),
    ") SELECT go.user_sub, $3, $21, $14 FROM go ON CONFLICT (user_sub, client_id) \
     DO UPDATE SET updated_at = excluded.updated_at, scope = (\
     SELECT string_agg(t.token, ' ' ORDER BY t.first) FROM (SELECT u.token, MIN(u.n) AS first \
     FROM unnest(string_to_array(consent.scope || ' ' || excluded.scope, ' ')) \
     WITH ORDINALITY AS u(token, n) WHERE u.token <> '' GROUP BY u.token) t)), \
     logged AS (INSERT INTO audit_event (occurred_at, kind, user_sub, client_id, ip, detail) \
     SELECT $22, $23, go.user_sub, $25, $26, $27 FROM go), \
     new_grant AS (INSERT INTO auth_grant (",
    grant_columns!(),
    ") SELECT $2, $3, go.user_sub, $6, $14, $17, NULL FROM go), \
     new_code AS (INSERT INTO auth_code (",
    code_columns!(),
    ") SELECT $1, $2, $3, go.user_sub, $5, $6, $7, $8, go.sid, go.auth_time, go.amr, \
     $12, $13, $14, $15, $16 FROM go RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM live) AS sessions, \
     (SELECT COUNT(*) FROM new_code) AS issued, (SELECT user_sub FROM live) AS user_sub"
);

/// `before` (a space-separated scope, if any) followed by the tokens of `added` it lacks: the
/// consent a user has after granting `added`, in the order Postgres's `FINISH_CONSENT` keeps.
fn merge_scopes(before: Option<&str>, added: &str) -> String {
    let mut tokens: Vec<&str> = Vec::new();
    for token in before
        .unwrap_or_default()
        .split(' ')
        .chain(added.split(' '))
    {
        if !token.is_empty() && !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens.join(" ")
}

macro_rules! impl_interaction_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts an interaction's finished mark; false when it was there already.
            async fn mark_finished<'c, E>(
                executor: E,
                interaction_id: &str,
                expires_at: i64,
            ) -> StoreResult<bool>
            where
                E: ::sqlx::Executor<'c, Database = $db>,
            {
                let result = ::sqlx::query(FINISH_INTERACTION)
                    .bind(interaction_id)
                    .bind(expires_at)
                    .execute(executor)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl InteractionStore for $store {
            async fn finish_interaction(
                &self,
                interaction_id: &str,
                expires_at: i64,
            ) -> StoreResult<bool> {
                Self::mark_finished(&self.pool, interaction_id, expires_at).await
            }

            async fn finish_interaction_with_code(
                &self,
                finish: &InteractionFinish<'_>,
            ) -> StoreResult<bool> {
                let code = finish.code;
                if let Backend::Postgres = <$db as Dialect>::BACKEND {
                    let result = bind_code(::sqlx::query(FINISH_INTERACTION_WITH_CODE), code)
                        .bind(finish.grant_expires_at)
                        .bind(finish.interaction_id)
                        .bind(finish.interaction_expires_at)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    return Ok(result.rows_affected() == 1);
                }
                // SQLite: the same writes in one transaction.
                let mut tx = sql::begin_write(&self.pool).await?;
                let id = finish.interaction_id;
                if !Self::mark_finished(&mut *tx, id, finish.interaction_expires_at).await? {
                    // Dropping the transaction rolls it back; nothing was written.
                    return Ok(false);
                }
                Self::insert_code_in(&mut tx, code, finish.grant_expires_at).await?;
                sql::commit(tx).await?;
                Ok(true)
            }

            async fn finish_consent(
                &self,
                finish: &ConsentFinish<'_>,
            ) -> StoreResult<ConsentOutcome> {
                let now = finish.code.created_at;
                if let Backend::Postgres = <$db as Dialect>::BACKEND {
                    let query = bind_code(::sqlx::query(FINISH_CONSENT), finish.code)
                        .bind(finish.grant_expires_at)
                        .bind(finish.interaction_id)
                        .bind(finish.interaction_expires_at)
                        .bind(finish.session_hash)
                        .bind(finish.scope);
                    let row = bind_event(query, finish.event)
                        .bind(finish.session_sid)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sessions: i64 = row.col("sessions")?;
                    let issued: i64 = row.col("issued")?;
                    return Ok(match (sessions, issued) {
                        (0, _) => ConsentOutcome::NoSession,
                        (_, 0) => ConsentOutcome::AlreadyFinished,
                        _ => ConsentOutcome::Issued {
                            user_sub: row.col("user_sub")?,
                        },
                    });
                }
                // SQLite: the same checks and writes in one transaction.
                let mut tx = sql::begin_write(&self.pool).await?;
                let client_id = &finish.code.client_id;
                let view = ::sqlx::query(GET_SESSION_VIEW)
                    .bind(finish.session_hash)
                    .bind(now)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let view = view.as_ref().map(session_view_from_row).transpose()?;
                let Some(SessionView {
                    session,
                    user_disabled: false,
                    consented_scope: before,
                    ..
                }) = view.filter(|v| v.session.sid == finish.session_sid)
                else {
                    return Ok(ConsentOutcome::NoSession);
                };
                let id = finish.interaction_id;
                if !Self::mark_finished(&mut *tx, id, finish.interaction_expires_at).await? {
                    return Ok(ConsentOutcome::AlreadyFinished);
                }
                ::sqlx::query(SAVE_CONSENT)
                    .bind(&session.user_sub)
                    .bind(client_id)
                    .bind(merge_scopes(before.as_deref(), finish.scope))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let event = AuditEvent {
                    user_sub: Some(session.user_sub.clone()),
                    ..finish.event.clone()
                };
                bind_event(::sqlx::query(INSERT_EVENT), &event)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let code = AuthCodeRecord {
                    user_sub: session.user_sub.clone(),
                    sid: session.sid,
                    auth_time: session.auth_time,
                    amr: session.amr,
                    ..finish.code.clone()
                };
                Self::insert_code_in(&mut tx, &code, finish.grant_expires_at).await?;
                sql::commit(tx).await?;
                Ok(ConsentOutcome::Issued {
                    user_sub: session.user_sub,
                })
            }
        }
    };
}

impl_interaction_store!(PgStore, sqlx::Postgres);
impl_interaction_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests;
