//! The account page's password change: the current password, then a new one.
//!
//! The current password is checked exactly like a login (`login::check_credentials`): counted
//! against the account and the address before it is hashed, with the same limits, so this
//! form is no way around the login throttle and no password oracle. The new password is
//! checked against the policy for passwords people choose (`password_policy`: length, and
//! not one attackers try first, as for a reset or a sign-up) before the current one, so a
//! refusal for the new one tells nothing about the current one and costs no guess.
//!
//! The change itself is one transaction (`UserStore::change_password`): the new hash is set
//! only while the password is still the one just proved (of racing changes one wins), every
//! other session of the user ends (with back-channel logout notifications), the session the
//! change was made in stays, and every refresh-token family of the user ends: whoever held
//! the old password, or a token won with it, holds nothing now.

use std::net::IpAddr;

use super::super::login::{self, LoginOutcome};
use super::super::password::{HashError, MIN_PASSWORD_LEN};
use super::super::password_policy::{self, Weakness};
use super::super::session::Session;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;

/// What a change came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The new password is set; the other sessions and every refresh family have ended.
    Changed,
    /// The current password is wrong (or was changed meanwhile): one answer for both.
    WrongCurrent,
    /// Too many wrong passwords for this account or address; try again after this many
    /// seconds.
    Throttled { retry_after: u64 },
    /// The new password is refused; the current one was not looked at.
    Refused(Refusal),
    /// The client left before the passwords were hashed; nobody reads the answer.
    ClientLeft,
    /// The session's user is gone or disabled.
    SignedOut,
    /// The user has no password to change (created through an upstream); nothing was
    /// counted against the throttle. A password is set through the reset mail.
    NoPassword,
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Shorter than `MIN_PASSWORD_LEN` characters.
    TooShort,
    /// Longer than `MAX_PASSWORD_LEN` bytes.
    TooLong,
    /// One of the passwords attackers try first, or one made from the user's own name or
    /// address (`password_policy`).
    Guessable,
    /// The same as the current password.
    SameAsCurrent,
}

/// Changes the password of the session's user from `current` to `new`.
pub async fn change(
    app: &App,
    session: &Session,
    current: &str,
    new: &str,
    ip: Option<IpAddr>,
) -> Result<Change, OAuthError> {
    let user = match app.store.get_user(&session.user_sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Ok(Change::SignedOut),
    };
    if !user.has_password() {
        return Ok(Change::NoPassword);
    }
    let context = [
        user.username.as_str(),
        user.claims.email.as_deref().unwrap_or_default(),
    ];
    match password_policy::check(new, &context) {
        Ok(()) => {}
        Err(Weakness::Length(_)) if new.chars().count() < MIN_PASSWORD_LEN => {
            return Ok(Change::Refused(Refusal::TooShort));
        }
        Err(Weakness::Length(_)) => return Ok(Change::Refused(Refusal::TooLong)),
        Err(Weakness::Guessable) => return Ok(Change::Refused(Refusal::Guessable)),
    }
    let proved = match login::check_credentials(app, &user.username, current, ip, None).await? {
        LoginOutcome::Success(proved) if proved.sub == user.sub => proved,
        LoginOutcome::Success(_) | LoginOutcome::Failed => return Ok(Change::WrongCurrent),
        LoginOutcome::Throttled { retry_after } => return Ok(Change::Throttled { retry_after }),
        LoginOutcome::ClientLeft => return Ok(Change::ClientLeft),
    };
    if new == current {
        return Ok(Change::Refused(Refusal::SameAsCurrent));
    }
    let hash = match app.passwords.hash(new).await {
        Ok(hash) => hash,
        Err(HashError::ClientLeft) => return Ok(Change::ClientLeft),
        Err(e) => return Err(OAuthError::server_error(e)),
    };
    // The hash just proved: if another change won meanwhile, the current password is no
    // longer current.
    if !app
        .store
        .change_password(
            &user.sub,
            &proved.password_hash,
            &hash,
            Some(&session.session_hash),
            app.now(),
        )
        .await?
    {
        return Ok(Change::WrongCurrent);
    }
    audit::record(
        app,
        Event::new(Kind::PasswordChanged)
            .user(&user.sub)
            .ip(ip)
            .detail("by", "user")
            .detail("on", "account"),
    )
    .await;
    Ok(Change::Changed)
}
