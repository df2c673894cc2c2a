//! Who may use the admin API: the bearer token, checked for the HTTP layer (`http::admin`).
//!
//! A wrong token is a guess: it is counted per client address in the statement that checks
//! the lock again, so that racing guesses cannot slip past the limit (each gets exactly the
//! answer its place in the count says). An address that sent too many wrong tokens waits, even
//! with the right one: else the lock would not stop guessing (a right guess would still get
//! through). The right token writes nothing: it reads the address's lock and is compared, so
//! that operators' scripts cost no write (and no dead row) per request. A right guess can only
//! overtake the lock while the wrong guesses that reach it are still in flight; with a token of
//! at least 16 characters that is no help to a guesser. Requests without a token, or
//! while the admin API is off, cannot find the token, so they lock nobody out; they are only
//! counted per address, so that a flood of them leaves a few aggregated audit events rather
//! than a row each.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::accounts::throttle::{self, Admission};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::constant_time_eq;
use crate::protocol::{ErrorCode, OAuthError};

/// Checks the admin token `presented` by the caller at `ip` for `path`. One answer for a
/// missing token, a wrong one, and an admin API switched off (no token configured): the
/// caller learns nothing about which it was.
pub async fn authenticate(
    app: &App,
    presented: Option<&str>,
    ip: Option<IpAddr>,
    path: &str,
) -> Result<(), OAuthError> {
    let now = app.now();
    let store = app.store.as_ref();
    let denied = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the admin API needs Authorization: Bearer <LATCHKEY_ADMIN_TOKEN>",
        )
    };
    let event = |refusals: i64| {
        Event::new(Kind::AdminAccessDenied)
            .ip(ip)
            .detail("path", path.chars().take(200).collect::<String>())
            .detail("token_sent", presented.is_some())
            .detail("refusals_from_address", refusals)
    };
    let (Some(expected), Some(presented)) = (&app.config.admin_token, presented) else {
        let refusals = match ip {
            Some(ip) => {
                let key = throttle::admin_anonymous_key(ip);
                throttle::admit(store, &[(&key, &throttle::ADMIN_ANONYMOUS_IP)], now)
                    .await?
                    .count(0)
            }
            None => 1,
        };
        if throttle::worth_recording(refusals) {
            audit::record(app, event(refusals)).await;
        }
        return Err(denied());
    };
    let key = ip.map(throttle::admin_ip_key);
    if let Some(k) = &key
        && let Some(until) = store.latest_lock(&[k.as_str()], now).await?
        && let Admission::Refused { retry_after, .. } = throttle::refused(until, now, Vec::new())
    {
        return Err(OAuthError::slow_down(retry_after));
    }
    if token_matches(expected, presented) {
        return Ok(());
    }
    let admission = match &key {
        Some(k) => throttle::count(store, &[(k, &throttle::ADMIN_IP)], now).await?,
        None => Admission::Admitted {
            counts: vec![1],
            locks: vec![0],
        },
    };
    if let Admission::Refused { retry_after, .. } = admission {
        return Err(OAuthError::slow_down(retry_after));
    }
    let refusals = admission.count(0);
    if throttle::worth_recording(refusals) || admission.locked_out(0, &throttle::ADMIN_IP) {
        audit::record(app, event(refusals)).await;
    }
    Err(denied())
}

/// Compares digests rather than the tokens themselves: both are 32 bytes, so the comparison
/// time reveals neither where the tokens differ nor how long the configured one is.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let expected = Sha256::digest(expected.as_bytes());
    let presented = Sha256::digest(presented.as_bytes());
    constant_time_eq(&expected, &presented)
}
