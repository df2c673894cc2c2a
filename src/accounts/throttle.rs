//! Throttling of failed logins and failed client authentication: per account (or client) and
//! per client IP, with exponential back-off after a few free failures and a temporary lockout
//! after many. The counters live in the database (`ThrottleStore`), so every node enforces
//! the same limits. An unknown account is counted exactly like a known one, so throttling
//! reveals nothing about who exists.

use crate::store::{StoreResult, ThrottleStatus, ThrottleStore};

/// How one kind of key is throttled.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures within `window` that cost nothing.
    pub free: i64,
    /// Seconds over which failures are counted.
    pub window: i64,
    /// The back-off after the free failures doubles up to this many seconds.
    pub max_delay: i64,
    /// At this many failures the key is locked out for `lockout` seconds.
    pub lockout_after: i64,
    pub lockout: i64,
}

/// Per account name: a person mistyping gets five tries, a guesser gets very few per hour.
pub const LOGIN_ACCOUNT: Policy = Policy {
    free: 5,
    window: 900,
    max_delay: 60,
    lockout_after: 20,
    lockout: 900,
};
/// Per client IP at the login form (many users may share one address behind NAT).
pub const LOGIN_IP: Policy = Policy {
    free: 20,
    window: 900,
    max_delay: 60,
    lockout_after: 100,
    lockout: 900,
};
/// Per client id at the token, revocation and introspection endpoints.
pub const CLIENT: Policy = Policy {
    free: 10,
    window: 900,
    max_delay: 60,
    lockout_after: 50,
    lockout: 900,
};
/// Per client IP at the token, revocation and introspection endpoints.
pub const CLIENT_IP: Policy = Policy {
    free: 30,
    window: 900,
    max_delay: 60,
    lockout_after: 200,
    lockout: 900,
};

/// Per client IP at the admin API: wrong admin tokens. The token has at least 16 characters,
/// so guessing it is hopeless anyway; this caps a guesser at a few hundred tries per quarter
/// hour while leaving plenty of room for scripts and operators that get it wrong.
pub const ADMIN_IP: Policy = Policy {
    free: 100,
    window: 900,
    max_delay: 60,
    lockout_after: 500,
    lockout: 900,
};

pub fn admin_ip_key(ip: &str) -> String {
    format!("admin-ip:{ip}")
}

pub fn login_account_key(username: &str) -> String {
    let normalized: String = username.trim().to_lowercase().chars().take(256).collect();
    format!("login:account:{normalized}")
}

pub fn login_ip_key(ip: &str) -> String {
    format!("login:ip:{ip}")
}

pub fn client_key(client_id: &str) -> String {
    let bounded: String = client_id.chars().take(256).collect();
    format!("client:{bounded}")
}

pub fn client_ip_key(ip: &str) -> String {
    format!("client-ip:{ip}")
}

/// Where `keys` stand before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Seconds to wait before trying again, when any key is locked.
    pub retry_after: Option<u64>,
    /// Whether the first key has failures on record (which a success then clears).
    pub first_key_recorded: bool,
}

impl Standing {
    pub fn from_status(status: ThrottleStatus, now: i64) -> Self {
        Standing {
            retry_after: status.locked_until.map(|until| (until - now).max(1) as u64),
            first_key_recorded: status.first_key_recorded,
        }
    }
}

/// Seconds to wait before `keys` may try again, when any of them is locked.
pub async fn retry_after(
    store: &dyn ThrottleStore,
    keys: &[&str],
    now: i64,
) -> StoreResult<Option<u64>> {
    let status = store.throttle_status(keys, now).await?;
    Ok(Standing::from_status(status, now).retry_after)
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still within the free failures.
    Counted,
    /// Locked for a short back-off.
    BackOff { until: i64 },
    /// Locked out for `Policy::lockout`.
    LockedOut { until: i64 },
}

/// Counts a failure for `key` under `policy` and locks it when the policy says so.
pub async fn record_failure(
    store: &dyn ThrottleStore,
    key: &str,
    policy: Policy,
    now: i64,
) -> StoreResult<AfterFailure> {
    let failures = store.record_failure(key, now, policy.window).await?;
    let outcome = if failures >= policy.lockout_after {
        AfterFailure::LockedOut {
            until: now + policy.lockout,
        }
    } else if failures > policy.free {
        let exponent = (failures - policy.free - 1).min(20) as u32;
        let delay = 2_i64.pow(exponent).min(policy.max_delay);
        AfterFailure::BackOff { until: now + delay }
    } else {
        AfterFailure::Counted
    };
    match outcome {
        AfterFailure::BackOff { until } | AfterFailure::LockedOut { until } => {
            store.lock(key, until).await?
        }
        AfterFailure::Counted => {}
    }
    Ok(outcome)
}

/// Forgets the failures of `key` after a success; `standing` is what was read before the
/// attempt, so that the usual success (nothing on record) costs no write.
pub async fn record_success(
    store: &dyn ThrottleStore,
    key: &str,
    standing: &Standing,
) -> StoreResult<()> {
    if standing.first_key_recorded {
        store.clear_failures(key).await?;
    }
    Ok(())
}
