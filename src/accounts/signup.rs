//! Self sign-up (`LATCHKEY_SIGNUP=true`): a person picks a username, gives an email address
//! and chooses a password; the account exists only once the address is confirmed.
//!
//! `sign_up` checks the form (username rules, an address that parses, the password policy),
//! hashes the password and seals the whole sign-up (under a master-key subkey) into a mailed
//! link's row (`EmailPurpose::Signup`, keyed by the username): nothing is written to the
//! users table, so unconfirmed sign-ups cost one row each, live `SIGNUP_TTL`, and are purged
//! by housekeeping like every other expired link. A second sign-up for the same username
//! replaces the first pending one. Requests are throttled per client address before any
//! work (`SIGNUP_IP`).
//!
//! What it reveals: a username already taken is said so (the person must pick another, and
//! usernames are public in the sense that they are typed at the login page); an address
//! that already belongs to an account is never said so: the answer is the same "check your
//! mail", and no account is created and no mail sent for it.
//!
//! `complete` uses the link (once) and creates the account with its address verified; the
//! page then continues the authorization request the sign-up started in, when the link is
//! opened in that browser.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::password::HashError;
use super::password_policy::{self, Weakness};
use super::throttle::{self, Admission, Policy};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_token;
use crate::mail::{self, MailKind, QueuedMail};
use crate::protocol::discovery::paths;
use crate::protocol::user::{UserClaims, canonical_username};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{EmailPurpose, StoreError, UserRecord};

/// A sign-up link works for a day.
pub const SIGNUP_TTL: i64 = 86_400;
/// Sign-ups per client address.
pub const SIGNUP_IP: Policy = Policy {
    free: 5,
    window: 3600,
    max_delay: 120,
    lockout_after: 20,
    lockout: 3600,
};
/// The associated data of a sealed sign-up.
const SEALING: &str = "signup";
/// Bytes of randomness in a `sub` (as `manage::users`).
const SUB_BYTES: usize = 16;
/// Bytes of randomness in a link token.
const TOKEN_BYTES: usize = 32;

/// A submitted sign-up form.
pub struct Form<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    /// The pending authorization request the sign-up started in.
    pub interaction: &'a str,
    /// The page's language, for the mail.
    pub lang: &'a str,
}

/// Why a sign-up form was refused; the form is shown again with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Username(String),
    UsernameTaken,
    Email,
    PasswordLength(&'static str),
    PasswordCommon,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// "Check your mail" (also for an address that already has an account).
    Pending,
    Refused(Problem),
    Throttled {
        retry_after: u64,
    },
    ClientLeft,
}

/// A sign-up as it waits, sealed, for its address to be confirmed.
#[derive(Serialize, Deserialize)]
struct Waiting {
    username: String,
    email: String,
    password_hash: String,
    interaction: String,
    lang: String,
}

/// Whether `address` is a mail address that can be sent to.
pub fn valid_address(address: &str) -> bool {
    address.len() <= 254 && address.parse::<lettre::Address>().is_ok()
}

pub async fn sign_up(
    app: &App,
    form: &Form<'_>,
    ip: Option<IpAddr>,
) -> Result<Outcome, OAuthError> {
    let Some(mailer) = app.mailer.as_deref() else {
        return Err(OAuthError::new(ErrorCode::NotFound, "sign-up is off"));
    };
    if let Some(ip) = ip {
        let key = format!("signup:ip:{}", throttle::address_key(ip));
        if let Admission::Refused { retry_after, .. } =
            throttle::admit(app.store.as_ref(), &[(&key, &SIGNUP_IP)], app.now()).await?
        {
            return Ok(Outcome::Throttled { retry_after });
        }
    }
    let username = match canonical_username(form.username) {
        Ok(u) => u,
        Err(reason) => return Ok(Outcome::Refused(Problem::Username(reason))),
    };
    let email = form.email.trim();
    if !valid_address(email) {
        return Ok(Outcome::Refused(Problem::Email));
    }
    match password_policy::check(form.password, &[&username, email]) {
        Ok(()) => {}
        Err(Weakness::Length(reason)) => {
            return Ok(Outcome::Refused(Problem::PasswordLength(reason)));
        }
        Err(Weakness::Guessable) => return Ok(Outcome::Refused(Problem::PasswordCommon)),
    }
    if app.store.get_user_by_username(&username).await?.is_some() {
        return Ok(Outcome::Refused(Problem::UsernameTaken));
    }
    let password_hash = match app.passwords.hash(form.password).await {
        Ok(h) => h,
        Err(HashError::ClientLeft) => return Ok(Outcome::ClientLeft),
        Err(e) => return Err(OAuthError::server_error(e)),
    };
    // An address that already has an account: the same answer, and nothing else happens.
    if !app.store.find_users_by_email(email, 1).await?.is_empty() {
        return Ok(Outcome::Pending);
    }
    let waiting = Waiting {
        username: username.clone(),
        email: email.to_owned(),
        password_hash,
        interaction: form.interaction.to_owned(),
        lang: form.lang.to_owned(),
    };
    let sealed = mailer
        .seal_json(SEALING, &waiting)
        .map_err(OAuthError::server_error)?;
    let now = app.now();
    let token = random_token(TOKEN_BYTES);
    app.store
        .issue_email_token(
            &format!("signup:{username}"),
            EmailPurpose::Signup,
            &app.hasher.hash(&token),
            &sealed,
            now,
            now + SIGNUP_TTL,
        )
        .await?;
    let mail = QueuedMail {
        kind: MailKind::Signup,
        to: email.to_owned(),
        username: username.clone(),
        lang: form.lang.to_owned(),
        link: format!("{}{}?token={token}", app.config.issuer, paths::EMAIL_VERIFY),
        detail: String::new(),
    };
    mail::queue(app, &format!("signup:{username}"), &mail, now + SIGNUP_TTL).await?;
    Ok(Outcome::Pending)
}

/// A completed sign-up: the new account, and the authorization request it started in.
pub struct Completed {
    pub user: UserRecord,
    pub interaction: String,
}

/// What using a sign-up link came to.
pub enum Completion {
    Created(Box<Completed>),
    /// Not a live sign-up link.
    Unknown,
    /// Someone took the username (or the address) while the link waited.
    Taken,
}

/// Uses a sign-up link: creates the account, its address verified.
pub async fn complete(app: &App, token: &str) -> Result<Completion, OAuthError> {
    let Some(mailer) = app.mailer.as_deref() else {
        return Ok(Completion::Unknown);
    };
    if token.is_empty() || token.len() > 128 {
        return Ok(Completion::Unknown);
    }
    let now = app.now();
    let Some(link) = app
        .store
        .redeem_email_token(&app.hasher.hash(token), EmailPurpose::Signup, now)
        .await?
    else {
        return Ok(Completion::Unknown);
    };
    let Some(waiting) = mailer.open_json::<Waiting>(SEALING, &link.bound_to) else {
        return Ok(Completion::Unknown);
    };
    if !app
        .store
        .find_users_by_email(&waiting.email, 1)
        .await?
        .is_empty()
    {
        return Ok(Completion::Taken);
    }
    let record = UserRecord {
        sub: random_token(SUB_BYTES),
        username: waiting.username,
        password_hash: waiting.password_hash,
        claims: UserClaims {
            email: Some(waiting.email),
            email_verified: Some(true),
            locale: Some(waiting.lang).filter(|l| !l.is_empty()),
            ..UserClaims::default()
        },
        disabled: false,
        password_reset_required: false,
        mfa_required: false,
        created_at: now,
        updated_at: now,
    };
    match app.store.insert_user(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(Completion::Taken),
        Err(e) => return Err(e.into()),
    }
    audit::record(
        app,
        Event::new(Kind::UserCreated)
            .user(&record.sub)
            .detail("by", "signup"),
    )
    .await;
    Ok(Completion::Created(Box::new(Completed {
        user: record,
        interaction: waiting.interaction,
    })))
}
