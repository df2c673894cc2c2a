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

/// One argon2id hash (a verification or a new hash) took `cpu_seconds` of its thread's CPU.
/// Exported as a histogram: its `_sum` is the CPU spent hashing passwords, so operators (and
/// bench/) can tell it from everything else the process does.
pub fn password_hashed(cpu_seconds: f64) {
    metrics::histogram!("latchkey_password_hash_cpu_seconds").record(cpu_seconds);
}

/// CPU time of the calling thread so far, in seconds (Linux: `/proc/thread-self/schedstat`,
/// nanoseconds on the CPU). `None` where that is not available.
pub fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}
