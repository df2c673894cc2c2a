//! The forced password change: when an administrator set `password_reset_required`, a correct
//! login leads to a form for a new password instead of into a session. Setting it clears the
//! flag and ends the user's other sessions; the caller then signs the user in and resumes what
//! they were doing.
//!
//! The form carries a ticket instead of a session: a MAC over the user, the interaction, the
//! browser's binding cookie, the time and the user's current password hash, valid for
//! `TICKET_TTL` while a new password is required. It proves that this browser just presented
//! the right password for this user. It is single use: the password it was issued for is
//! replaced in one conditional update (`replace_required_password`), after which the ticket
//! no longer matches; an operator's later reset (a new temporary password) kills it too.

use std::net::IpAddr;

use super::password::{HashError, check_new_password};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;

/// A user, as the pages see them.
pub use crate::store::UserRecord as User;

/// How long the password form stays valid after the login that led to it.
const TICKET_TTL: i64 = 600;

/// Where the ticket's form was shown: in an authorization request (its sealed interaction),
/// or on the account page (empty).
pub struct TicketScope<'a> {
    pub interaction: &'a str,
    pub binding: &'a str,
}

fn mac(app: &App, user: &User, scope: &TicketScope<'_>, issued_at: i64) -> String {
    app.hasher.mac_parts(&[
        b"password-reset",
        user.sub.as_bytes(),
        scope.interaction.as_bytes(),
        scope.binding.as_bytes(),
        issued_at.to_string().as_bytes(),
        user.password_hash.as_bytes(),
    ])
}

/// A ticket for `user`, who just logged in correctly in this browser.
pub fn ticket(app: &App, user: &User, scope: &TicketScope<'_>) -> String {
    let issued_at = app.now();
    format!("{issued_at}.{}", mac(app, user, scope, issued_at))
}

/// Whether `presented` is a live ticket for `user` as the user stands now: enabled, still
/// required to choose a new password, and with the password the ticket was issued for.
fn ticket_valid(app: &App, presented: &str, user: &User, scope: &TicketScope<'_>) -> bool {
    let Some((issued_at, _)) = presented.split_once('.') else {
        return false;
    };
    let Ok(issued_at) = issued_at.parse::<i64>() else {
        return false;
    };
    let age = app.now() - issued_at;
    !scope.binding.is_empty()
        && !user.disabled
        && user.password_reset_required
        && (0..=TICKET_TTL).contains(&age)
        && crate::crypto::constant_time_eq(
            format!("{issued_at}.{}", mac(app, user, scope, issued_at)).as_bytes(),
            presented.as_bytes(),
        )
}

/// A submitted password form.
pub struct Submission<'a> {
    pub sub: &'a str,
    pub ticket: &'a str,
    pub new_password: &'a str,
    pub confirm_password: &'a str,
}

/// What a submission came to.
pub enum Outcome {
    /// The password is set, the user's sessions ended: start one for this user.
    Changed(Box<User>),
    /// The ticket is not (or no longer) good: the form has expired.
    Expired,
    /// Try again on the same form (which the caller renders with a fresh ticket for `user`).
    Again { user: Box<User>, problem: Problem },
    /// The client left before its password was hashed.
    ClientLeft,
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Mismatch,
    TooShort,
    SameAsBefore,
}

/// Checks the ticket and the new password, and sets it: once, and only while the password is
/// still the one the ticket was issued for. `ip` is the browser's, for the audit event.
pub async fn submit(
    app: &App,
    form: &Submission<'_>,
    scope: &TicketScope<'_>,
    ip: Option<IpAddr>,
) -> Result<Outcome, OAuthError> {
    let Some(user) = app.store.get_user(form.sub).await? else {
        return Ok(Outcome::Expired);
    };
    if !ticket_valid(app, form.ticket, &user, scope) {
        return Ok(Outcome::Expired);
    }
    let again = |user: User, problem| {
        Ok(Outcome::Again {
            user: Box::new(user),
            problem,
        })
    };
    if form.new_password != form.confirm_password {
        return again(user, Problem::Mismatch);
    }
    if check_new_password(form.new_password).is_err() {
        return again(user, Problem::TooShort);
    }
    let hashed = async {
        if app
            .passwords
            .verify(form.new_password, Some(&user.password_hash))
            .await?
        {
            return Ok(None);
        }
        app.passwords.hash(form.new_password).await.map(Some)
    };
    let hash = match hashed.await {
        Ok(Some(hash)) => hash,
        Ok(None) => return again(user, Problem::SameAsBefore),
        Err(HashError::ClientLeft) => return Ok(Outcome::ClientLeft),
        Err(e) => return Err(OAuthError::server_error(e)),
    };
    // Only if the password is still the one the ticket was issued for: of racing or replayed
    // submissions one wins; the others find the ticket dead. Setting it clears
    // password_reset_required; the user's other sessions end.
    if !app
        .store
        .replace_required_password(form.sub, &user.password_hash, &hash, app.now())
        .await?
    {
        return Ok(Outcome::Expired);
    }
    app.store
        .delete_sessions_for_user(form.sub, app.now())
        .await?;
    audit::record(
        app,
        Event::new(Kind::PasswordChanged)
            .user(form.sub)
            .ip(ip)
            .detail("by", "user"),
    )
    .await;
    Ok(Outcome::Changed(Box::new(user)))
}
