//! How many client connections may be open: in total, and from one address. A connection
//! is admitted (or refused) once, as it is accepted, and holds its `Admission` until it
//! closes; nothing here runs per request.
//!
//! Past a cap the connection is accepted and closed at once, unread. Leaving it unaccepted
//! would not refuse it: the kernel completes the handshake anyway and the client waits in
//! the listen backlog, which is how clients were locked out before these caps.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ConnectionSettings;

/// The open connections, counted against `LATCHKEY_MAX_CONNECTIONS` and
/// `LATCHKEY_MAX_CONNECTIONS_PER_IP`.
pub(crate) struct ConnectionLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    max_per_address: usize,
    /// Held only to the total cap: a proxy carries many clients' connections, and capping
    /// its address would cap all of them together. It is expected to limit each client
    /// itself.
    exempt: Vec<IpAddr>,
    warnings: RefusalWarnings,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerAddress,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerAddress => "per_address",
        }
    }
}

/// One admitted connection's place under the caps, given back when it is dropped.
pub(crate) struct Admission {
    _total: OwnedSemaphorePermit,
    address: Option<(Arc<ConnectionLimits>, AddressKey)>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((limits, key)) = self.address.take() {
            let mut counts = limits.lock_counts();
            if let Some(count) = counts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

impl ConnectionLimits {
    /// `max_total` is the total cap actually enforced (see `descriptor_budget`).
    pub(crate) fn new(
        settings: &ConnectionSettings,
        max_total: usize,
        trusted_proxies: &[IpAddr],
    ) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_address: Mutex::new(HashMap::new()),
            max_per_address: settings.max_connections_per_ip,
            exempt: trusted_proxies.iter().map(|ip| ip.to_canonical()).collect(),
            warnings: RefusalWarnings::new(),
        })
    }

    /// Admits a connection from `peer`, or says which cap it is over. Refusals are counted
    /// in `latchkey_connections_refused_total` and logged at most once a minute per cap, so
    /// that a flood does not also flood the log.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admission, Refusal> {
        let result = self.try_admit(peer);
        if let Err(refusal) = result {
            crate::telemetry::connection_refused(refusal.label());
            self.warnings.warn(refusal, peer, self);
        }
        result
    }

    fn try_admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admission, Refusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let peer = peer.to_canonical();
        if self.exempt.contains(&peer) {
            return Ok(Admission {
                _total: total,
                address: None,
            });
        }
        let key = AddressKey::of(peer);
        let mut counts = self.lock_counts();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max_per_address {
            // The total permit is given back as `total` drops here.
            return Err(Refusal::PerAddress);
        }
        *count += 1;
        drop(counts);
        Ok(Admission {
            _total: total,
            address: Some((self.clone(), key)),
        })
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // The map holds plain counts, updated in one step each: a panic elsewhere while
        // the lock was held cannot have left it half-changed.
        self.per_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves once every admitted connection has closed (used to drain at shutdown).
    pub(crate) async fn all_closed(&self) {
        let Ok(count) = u32::try_from(self.max_total) else {
            return;
        };
        // The semaphore is never closed, so this fails only if it were; either way there
        // is nothing left to wait for.
        let _ = self.total.acquire_many(count).await;
    }
}

/// What the per-address cap counts by: an IPv4 address, or the /64 an IPv6 address is in
/// (a /64 is what one subscriber or host typically gets, and picking another address in it
/// costs an attacker nothing). IPv4-mapped IPv6 addresses count as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddressKey(IpAddr);

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

/// Logs a refusal at most once a minute per cap.
struct RefusalWarnings {
    started: Instant,
    /// Seconds since `started` (plus one, so that 0 means "never") of the last warning.
    last: [AtomicU64; 2],
}

impl RefusalWarnings {
    const INTERVAL: Duration = Duration::from_secs(60);

    fn new() -> Self {
        RefusalWarnings {
            started: Instant::now(),
            last: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn warn(&self, refusal: Refusal, peer: IpAddr, limits: &ConnectionLimits) {
        let slot = &self.last[refusal as usize];
        let now = self.started.elapsed().as_secs() + 1;
        let last = slot.load(Ordering::Relaxed);
        if last != 0 && now < last + Self::INTERVAL.as_secs() {
            return;
        }
        if slot
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        match refusal {
            Refusal::Total => tracing::warn!(
                max = limits.max_total,
                "refusing new connections: LATCHKEY_MAX_CONNECTIONS reached (logged once a minute)"
            ),
            Refusal::PerAddress => tracing::warn!(
                %peer,
                max = limits.max_per_address,
                "refusing new connections from an address: LATCHKEY_MAX_CONNECTIONS_PER_IP reached (logged once a minute)"
            ),
        }
    }
}

/// Descriptors kept back from client connections: the database pool (up to three each: an
/// SQLite connection holds its file, its WAL and its shared memory), plus the listener,
/// standard streams, the runtime's own and outbound requests.
pub(crate) fn reserved_descriptors(database_max_connections: u32) -> u64 {
    3 * u64::from(database_max_connections) + 64
}

/// The total cap to enforce: the configured one, lowered when the process may not open that
/// many descriptors. Without this a small descriptor limit (1024 is a common default) is
/// reached first: `accept` fails with EMFILE, new clients wait in the backlog, and the
/// database pool cannot open connections for the requests already accepted. The cap is
/// then the descriptor limit less `reserved`, but at least half the limit (the reserve is
/// generous, and a limit too small for it should still serve some clients).
/// `soft_limit` is the descriptor limit in force (`None`: unknown or unlimited).
pub(crate) fn descriptor_budget(
    configured: usize,
    soft_limit: Option<u64>,
    reserved: u64,
) -> usize {
    let Some(soft) = soft_limit else {
        return configured;
    };
    let available = soft.saturating_sub(reserved).max(soft / 2).max(1);
    usize::try_from(available).map_or(configured, |available| configured.min(available))
}

/// Raises the soft descriptor limit towards `wanted` (never past the hard limit, which only
/// the administrator may raise) and returns the soft limit then in force. The soft limit
/// stays low by default for programs that use `select(2)`; tokio uses epoll/kqueue, for
/// which a higher one is safe.
#[cfg(unix)]
// `rlim_t` is `u64` on Linux and macOS but not on every unix, hence the casts.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn raise_descriptor_limit(wanted: u64) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let wanted = wanted as libc::rlim_t;
    if limit.rlim_cur < wanted {
        let target = if limit.rlim_max == libc::RLIM_INFINITY {
            wanted
        } else {
            wanted.min(limit.rlim_max)
        };
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given, which lives on this frame.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    Some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
pub(crate) fn raise_descriptor_limit(_wanted: u64) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests;
