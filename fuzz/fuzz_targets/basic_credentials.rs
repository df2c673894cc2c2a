//! `client_auth::parse_basic` (the `Authorization: Basic` header of client_secret_basic) on
//! arbitrary strings.
//!
//! Properties: it never panics; only the `Basic` scheme (any case) is claimed; accepted
//! credentials have a non-empty client id, and encoding them again the way RFC 6749 §2.3.1
//! says (form-urlencode each part, join with `:`, base64) parses back to the same pair.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey::client_auth::parse_basic;
use libfuzzer_sys::fuzz_target;

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let Some(result) = parse_basic(&header) else {
        return;
    };
    let scheme = header.trim().split(' ').next().unwrap_or_default();
    assert!(
        scheme.eq_ignore_ascii_case("basic"),
        "claimed a non-Basic header"
    );
    if let Ok((id, secret)) = result {
        assert!(!id.is_empty(), "empty client id accepted");
        let again = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)))
        );
        // Re-encoding can only grow the value past the length limit; otherwise it must
        // round-trip.
        match parse_basic(&again) {
            Some(Ok(pair)) => assert_eq!(pair, (id, secret)),
            other => assert!(again.len() > 4096 + 6, "round trip failed: {other:?}"),
        }
    }
});
