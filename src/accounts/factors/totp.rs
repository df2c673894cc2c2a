//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of drift either way) over
//! `totp-rs`; the QR code of the `otpauth://` URI as inline SVG over `qrcode`. Nothing here
//! stores anything: `factors` seals the secret and records the accepted step.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds per time step.
pub const STEP: u64 = 30;
/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Steps of drift accepted either way (RFC 6238 §5.2 recommends at most one).
pub const SKEW: u16 = 1;
/// Bytes of a new secret: 160 bits, as RFC 4226 §4 recommends.
pub const SECRET_BYTES: usize = 20;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret in base32 (RFC 4648, no padding), as authenticator apps take it typed in.
pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The label parts of the `otpauth://` URI may not hold a colon.
fn label(s: &str) -> String {
    let cleaned: String = s.chars().filter(|c| *c != ':').take(64).collect();
    if cleaned.is_empty() {
        "account".to_owned()
    } else {
        cleaned
    }
}

fn build(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .with_issuer(Some(label(issuer)))
        .with_account_name(label(account))
        .build()
        .ok()
}

/// The `otpauth://totp/…` URI (the Key Uri Format authenticator apps scan).
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    build(secret, issuer, account)?.to_url().ok()
}

/// The time step `code` is valid for at `now` (Unix seconds), within the drift: `None` for a
/// wrong or malformed code. Whether that step was used before is the store's decision.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let now = u64::try_from(now).ok()?;
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = build(secret, "latchkey", "user")?;
    totp.check(code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// The QR code of `uri` as an inline SVG element (no script, no external reference, so the
/// page's CSP allows it).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration: the SVG is embedded in HTML.
    Some(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1, truncated to six digits.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        let totp = build(secret, "i", "a").unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(totp.generate(1_111_111_109).to_string(), "081804");
        assert_eq!(totp.generate(1_234_567_890).to_string(), "005924");
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        assert_eq!(
            matching_step(secret, "287082", 59 + 30),
            Some(1),
            "one step late"
        );
        assert_eq!(
            matching_step(secret, "287082", 59 - 30),
            Some(1),
            "one step early"
        );
        assert_eq!(
            matching_step(secret, "287082", 59 + 60),
            None,
            "two steps late"
        );
        assert_eq!(matching_step(secret, "28708", 59), None);
        assert_eq!(matching_step(secret, "28708a", 59), None);
    }

    #[test]
    fn the_uri_and_the_qr_code() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "login.example", "alice:x").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", base32(&secret))),
            "{uri}"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(!svg.contains("<script"));
    }
}
