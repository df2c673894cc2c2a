//! The admin API over HTTP: bearer authentication, client registration and management
//! (RFC 7591 / RFC 7592), users and what changing them ends, and signing keys. One file per
//! concern; `mod.rs` holds what more than one of them checks, and no tests. Requests go
//! through `crate::helpers` (`TestApp::admin`, `admin_request`, `admin_raw`).

use serde_json::Value;

use crate::helpers::PASSWORD;

mod auth;
mod clients;
mod keys;
mod openapi;
mod secrets;
mod sessions;
mod users;

/// Asserts that an answer about a user shows no password, hash or password field.
fn assert_no_password(value: &Value, what: &str) {
    let text = value.to_string();
    assert!(!text.contains(PASSWORD), "{what}: {text}");
    assert!(!text.contains("argon2"), "{what}: {text}");
    // No password field (the `password_reset_required` flag is not one).
    let without_flag = text.replace("password_reset_required", "");
    assert!(!without_flag.contains("password"), "{what}: {text}");
}
