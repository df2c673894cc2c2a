//! Links sent by mail: "Forgot password?" (`request_password_reset`, `reset_password`) and
//! email verification (`send_verification`, `verify_email`).
//!
//! A link carries a 256-bit random token; the store keeps only its HMAC
//! (`SecretHasher`), at most one per user and purpose (`EmailTokenStore`), and uses it up in
//! one statement, so of racing redemptions exactly one wins. A reset link is bound to the
//! password hash it was issued under (a MAC of it, `reset_binding`), so it dies as soon as
//! the password changes, by this link or any other way; it lives `RESET_TTL`. A verification
//! link is bound to the address it was sent to and confirms only that address.
//!
//! "Forgot password?" never tells whether an account exists: the request is counted against
//! the client's address (the throttle) and answered at once, the same way for every input;
//! finding the account, the per-account throttle, the link and the mail happen afterwards,
//! in a task of their own, so neither the answer nor its timing depends on them.
//!
//! A reset ends every session of the user (their clients hear of it through back-channel
//! logout) and every refresh-token family, in the one transaction that also sets the
//! password (`UserStore::change_password`, as for the account page's change), and does not
//! sign anyone in: the next sign-in
//! goes through the login page and asks for a second factor when the user has one.

use std::net::IpAddr;

use super::password::HashError;
use super::password_policy::{self, Weakness};
use super::throttle::{self, Admission, Policy};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::{constant_time_eq, random_token};
use crate::mail::{self, MailKind, QueuedMail};
use crate::protocol::OAuthError;
use crate::protocol::discovery::paths;
use crate::protocol::user::normalize_username;
use crate::store::{EmailPurpose, UserRecord};

/// A reset link works for 30 minutes.
pub const RESET_TTL: i64 = 1800;
/// A verification link works for a day.
pub const VERIFY_TTL: i64 = 86_400;
/// Bytes of randomness in a link token.
const TOKEN_BYTES: usize = 32;

/// "Forgot password?" requests per client address: enough for a household behind one
/// address, few enough that one address cannot mail-bomb many accounts.
pub const RESET_IP: Policy = Policy {
    free: 10,
    window: 3600,
    max_delay: 60,
    lockout_after: 30,
    lockout: 3600,
};
/// Reset mails per account: a person who lost the first mail asks again once or twice; more
/// than that in an hour is someone else.
pub const RESET_ACCOUNT: Policy = Policy {
    free: 3,
    window: 3600,
    max_delay: 600,
    lockout_after: 6,
    lockout: 3600,
};

/// Verification mails a user may have sent again from "check your mail".
pub const VERIFY_ACCOUNT: Policy = Policy {
    free: 3,
    window: 3600,
    max_delay: 600,
    lockout_after: 10,
    lockout: 3600,
};

fn reset_ip_key(ip: IpAddr) -> String {
    format!("password-reset:ip:{}", throttle::address_key(ip))
}

fn reset_account_key(sub: &str) -> String {
    format!("password-reset:account:{sub}")
}

/// What a reset link is bound to: a MAC of the password hash it was issued under.
fn reset_binding(app: &App, user: &UserRecord) -> String {
    app.hasher.mac_parts(&[
        b"password-reset-link",
        user.sub.as_bytes(),
        user.password_hash.as_bytes(),
    ])
}

/// The answer to a "Forgot password?" request.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetRequest {
    /// Answered as "if the account exists, a mail is on its way" (whether or not it does).
    Accepted,
    /// Too many requests from this address.
    Throttled { retry_after: u64 },
}

/// Takes a "Forgot password?" request for `login` (a username or an email address). `lang`
/// is the language of the request, used when the user has no `locale` claim.
pub async fn request_password_reset(
    app: &App,
    login: &str,
    ip: Option<IpAddr>,
    lang: &str,
) -> Result<ResetRequest, OAuthError> {
    if let Some(ip) = ip {
        let key = reset_ip_key(ip);
        if let Admission::Refused { retry_after, .. } =
            throttle::admit(app.store.as_ref(), &[(&key, &RESET_IP)], app.now()).await?
        {
            return Ok(ResetRequest::Throttled { retry_after });
        }
    }
    // The rest runs detached: the answer must not wait for (nor its timing show) whether
    // there is an account to mail.
    let app = app.clone();
    let login: String = login.chars().take(320).collect();
    let lang = lang.to_owned();
    tokio::spawn(async move {
        if let Err(e) = send_reset_link(&app, &login, &lang).await {
            tracing::warn!(error = %e, "a password reset link could not be sent");
        }
    });
    Ok(ResetRequest::Accepted)
}

/// Accounts sharing one address that a reset by address looks at.
const SHARED_ADDRESS_LIMIT: u32 = 8;

/// The account `login` names: by username, else by email address when exactly one account
/// has it, or, when several have it, exactly one has it verified (anyone may type someone
/// else's address into their own account, unverified, and must not take the owner's reset
/// by address away). Both lookups always run.
async fn find_account(app: &App, login: &str) -> Result<Option<UserRecord>, OAuthError> {
    let login = login.trim();
    let by_name = app
        .store
        .get_user_by_username(&normalize_username(login))
        .await?;
    let by_email = if login.contains('@') {
        app.store
            .find_users_by_email(login, SHARED_ADDRESS_LIMIT)
            .await?
    } else {
        Vec::new()
    };
    if by_name.is_some() {
        return Ok(by_name);
    }
    match by_email.as_slice() {
        [] => Ok(None),
        [sub] => Ok(app.store.get_user(sub).await?),
        several => {
            let mut verified = Vec::new();
            for sub in several {
                if let Some(user) = app.store.get_user(sub).await?
                    && is_verified(&user)
                {
                    verified.push(user);
                }
            }
            Ok(match verified.len() {
                1 => verified.pop(),
                _ => None,
            })
        }
    }
}

async fn send_reset_link(app: &App, login: &str, lang: &str) -> Result<(), OAuthError> {
    let Some(user) = find_account(app, login).await? else {
        return Ok(());
    };
    let Some(to) = user.claims.email.clone().filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    if user.disabled {
        return Ok(());
    }
    let now = app.now();
    let key = reset_account_key(&user.sub);
    if let Admission::Refused { .. } =
        throttle::admit(app.store.as_ref(), &[(&key, &RESET_ACCOUNT)], now).await?
    {
        return Ok(());
    }
    let token = random_token(TOKEN_BYTES);
    app.store
        .issue_email_token(
            &user.sub,
            EmailPurpose::PasswordReset,
            &app.hasher.hash(&token),
            &reset_binding(app, &user),
            now,
            now + RESET_TTL,
        )
        .await?;
    let mail = QueuedMail {
        kind: MailKind::PasswordReset,
        to,
        username: user.username.clone(),
        lang: user
            .claims
            .locale
            .clone()
            .unwrap_or_else(|| lang.to_owned()),
        link: format!(
            "{}{}?token={token}",
            app.config.issuer,
            paths::PASSWORD_RESET
        ),
        detail: String::new(),
    };
    mail::queue(app, &user.sub, &mail, now + RESET_TTL).await?;
    audit::record(
        app,
        Event::new(Kind::PasswordResetRequested).user(&user.sub),
    )
    .await;
    Ok(())
}

/// The user a reset link belongs to, while it is live and their password is still the one
/// it was issued under.
pub async fn reset_link_user(app: &App, token: &str) -> Result<Option<UserRecord>, OAuthError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(link) = app
        .store
        .peek_email_token(
            &app.hasher.hash(token),
            EmailPurpose::PasswordReset,
            app.now(),
        )
        .await?
    else {
        return Ok(None);
    };
    let Some(user) = app.store.get_user(&link.user_sub).await? else {
        return Ok(None);
    };
    let bound = constant_time_eq(
        reset_binding(app, &user).as_bytes(),
        link.bound_to.as_bytes(),
    );
    Ok((bound && !user.disabled).then_some(user))
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetProblem {
    Mismatch,
    /// Too short or too long (the reason, in words).
    Length(&'static str),
    /// One of the passwords attackers try first (`password_policy`).
    Common,
}

/// What a reset form submission came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetOutcome {
    /// The password is set; every session and token family of the user has ended.
    Done,
    /// The link is unknown, used, expired, or its password has changed since.
    Expired,
    /// Try again with the same link.
    Again(ResetProblem),
    /// The client left before the new password was hashed.
    ClientLeft,
}

/// Sets a new password through a reset link: once, and only while the password is still the
/// one the link was issued under.
pub async fn reset_password(
    app: &App,
    token: &str,
    password: &str,
    confirm: &str,
    ip: Option<IpAddr>,
) -> Result<ResetOutcome, OAuthError> {
    let Some(user) = reset_link_user(app, token).await? else {
        return Ok(ResetOutcome::Expired);
    };
    if password != confirm {
        return Ok(ResetOutcome::Again(ResetProblem::Mismatch));
    }
    let context = [
        user.username.as_str(),
        user.claims.email.as_deref().unwrap_or(""),
    ];
    match password_policy::check(password, &context) {
        Ok(()) => {}
        Err(Weakness::Length(reason)) => {
            return Ok(ResetOutcome::Again(ResetProblem::Length(reason)));
        }
        Err(Weakness::Guessable) => return Ok(ResetOutcome::Again(ResetProblem::Common)),
    }
    let hash = match app.passwords.hash(password).await {
        Ok(hash) => hash,
        Err(HashError::ClientLeft) => return Ok(ResetOutcome::ClientLeft),
        Err(e) => return Err(OAuthError::server_error(e)),
    };
    let now = app.now();
    // One winner among racing submissions: the link is used up here…
    let Some(link) = app
        .store
        .redeem_email_token(&app.hasher.hash(token), EmailPurpose::PasswordReset, now)
        .await?
    else {
        return Ok(ResetOutcome::Expired);
    };
    // …and the password replaced only if it is still the one the link was bound to, in the
    // transaction every change by the user takes: whoever held a session (their clients
    // hear of it through back-channel logout) or a token family won with the old password
    // loses it.
    if link.user_sub != user.sub
        || !app
            .store
            .change_password(&user.sub, &user.password_hash, &hash, None, now)
            .await?
    {
        return Ok(ResetOutcome::Expired);
    }
    audit::record(
        app,
        Event::new(Kind::PasswordChanged)
            .user(&user.sub)
            .ip(ip)
            .detail("by", "reset_link"),
    )
    .await;
    Ok(ResetOutcome::Done)
}

/// Sends `user` a link that confirms their current email address (replacing any earlier
/// one). False when mail is off or the user has no address.
pub async fn send_verification(
    app: &App,
    user: &UserRecord,
    lang: &str,
) -> Result<bool, OAuthError> {
    let Some(to) = user.claims.email.clone().filter(|e| !e.is_empty()) else {
        return Ok(false);
    };
    if app.mailer.is_none() {
        return Ok(false);
    }
    let now = app.now();
    let token = random_token(TOKEN_BYTES);
    app.store
        .issue_email_token(
            &user.sub,
            EmailPurpose::EmailVerification,
            &app.hasher.hash(&token),
            &to,
            now,
            now + VERIFY_TTL,
        )
        .await?;
    let mail = QueuedMail {
        kind: MailKind::EmailVerification,
        to,
        username: user.username.clone(),
        lang: user
            .claims
            .locale
            .clone()
            .unwrap_or_else(|| lang.to_owned()),
        link: format!("{}{}?token={token}", app.config.issuer, paths::EMAIL_VERIFY),
        detail: String::new(),
    };
    Ok(mail::queue(app, &user.sub, &mail, now + VERIFY_TTL).await?)
}

/// Tells the user's previous address that the account's address is now `new` (a user who
/// did not make the change learns of it where they still read mail). Only a verified
/// previous address is told: an unverified one may never have been the user's. The mail holds
/// no token, only the account page's address.
pub async fn notify_address_changed(
    app: &App,
    before: &UserRecord,
    new: &str,
    lang: &str,
) -> Result<bool, OAuthError> {
    let Some(to) = before.claims.email.clone().filter(|e| !e.is_empty()) else {
        return Ok(false);
    };
    if !is_verified(before) || app.mailer.is_none() {
        return Ok(false);
    }
    let mail = QueuedMail {
        kind: MailKind::EmailChanged,
        to,
        username: before.username.clone(),
        lang: before
            .claims
            .locale
            .clone()
            .unwrap_or_else(|| lang.to_owned()),
        link: format!("{}{}", app.config.issuer, paths::ACCOUNT),
        detail: new.to_owned(),
    };
    // Delivered for as long as a verification link would be.
    Ok(mail::queue(app, &before.sub, &mail, app.now() + VERIFY_TTL).await?)
}

/// What asking for the verification mail again came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resend {
    Sent,
    /// The user has no address to send to.
    NoAddress,
    Throttled {
        retry_after: u64,
    },
}

/// Sends the verification mail again, at the user's request (throttled per account).
pub async fn resend_verification(
    app: &App,
    user: &UserRecord,
    lang: &str,
) -> Result<Resend, OAuthError> {
    if user.claims.email.as_deref().unwrap_or_default().is_empty() {
        return Ok(Resend::NoAddress);
    }
    let key = format!("email-verification:account:{}", user.sub);
    if let Admission::Refused { retry_after, .. } =
        throttle::admit(app.store.as_ref(), &[(&key, &VERIFY_ACCOUNT)], app.now()).await?
    {
        return Ok(Resend::Throttled { retry_after });
    }
    Ok(if send_verification(app, user, lang).await? {
        Resend::Sent
    } else {
        Resend::NoAddress
    })
}

/// Whether the user's email address is verified.
pub fn is_verified(user: &UserRecord) -> bool {
    user.claims.email_verified == Some(true)
}

/// An address as a page may show it to whoever holds the session: the first character of
/// the local part and the domain (`a•••@example.com`).
pub fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// Uses a verification link: the user's email is verified if it is still the address the
/// link was sent to. Returns the user when it was.
pub async fn verify_email(app: &App, token: &str) -> Result<Option<UserRecord>, OAuthError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let now = app.now();
    let Some(link) = app
        .store
        .redeem_email_token(
            &app.hasher.hash(token),
            EmailPurpose::EmailVerification,
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    // A concurrent change of the user (another claim edited) makes the conditional update
    // miss; read again and retry while the address is still the one confirmed.
    for _ in 0..3 {
        let Some(user) = app.store.get_user(&link.user_sub).await? else {
            return Ok(None);
        };
        if user.claims.email.as_deref() != Some(link.bound_to.as_str()) {
            return Ok(None);
        }
        let mut claims = user.claims.clone();
        claims.email_verified = Some(true);
        if app
            .store
            .swap_claims(&user.sub, user.updated_at, &link.bound_to, &claims, now)
            .await?
        {
            audit::record(app, Event::new(Kind::EmailVerified).user(&user.sub)).await;
            return Ok(Some(UserRecord {
                claims,
                updated_at: now,
                ..user
            }));
        }
    }
    Ok(None)
}

/// Whether the email claim changed from `before` to `after` in a way that needs a new
/// verification: a different address (compared without regard to case) that the caller did
/// not declare verified.
pub fn needs_verification(before: Option<&str>, after: Option<&str>) -> bool {
    match after {
        None | Some("") => false,
        Some(new) => before.is_none_or(|old| !old.eq_ignore_ascii_case(new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_or_changed_address_needs_verification() {
        let check = |before, after, expected| {
            assert_eq!(
                needs_verification(before, after),
                expected,
                "{before:?} → {after:?}"
            )
        };
        check(None, Some("a@example.com"), true);
        check(Some("a@example.com"), Some("b@example.com"), true);
        check(Some("a@example.com"), Some("A@Example.com"), false);
        check(Some("a@example.com"), Some("a@example.com"), false);
        check(Some("a@example.com"), None, false);
        check(None, Some(""), false);
    }

    #[test]
    fn masked_addresses_show_the_first_character_and_the_domain() {
        assert_eq!(masked("alice@example.com"), "a•••@example.com");
        assert_eq!(masked("ö@x.test"), "ö•••@x.test");
        assert_eq!(masked("no-at-sign"), "•••");
    }
}
