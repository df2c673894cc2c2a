//! Checking a username and password, shared by the login page and the password grant, with
//! the same throttling for both.

use std::net::IpAddr;

use super::password::HashError;
use super::throttle::{self, Admission};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::user::{MAX_USERNAME_BYTES, normalize_username};
use crate::store::UserRecord;

/// The answer to a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The caller records `succeeded` (with the session it starts, where it starts one).
    Success(Box<UserRecord>),
    /// Wrong username or password, or a disabled account: one answer for all.
    Failed,
    /// Too many failures for this account or address; try again after this many seconds.
    Throttled { retry_after: u64 },
    /// The client left before the password was checked: nothing was decided (the attempt
    /// still counts against the throttle), and nobody reads the answer.
    ClientLeft,
}

/// The audit event of a successful login.
pub fn succeeded(user_sub: &str, ip: Option<IpAddr>, client_id: Option<&str>) -> Event {
    let event = Event::new(Kind::LoginSucceeded).user(user_sub).ip(ip);
    match client_id {
        Some(c) => event.client(c),
        None => event,
    }
}

/// Checks the credentials. The attempt is counted against the client address and the
/// account before any hashing, atomically (`throttle::admit`), so racing guesses cannot slip
/// past the limit; a refused attempt costs no hash and queues no work. The same work is done
/// in every admitted case (a dummy hash for unknown users), so that neither the answer nor
/// its timing tells whether the account exists.
pub async fn check_credentials(
    app: &App,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
    client_id: Option<&str>,
) -> Result<LoginOutcome, OAuthError> {
    let now = app.now();
    // Usernames are stored in NFKC form: the throttle counts every spelling of one name (a
    // fullwidth `ａｌｉｃｅ` is `alice`) as that name, so variants buy no extra guesses.
    let normalized = normalize_username(username);
    let account_key = throttle::login_account_key(&normalized);
    let ip_key = ip.map(throttle::login_ip_key);
    let mut keys: Vec<(&str, &throttle::Policy)> = Vec::with_capacity(2);
    if let Some(k) = &ip_key {
        keys.push((k, &throttle::LOGIN_IP));
    }
    keys.push((&account_key, &throttle::LOGIN_ACCOUNT));
    // The user and the locks in one read; a refused attempt stops here, having written
    // nothing. An oversized username or password is looked up as nobody (and still hashed).
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let (user, lock) = if username.len() > 256 || password.len() > super::password::MAX_PASSWORD_LEN
    {
        (None, app.store.latest_lock(&names, now).await?)
    } else {
        app.store.get_user_for_login(username, &names, now).await?
    };
    let admission = match lock {
        Some(until) => throttle::refused(until, now, Vec::new()),
        None => throttle::count(app.store.as_ref(), &keys, now).await?,
    };
    if let Admission::Refused { retry_after, .. } = admission {
        crate::telemetry::login_failed();
        return Ok(LoginOutcome::Throttled { retry_after });
    }
    // The name as typed first (users stored before names were normalised keep theirs), then
    // its normal form.
    let user = match user {
        None if normalized != username && normalized.len() <= MAX_USERNAME_BYTES => {
            app.store.get_user_by_username(&normalized).await?
        }
        user => user,
    };
    let matched = match app
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
    {
        Ok(matched) => matched,
        Err(HashError::ClientLeft) => return Ok(LoginOutcome::ClientLeft),
        Err(e) => return Err(OAuthError::server_error(e)),
    };
    match user {
        Some(u) if matched && !u.disabled => {
            let address = ip_key.as_deref().map(|k| (k, &throttle::LOGIN_IP));
            throttle::settle_success(app.store.as_ref(), &account_key, address).await?;
            Ok(LoginOutcome::Success(Box::new(u)))
        }
        user => {
            crate::telemetry::login_failed();
            let with_client = |e: Event| match client_id {
                Some(c) => e.client(c),
                None => e,
            };
            let mut event = with_client(Event::new(Kind::LoginFailed).ip(ip));
            if let Some(u) = &user {
                event = event.user(&u.sub).detail("disabled", u.disabled);
            }
            audit::record(app, event).await;
            let account = keys.len() - 1;
            if admission.locked_out(account, &throttle::LOGIN_ACCOUNT) {
                let mut locked = Event::new(Kind::AccountLocked)
                    .ip(ip)
                    .detail("until", now + throttle::LOGIN_ACCOUNT.lockout);
                if let Some(u) = &user {
                    locked = locked.user(&u.sub);
                }
                audit::record(app, locked).await;
            }
            Ok(LoginOutcome::Failed)
        }
    }
}
