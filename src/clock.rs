//! Time as an input. Every part of Latchkey asks the `Clock` in `AppState` for "now", so that
//! tests can move time forward (expiry, `max_age`) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the unit of every timestamp Latchkey stores or signs.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The wall clock plus an adjustable offset; used by tests to travel in time. A test can also
/// stop it (`freeze_at`), so that a burst of requests all happen in the same second however
/// slowly the machine runs them.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
    /// When non-zero, the wall-clock reading the clock is stopped at.
    frozen: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Stops the clock at `wall_clock` (seconds since the epoch, before the offset); it still
    /// moves by `advance`. Several nodes frozen at the same reading agree on "now".
    pub fn freeze_at(&self, wall_clock: i64) {
        self.frozen.store(wall_clock, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        let frozen = self.frozen.load(Ordering::SeqCst);
        let base = if frozen != 0 {
            frozen
        } else {
            SystemClock.now()
        };
        base + self.offset.load(Ordering::SeqCst)
    }
}
