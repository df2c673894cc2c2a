//! Browser sessions: created at login with a fresh random id (no fixation), stored by hash,
//! found again from the cookie on any node.

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::{SecretHasher, random_secret, random_token};
use crate::protocol::OAuthError;
use crate::store::{AuditEvent, SessionStore, StoreResult};

/// A browser session, as the pages see it.
pub use crate::store::SessionRecord as Session;
use crate::store::SessionRecord;
/// A live session with its user and that user's consent for one client.
pub use crate::store::SessionView;

/// A new session for `user_sub`, stored with the audit `event` of the login that started it
/// (if any); returns the cookie value and the stored record.
pub async fn start(
    store: &dyn SessionStore,
    hasher: &SecretHasher,
    user_sub: &str,
    amr: &str,
    (now, ttl): (i64, i64),
    event: Option<&AuditEvent>,
) -> StoreResult<(String, SessionRecord)> {
    let token = random_secret();
    let record = SessionRecord {
        session_hash: hasher.hash(&token),
        sid: random_token(16),
        user_sub: user_sub.to_owned(),
        auth_time: now,
        amr: amr.to_owned(),
        created_at: now,
        expires_at: now + ttl,
    };
    match event {
        Some(event) => store.insert_session_with_event(&record, event).await?,
        None => store.insert_session(&record).await?,
    }
    Ok((token, record))
}

/// Longest session cookie value looked up; ours are 43 characters.
pub const MAX_COOKIE_LEN: usize = 128;

/// The live session named by a cookie value, if any.
pub async fn find(
    store: &dyn SessionStore,
    hasher: &SecretHasher,
    cookie_value: Option<&str>,
    now: i64,
) -> StoreResult<Option<SessionRecord>> {
    match cookie_value {
        Some(v) if !v.is_empty() && v.len() <= MAX_COOKIE_LEN => {
            store.get_session(&hasher.hash(v), now).await
        }
        _ => Ok(None),
    }
}

/// The live session named by a cookie value, with its user and the scope that user granted
/// `client_id`: one read. `None` also when the user is gone.
pub async fn find_view(
    store: &dyn SessionStore,
    hasher: &SecretHasher,
    cookie_value: Option<&str>,
    now: i64,
    client_id: &str,
) -> StoreResult<Option<SessionView>> {
    match cookie_value {
        Some(v) if !v.is_empty() && v.len() <= MAX_COOKIE_LEN => {
            store
                .get_session_view(&hasher.hash(v), now, client_id)
                .await
        }
        _ => Ok(None),
    }
}

/// Starts a new session for `sub` after a successful login, replacing (and deleting) the
/// browser's previous session (`old_cookie`): a fresh id on every login, so a planted cookie
/// cannot be fixed. `event` (the login's audit event) is stored with the session, and logged
/// once it is. Returns the new cookie value and the session.
pub async fn begin(
    app: &App,
    old_cookie: Option<&str>,
    sub: &str,
    amr: &str,
    event: Option<Event>,
) -> Result<(String, Session), OAuthError> {
    if let Some(old) = old_cookie {
        app.store
            .delete_session(&app.hasher.hash(old), app.now())
            .await?;
    }
    let event = event.map(|e| audit::row(app, e));
    let started = start(
        app.store.as_ref(),
        &app.hasher,
        sub,
        amr,
        (app.now(), app.config.session_ttl),
        event.as_ref(),
    )
    .await?;
    if let Some(event) = &event {
        audit::log(event);
    }
    Ok(started)
}

/// The browser's live session, from its cookie value.
pub async fn current(app: &App, cookie_value: Option<&str>) -> Result<Option<Session>, OAuthError> {
    Ok(find(app.store.as_ref(), &app.hasher, cookie_value, app.now()).await?)
}

/// Ends a session (sign-out), with its audit event; the clients that took part in it are
/// notified (back-channel logout, queued with the deletion).
pub async fn end(app: &App, session: &Session) -> Result<(), OAuthError> {
    app.store
        .delete_session(&session.session_hash, app.now())
        .await?;
    audit::record(app, Event::new(Kind::Logout).user(&session.user_sub)).await;
    Ok(())
}
