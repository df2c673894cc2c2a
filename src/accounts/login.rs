//! Checking a username and password, shared by the login page and the password grant, with
//! the same throttling for both.

use std::net::IpAddr;

use super::throttle::{self, AfterFailure};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
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
}

/// The audit event of a successful login.
pub fn succeeded(user_sub: &str, ip: Option<IpAddr>, client_id: Option<&str>) -> Event {
    let event = Event::new(Kind::LoginSucceeded).user(user_sub).ip(ip);
    match client_id {
        Some(c) => event.client(c),
        None => event,
    }
}

/// Checks the credentials. The same work is done in every case (a dummy hash for unknown
/// users), so that neither the answer nor its timing tells whether the account exists; a
/// throttled attempt is refused before any hashing.
pub async fn check_credentials(
    app: &App,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
    client_id: Option<&str>,
) -> Result<LoginOutcome, OAuthError> {
    let now = app.now();
    let account_key = throttle::login_account_key(username);
    let ip_key = ip.map(|ip| throttle::login_ip_key(&ip.to_string()));
    let mut keys = vec![account_key.as_str()];
    if let Some(k) = &ip_key {
        keys.push(k);
    }
    // The throttle and the user in one read; an oversized username or password is looked
    // up as nobody (and still hashed, below).
    let (user, status) =
        if username.len() > 256 || password.len() > super::password::MAX_PASSWORD_LEN {
            (None, app.store.throttle_status(&keys, now).await?)
        } else {
            app.store.get_user_for_login(username, &keys, now).await?
        };
    let standing = throttle::Standing::from_status(status, now);
    if let Some(retry_after) = standing.retry_after {
        crate::telemetry::login_failed();
        return Ok(LoginOutcome::Throttled { retry_after });
    }

    let matched = app
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
        .map_err(OAuthError::server_error)?;
    let with_client = |e: Event| match client_id {
        Some(c) => e.client(c),
        None => e,
    };
    match user {
        Some(u) if matched && !u.disabled => {
            throttle::record_success(app.store.as_ref(), &account_key, &standing).await?;
            Ok(LoginOutcome::Success(Box::new(u)))
        }
        user => {
            crate::telemetry::login_failed();
            let after = throttle::record_failure(
                app.store.as_ref(),
                &account_key,
                throttle::LOGIN_ACCOUNT,
                now,
            )
            .await?;
            if let Some(k) = &ip_key {
                throttle::record_failure(app.store.as_ref(), k, throttle::LOGIN_IP, now).await?;
            }
            let mut event = with_client(Event::new(Kind::LoginFailed).ip(ip));
            if let Some(u) = &user {
                event = event.user(&u.sub).detail("disabled", u.disabled);
            }
            audit::record(app, event).await;
            if let AfterFailure::LockedOut { until } = after {
                let mut locked = Event::new(Kind::AccountLocked)
                    .ip(ip)
                    .detail("until", until);
                if let Some(u) = &user {
                    locked = locked.user(&u.sub);
                }
                audit::record(app, locked).await;
            }
            Ok(LoginOutcome::Failed)
        }
    }
}
