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

/// An upstream login ended with `outcome` (`login`, `created`, `linked`, `denied`,
/// `unavailable`, `refused`) for the upstream `upstream` (an id the operator chose, so the
/// label set stays as small as the list of upstreams).
pub fn upstream_login(upstream: &str, outcome: &'static str) {
    metrics::counter!("latchkey_upstream_logins_total", "upstream" => upstream.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A code or refresh token was presented twice and its family revoked.
pub fn reuse_detected(kind: &'static str) {
    metrics::counter!("latchkey_reuse_detections_total", "kind" => kind).increment(1);
}

/// A refresh token the latest rotation replaced came back within the reuse grace and was
/// answered with its successor again (a client retrying a lost answer).
pub fn refresh_retried() {
    metrics::counter!("latchkey_refresh_retries_total").increment(1);
}

/// Housekeeping deleted `rows` expired rows of `table` in its last pass.
pub fn purged(table: &'static str, rows: u64) {
    metrics::counter!("latchkey_housekeeping_purged_rows_total", "table" => table).increment(rows);
}

/// A housekeeping pass deleted `rows` rows in all in `seconds`: the throughput gauge is its
/// rate (0 when it found nothing), and the pass durations are a histogram, so that
/// `rate(purged_rows_total) / rate(pass_duration_seconds_sum)` is the throughput over any
/// window.
pub fn purge_pass(rows: u64, seconds: f64) {
    let throughput = if rows > 0 && seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    };
    metrics::gauge!("latchkey_housekeeping_purge_rows_per_second").set(throughput);
    metrics::histogram!("latchkey_housekeeping_pass_duration_seconds").record(seconds);
}

/// Expired rows of `table` still present after a pass (counted up to `upkeep::BACKLOG_CAP`).
pub fn purge_backlog(table: &'static str, rows: u64) {
    metrics::gauge!("latchkey_housekeeping_backlog_rows", "table" => table).set(rows as f64);
}

/// A new connection was refused because `cap` (`total` or `per_address`) was reached.
pub fn connection_refused(cap: &'static str) {
    metrics::counter!("latchkey_connections_refused_total", "cap" => cap).increment(1);
}

/// A connection was closed because it spent too long at `stage` (`tls_handshake`,
/// `request_head` or `idle`).
pub fn connection_timed_out(stage: &'static str) {
    metrics::counter!("latchkey_connections_timed_out_total", "stage" => stage).increment(1);
}

/// One argon2id hash (a verification or a new hash) took `cpu_seconds` of its thread's CPU.
/// Exported as a histogram: its `_sum` is the CPU spent hashing passwords, so operators (and
/// bench/) can tell it from everything else the process does.
pub fn password_hashed(cpu_seconds: f64) {
    metrics::histogram!("latchkey_password_hash_cpu_seconds").record(cpu_seconds);
}

/// A second factor was checked: `kind` (`totp`, `recovery_codes`, `passkey`) and `outcome`
/// (`used`, `failed`, `enrolled`; for passkeys also `clone_suspected`).
pub fn second_factor(kind: &'static str, outcome: &'static str) {
    metrics::counter!("latchkey_second_factor_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// CPU time of the calling thread so far, in seconds: `CLOCK_THREAD_CPUTIME_ID`, which the
/// kernel brings up to date when asked. (`/proc/thread-self/schedstat`, used before, is only
/// updated at scheduler events and ticks, so a hash timed with it lost up to a tick, about
/// 2 ms on average.) `None` where the clock is not available.
#[cfg(unix)]
pub fn thread_cpu_seconds() -> Option<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which lives on this stack
    // frame for the whole call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| now.tv_sec as f64 + now.tv_nsec as f64 / 1e9)
}

#[cfg(not(unix))]
pub fn thread_cpu_seconds() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_cpu_time_advances_with_work() {
        let before = super::thread_cpu_seconds().expect("a thread CPU clock");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let after = super::thread_cpu_seconds().unwrap();
        assert!(after > before, "{before} -> {after}");
    }
}
