//! The account page's sessions: where the user is signed in (device, address, started, last
//! used), and signing out one of them or all but the current one.
//!
//! Ending a session goes through the store's one way of ending sessions, so the clients that
//! took part in it are told (back-channel logout, queued in the same transaction). A user can
//! only end their own sessions: the store ends the session `sid` only together with the
//! user's `sub`, and the answer for another user's session is the answer for none at all.

use std::net::IpAddr;

use super::super::session::Session;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;

/// How many sessions the page lists, most recently used first; "sign out everywhere else"
/// reaches the rest too.
pub const LISTED: u32 = 50;

/// One session as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The public session id (`sid`), which the sign-out form names.
    pub sid: String,
    /// The summarised browser (`accounts::user_agent`), or "" when unknown.
    pub device: String,
    pub ip: Option<String>,
    pub started_at: i64,
    pub last_used_at: i64,
    /// This is the session the page is shown in.
    pub current: bool,
}

/// The user's live sessions, most recently used first (at most `LISTED`), and whether there
/// are more.
pub async fn list(app: &App, session: &Session) -> Result<(Vec<Listed>, bool), OAuthError> {
    let mut sessions = app
        .store
        .list_sessions_of_user(&session.user_sub, app.now(), LISTED + 1)
        .await?;
    let more = sessions.len() > LISTED as usize;
    sessions.truncate(LISTED as usize);
    let listed = sessions
        .into_iter()
        .map(|s| Listed {
            current: s.session_hash == session.session_hash,
            sid: s.sid,
            device: s.device,
            ip: s.ip,
            started_at: s.created_at,
            last_used_at: s.last_used_at,
        })
        .collect();
    Ok((listed, more))
}

/// Ends the user's session `sid` (which may be the current one: that is signing out here).
/// False when the user has no such session, whoever else may have one.
pub async fn end_one(
    app: &App,
    session: &Session,
    sid: &str,
    ip: Option<IpAddr>,
) -> Result<bool, OAuthError> {
    let ended = app
        .store
        .end_session_of_user(&session.user_sub, sid, app.now())
        .await?;
    if ended {
        audit::record(
            app,
            Event::new(Kind::Logout)
                .user(&session.user_sub)
                .ip(ip)
                .detail("by", "user")
                .detail("sid", sid),
        )
        .await;
    }
    Ok(ended)
}

/// Ends every session of the user but the current one; returns how many ended.
pub async fn end_others(
    app: &App,
    session: &Session,
    ip: Option<IpAddr>,
) -> Result<u64, OAuthError> {
    let ended = app
        .store
        .end_other_sessions_of_user(&session.user_sub, &session.session_hash, app.now())
        .await?;
    if ended > 0 {
        audit::record(
            app,
            Event::new(Kind::SessionsEnded)
                .user(&session.user_sub)
                .ip(ip)
                .detail("by", "user")
                .detail("count", ended),
        )
        .await;
    }
    Ok(ended)
}
