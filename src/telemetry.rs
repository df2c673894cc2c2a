//! Counters the protocol core bumps, through the `metrics` facade; `http::metrics` installs
//! the Prometheus recorder and serves them with the HTTP series at `/metrics`.

/// A token response was sent for `grant`.
pub fn token_issued(grant: &'static str) {
    metrics::counter!("latchkey_tokens_issued_total", "grant" => grant).increment(1);
}

/// A login attempt failed (wrong credentials, disabled account, or throttled).
pub fn login_failed() {
    metrics::counter!("latchkey_login_failures_total").increment(1);
}

/// A code or refresh token was presented twice and its family revoked.
pub fn reuse_detected(kind: &'static str) {
    metrics::counter!("latchkey_reuse_detections_total", "kind" => kind).increment(1);
}
