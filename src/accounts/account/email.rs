//! The account page's email address (`email` in `LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`, with
//! mail on): a user sets or changes their address themselves.
//!
//! The address is where a reset link goes, so changing it is guarded like the password: the
//! current password is required and checked exactly like a login (`login::check_credentials`,
//! the same throttle), so a session left open on a shared computer is not enough to move
//! the account's recovery to another mailbox. Changes are also counted per account
//! (`EMAIL_CHANGE`) after the password was proved, so a signed-in user cannot make Latchkey
//! mail a stream of addresses.
//!
//! The new address is stored at once, with `email_verified` false, in one merge of those
//! two claims into the stored ones (`UserStore::patch_claims`: a claim edited meanwhile
//! keeps its value); then a verification link bound to the new address goes to it
//! (`email_links::send_verification`, which replaces any earlier link). Following the link
//! sets `email_verified` again (`email_links::verify_email`), only while the address is
//! still the one it was sent to. Submitting the current, unverified address again sends its
//! link again. The previous address, when it was verified, is told of the change
//! (`email_links::notify_address_changed`).

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::super::email_links::{self, is_verified};
use super::super::login::{self, LoginOutcome};
use super::super::session::Session;
use super::super::signup::valid_address;
use super::super::throttle::{self, Admission, Policy};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::admin::merge_claims;

/// Address changes (and resends) per account once the password was proved: someone who
/// mistyped tries again once or twice; more than that in an hour is no one's mailbox.
pub const EMAIL_CHANGE: Policy = Policy {
    free: 3,
    window: 3600,
    max_delay: 600,
    lockout_after: 10,
    lockout: 3600,
};

/// What a submission of the email form came to.
#[derive(Debug, PartialEq, Eq)]
pub enum EmailChange {
    /// The address is stored, unverified, and a link is on its way to it.
    Sent,
    /// The address is the current one and already verified: nothing to do.
    Unchanged,
    /// Not an address mail can be sent to; the current password was not looked at.
    Invalid,
    /// The current password is wrong (one answer whatever the reason).
    WrongCurrent,
    /// Too many wrong passwords, or too many changes, for this account; try again after
    /// this many seconds.
    Throttled { retry_after: u64 },
    /// The client left before the password was checked.
    ClientLeft,
    /// The session's user is gone or disabled.
    SignedOut,
    /// The user has no password to prove (created through an upstream); nothing was counted
    /// against the throttle.
    NoPassword,
}

/// Whether the account page lets users set their address.
pub fn editable(app: &App) -> bool {
    app.config.account_email_editable && app.mailer.is_some()
}

/// Sets the address of the session's user to `new`, once `current_password` is proved.
/// `lang` is the page's language, for the mail when the user has no `locale` claim.
pub async fn change(
    app: &App,
    session: &Session,
    new: &str,
    current_password: &str,
    ip: Option<IpAddr>,
    lang: &str,
) -> Result<EmailChange, OAuthError> {
    let user = match app.store.get_user(&session.user_sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Ok(EmailChange::SignedOut),
    };
    if !user.has_password() {
        return Ok(EmailChange::NoPassword);
    }
    let new = new.trim();
    if !valid_address(new) {
        return Ok(EmailChange::Invalid);
    }
    match login::check_credentials(app, &user.username, current_password, ip, None).await? {
        LoginOutcome::Success(proved) if proved.sub == user.sub => {}
        LoginOutcome::Success(_) | LoginOutcome::Failed => return Ok(EmailChange::WrongCurrent),
        LoginOutcome::Throttled { retry_after } => {
            return Ok(EmailChange::Throttled { retry_after });
        }
        LoginOutcome::ClientLeft => return Ok(EmailChange::ClientLeft),
    }
    let same = !email_links::needs_verification(user.claims.email.as_deref(), Some(new));
    if same && is_verified(&user) {
        return Ok(EmailChange::Unchanged);
    }
    let key = format!("email-change:account:{}", user.sub);
    if let Admission::Refused { retry_after, .. } =
        throttle::admit(app.store.as_ref(), &[(&key, &EMAIL_CHANGE)], app.now()).await?
    {
        return Ok(EmailChange::Throttled { retry_after });
    }
    let user = if same {
        // The current address, not yet verified: its link again.
        user
    } else {
        let mut patch = Map::new();
        patch.insert("email".to_owned(), Value::String(new.to_owned()));
        patch.insert("email_verified".to_owned(), Value::Bool(false));
        // The admin API's rules on the result, so that the page can never store what an
        // operator could not.
        let claims = merge_claims(&user.claims, &patch)?;
        if !app.store.patch_claims(&user.sub, &patch, app.now()).await? {
            return Ok(EmailChange::SignedOut);
        }
        audit::record(
            app,
            Event::new(Kind::UserUpdated)
                .user(&user.sub)
                .ip(ip)
                .detail("by", "user")
                .detail("claims", vec![Value::String("email".to_owned())]),
        )
        .await;
        email_links::notify_address_changed(app, &user, new, lang).await?;
        crate::store::UserRecord { claims, ..user }
    };
    email_links::send_verification(app, &user, lang).await?;
    Ok(EmailChange::Sent)
}
