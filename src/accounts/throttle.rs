//! Throttling of guesses: logins per account and per client address, client authentication
//! per client id and address, admin tokens per address. Free attempts first, then an
//! exponential back-off, then a temporary lockout.
//!
//! An attempt is counted *before* the work it guards (`admit`), in the same database
//! statement that checks the lock (`ThrottleStore::count_attempts`, both keys of an attempt
//! in one round trip): N simultaneous guesses on any number of nodes count N attempts, and
//! only those the rule allows get through. An
//! attempt that then succeeds is taken back (`settle_success`). An unknown account is counted
//! exactly like a known one, so throttling reveals nothing about who exists.

use std::net::IpAddr;

use crate::store::{AttemptCount, StoreResult, ThrottleRule, ThrottleStore};

/// How one kind of key is throttled.
pub type Policy = ThrottleRule;

/// Per account name: a person mistyping gets five tries, a guesser gets very few per hour.
pub const LOGIN_ACCOUNT: Policy = Policy {
    free: 5,
    window: 900,
    max_delay: 60,
    lockout_after: 20,
    lockout: 900,
};
/// Per client address at the login form (many users may share one address behind NAT).
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
/// Per client address at the token, revocation and introspection endpoints.
pub const CLIENT_IP: Policy = Policy {
    free: 30,
    window: 900,
    max_delay: 60,
    lockout_after: 200,
    lockout: 900,
};

/// Per client address at the admin API: wrong admin tokens. The token has at least 16
/// characters, so guessing it is hopeless anyway; this caps a guesser at a few hundred tries
/// per quarter hour while leaving plenty of room for scripts and operators that get it wrong.
pub const ADMIN_IP: Policy = Policy {
    free: 100,
    window: 900,
    max_delay: 60,
    lockout_after: 500,
    lockout: 900,
};

/// Per client address at the admin API: requests without a token (or while the admin API is
/// off). They cannot find the token, so they never lock anyone out; they are only counted,
/// so that a flood of them is recorded as a few aggregated audit events, not a row each.
pub const ADMIN_ANONYMOUS_IP: Policy = Policy {
    free: i64::MAX,
    window: 900,
    max_delay: 0,
    lockout_after: i64::MAX,
    lockout: 0,
};

/// Per client address at `/device`: wrong user codes. RFC 8628 §5.1: user codes are short,
/// so guessing them must be limited; ten wrong codes a quarter hour, then 15 minutes off.
pub const DEVICE_CODE_IP: Policy = Policy {
    free: 10,
    window: 900,
    max_delay: 0,
    lockout_after: 10,
    lockout: 900,
};

/// Per client address at the registration endpoint: wrong initial access tokens (as wrong
/// admin tokens: a long random token, so this only bounds a guesser's traffic).
pub const REGISTRATION_TOKEN_IP: Policy = Policy {
    free: 20,
    window: 900,
    max_delay: 60,
    lockout_after: 100,
    lockout: 900,
};

/// Per client address, with open registration: registrations themselves, so that anyone's
/// writes stay bounded (twenty clients an hour from one address).
pub const OPEN_REGISTRATION_IP: Policy = Policy {
    free: 20,
    window: 3600,
    max_delay: 0,
    lockout_after: 20,
    lockout: 3600,
};

pub fn registration_ip_key(ip: IpAddr) -> String {
    format!("registration-ip:{}", address_key(ip))
}

pub fn open_registration_ip_key(ip: IpAddr) -> String {
    format!("open-registration-ip:{}", address_key(ip))
}

/// The part of a client address that names one client: the address itself for IPv4, the
/// /64 prefix for IPv6 (one subscriber is routinely given a whole /64, so keying on the full
/// address would hand an attacker 2^64 fresh counters).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

pub fn admin_ip_key(ip: IpAddr) -> String {
    format!("admin-ip:{}", address_key(ip))
}

pub fn admin_anonymous_key(ip: IpAddr) -> String {
    format!("admin-anon:{}", address_key(ip))
}

pub fn device_code_ip_key(ip: IpAddr) -> String {
    format!("device-ip:{}", address_key(ip))
}

pub fn login_account_key(username: &str) -> String {
    let normalized: String = username.trim().to_lowercase().chars().take(256).collect();
    format!("login:account:{normalized}")
}

pub fn login_ip_key(ip: IpAddr) -> String {
    format!("login:ip:{}", address_key(ip))
}

pub fn client_key(client_id: &str) -> String {
    let bounded: String = client_id.chars().take(256).collect();
    format!("client:{bounded}")
}

pub fn client_ip_key(ip: IpAddr) -> String {
    format!("client-ip:{}", address_key(ip))
}

/// One attempt, counted against each of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted against every key; `counts[i]` is the attempt's number in the window of the
    /// i-th key, `locks[i]` the lock it set there (0: none).
    Admitted { counts: Vec<i64>, locks: Vec<i64> },
    /// A key was locked: the attempt must not go ahead. `counts` holds its number in the
    /// window of each key counted before the locked one (none when a read found the lock);
    /// keys from the locked one on were not counted.
    Refused { retry_after: u64, counts: Vec<i64> },
}

impl Admission {
    /// Whether the attempt's count on key `i` is the one that triggered its lockout.
    pub fn locked_out(&self, i: usize, policy: &Policy) -> bool {
        matches!(self, Admission::Admitted { counts, .. }
            if counts.get(i).is_some_and(|n| *n == policy.lockout_after))
    }

    /// The attempt's number in the window of key `i` (0 when it was not counted there).
    pub fn count(&self, i: usize) -> i64 {
        match self {
            Admission::Admitted { counts, .. } | Admission::Refused { counts, .. } => {
                counts.get(i).copied().unwrap_or(0)
            }
        }
    }
}

/// Counts one attempt against `keys` (one or two) before the guarded work runs, unless one of
/// them is locked. A read first, so that the usual refusal (a key locked for a while) writes
/// nothing and counts against no other key; then each key is counted in the statement that
/// checks its lock again, so racing attempts cannot pass on a lock read before any of them
/// counted.
pub async fn admit(
    store: &dyn ThrottleStore,
    keys: &[(&str, &Policy)],
    now: i64,
) -> StoreResult<Admission> {
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    if let Some(until) = store.latest_lock(&names, now).await? {
        return Ok(refused(until, now, Vec::new()));
    }
    count(store, keys, now).await
}

/// The refusal of an attempt locked out until `locked_until`.
pub fn refused(locked_until: i64, now: i64, counts: Vec<i64>) -> Admission {
    Admission::Refused {
        retry_after: (locked_until - now).max(1) as u64,
        counts,
    }
}

/// `admit` without the first read, for a caller that has read `latest_lock` already (the
/// login reads it with the user). Put the broadest key first (the address before the
/// account): a locked address then creates no counter for each account name it tries.
/// Keys are counted two to a round trip (`ThrottleStore::count_attempts`), in order, and a
/// key that refuses stops the rest, so the usual address-and-account pair costs one.
pub async fn count(
    store: &dyn ThrottleStore,
    keys: &[(&str, &Policy)],
    now: i64,
) -> StoreResult<Admission> {
    let mut counts = Vec::with_capacity(keys.len());
    let mut locks = Vec::with_capacity(keys.len());
    for pair in keys.chunks(2) {
        let (first, second) = store
            .count_attempts(pair[0], pair.get(1).copied(), now)
            .await?;
        for count in std::iter::once(first).chain(second) {
            match count {
                AttemptCount::Counted {
                    attempts,
                    locked_until,
                } => {
                    counts.push(attempts);
                    locks.push(locked_until);
                }
                AttemptCount::Refused { locked_until } => {
                    return Ok(refused(locked_until, now, counts));
                }
            }
        }
    }
    Ok(Admission::Admitted { counts, locks })
}

/// After a success: the account's failures are forgotten and the address gets its attempt
/// back (its other attempts stand: a success proves nothing about them).
pub async fn settle_success(
    store: &dyn ThrottleStore,
    account_key: &str,
    address: Option<(&str, &Policy)>,
) -> StoreResult<()> {
    store.settle_success(Some(account_key), address).await
}

/// Whether a refusal counted as the `n`-th in its window is written to the audit log: the
/// first, then every power of ten. A flood of a million refusals from one address leaves
/// seven events (each saying how many it stands for), not a million rows.
pub fn worth_recording(n: i64) -> bool {
    if n < 1 {
        return false;
    }
    let mut m = n;
    while m % 10 == 0 {
        m /= 10;
    }
    m == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_follows_the_rule() {
        let now = 1000;
        let p = LOGIN_ACCOUNT;
        for n in 1..=5 {
            assert_eq!(p.lock_after(n, now), 0, "attempt {n} is free");
        }
        assert_eq!(p.lock_after(6, now), now + 1);
        assert_eq!(p.lock_after(7, now), now + 2);
        assert_eq!(p.lock_after(10, now), now + 16);
        assert_eq!(p.lock_after(12, now), now + 60, "capped at max_delay");
        assert_eq!(p.lock_after(19, now), now + 60);
        assert_eq!(p.lock_after(20, now), now + 900, "lockout");
        assert_eq!(ADMIN_ANONYMOUS_IP.lock_after(1_000_000, now), 0);
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), "192.0.2.7");
        assert_eq!(address_key(mapped), "192.0.2.7");
    }

    #[test]
    fn refusals_are_recorded_at_the_first_and_every_power_of_ten() {
        let recorded: Vec<i64> = (0..=100_000).filter(|n| worth_recording(*n)).collect();
        assert_eq!(recorded, vec![1, 10, 100, 1000, 10_000, 100_000]);
    }
}
