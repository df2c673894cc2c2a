//! Server nonces for DPoP proofs (RFC 9449 §8), valid on every node without shared state: a
//! nonce is the MAC of a time window's number under a subkey of the master key, which every
//! node holds. A node accepts the nonce of its current window and of the windows on either
//! side (a client that got a nonce just before the window turned, or from a node whose clock
//! runs a little ahead), so a nonce lives between one and two windows and then changes.

use crate::crypto::{SecretHasher, constant_time_eq};

/// Seconds a nonce is handed out for; it is accepted for one more window after that.
pub const WINDOW: i64 = 60;

/// The subkey's purpose: what is MACed here, no other use of the master key reproduces.
const PURPOSE: &[u8] = b"latchkey dpop nonce v1";

/// Issues and checks DPoP nonces.
#[derive(Clone)]
pub struct DpopNonces {
    mac: SecretHasher,
}

impl DpopNonces {
    pub fn new(master_key: &[u8; 32]) -> Self {
        Self {
            mac: SecretHasher::for_purpose(master_key, PURPOSE),
        }
    }

    /// The nonce to hand out at `now` (in `DPoP-Nonce`).
    pub fn current(&self, now: i64) -> String {
        self.for_window(now.div_euclid(WINDOW))
    }

    /// Whether `nonce` is the nonce of the window of `now` or of a neighbouring window.
    pub fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(WINDOW);
        // Every candidate is compared, so the time taken says nothing about which matched.
        let mut valid = false;
        for w in [window - 1, window, window + 1] {
            valid |= constant_time_eq(self.for_window(w).as_bytes(), nonce.as_bytes());
        }
        valid
    }

    fn for_window(&self, window: i64) -> String {
        self.mac.mac_parts(&[b"window", &window.to_be_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_valid_for_its_window_and_its_neighbours_only() {
        let nonces = DpopNonces::new(&[3u8; 32]);
        let now = 1_700_000_000;
        let nonce = nonces.current(now);
        assert!(nonces.is_valid(&nonce, now));
        assert!(nonces.is_valid(&nonce, now + WINDOW));
        assert!(nonces.is_valid(&nonce, now - WINDOW));
        assert!(!nonces.is_valid(&nonce, now + 2 * WINDOW + 1));
        assert!(!nonces.is_valid(&nonce, now - 2 * WINDOW - 1));
        assert_ne!(
            nonce,
            nonces.current(now + 3 * WINDOW),
            "nonces change over time"
        );
        assert!(!nonces.is_valid("", now));
        assert!(!nonces.is_valid("made-up", now));
    }

    #[test]
    fn another_master_key_makes_other_nonces() {
        let now = 1_700_000_000;
        let a = DpopNonces::new(&[3u8; 32]);
        let b = DpopNonces::new(&[4u8; 32]);
        assert!(!b.is_valid(&a.current(now), now));
        // Two nodes with the same master key agree.
        assert!(DpopNonces::new(&[3u8; 32]).is_valid(&a.current(now), now));
        // Not the secret hasher's MAC of the same input (a subkey of its own).
        let hasher = SecretHasher::new(&[3u8; 32]);
        let window = now.div_euclid(WINDOW);
        assert_ne!(
            hasher.mac_parts(&[b"window", &window.to_be_bytes()]),
            a.current(now)
        );
    }
}
