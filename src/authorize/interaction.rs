//! Pending interactions, sealed. Between an authorization request and its end (a code, or an
//! error sent to the client) the user goes through the login and consent pages; the validated
//! request travels with them, sealed with AES-256-GCM under a subkey of the master key, as the
//! `interaction` query parameter and form field. Any node opens it; none stores or looks it
//! up, which spares a login flow an insert, four reads and a delete.
//!
//! The seal's associated data is the hash of the browser's binding cookie, so an interaction
//! opens only in the browser that started it; it carries its own expiry and its stage
//! (`flow::Stage`, what it still owes). The database only
//! remembers which interactions finished (`store::InteractionStore`), by a random id inside
//! the seal, so that each finishes at most once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::flow::Stage;
use crate::crypto::{Sealer, SecretHasher, random_token};
use crate::protocol::OAuthError;
use crate::protocol::authorization::AuthorizationRequest;

/// The master-key subkey purpose for sealing interactions.
pub const SEALING_PURPOSE: &[u8] = b"latchkey interaction sealing v1";

/// How long a user has to finish logging in and consenting.
pub const INTERACTION_TTL: i64 = 30 * 60;

/// Longest sealed interaction, in characters: about 4.5 KiB of request parameters. It rides
/// in the login and consent URLs, which must stay under the 8 KiB request line common
/// proxies accept (nginx's default), so a larger request is refused (`invalid_request`, back
/// to the client) rather than sent on to break at a proxy.
pub const MAX_SEALED_LEN: usize = 6 * 1024;

/// What is sealed (written from borrowed parts; read back as `Sealed`).
#[derive(Serialize)]
struct ToSeal<'a> {
    /// Random; names the interaction when it finishes.
    id: &'a str,
    expires_at: i64,
    stage: &'a Stage,
    request: &'a AuthorizationRequest,
}

#[derive(Deserialize)]
struct Sealed {
    id: String,
    expires_at: i64,
    stage: Stage,
    request: AuthorizationRequest,
}

/// An opened interaction.
pub struct Opened {
    /// The id its finish is recorded under.
    pub id: String,
    pub expires_at: i64,
    pub stage: Stage,
    pub request: AuthorizationRequest,
}

/// What sealing and opening needs: the key, the hasher of the browser binding, and the time.
/// Nothing else of the node's state.
pub struct Seals<'a> {
    pub sealer: &'a Sealer,
    pub hasher: &'a SecretHasher,
    pub now: i64,
}

impl Seals<'_> {
    fn associated_data(&self, browser_binding: &str) -> Vec<u8> {
        self.hasher.hash(browser_binding)
    }

    /// Seals a new interaction at `stage` for the browser holding `browser_binding`; the
    /// result is URL-safe.
    pub fn seal(
        &self,
        request: &AuthorizationRequest,
        browser_binding: &str,
        stage: &Stage,
    ) -> Result<String, OAuthError> {
        let sealed = ToSeal {
            id: &random_token(16),
            expires_at: self.now + INTERACTION_TTL,
            stage,
            request,
        };
        self.seal_parts(&sealed, browser_binding)
    }

    /// The same interaction (same id, same expiry), moved on to `stage`: after a login, the
    /// consent page gets an interaction bound to the session that login started.
    pub fn advance(
        &self,
        id: &str,
        expires_at: i64,
        request: &AuthorizationRequest,
        browser_binding: &str,
        stage: &Stage,
    ) -> Result<String, OAuthError> {
        let sealed = ToSeal {
            id,
            expires_at,
            stage,
            request,
        };
        self.seal_parts(&sealed, browser_binding)
    }

    fn seal_parts(&self, sealed: &ToSeal<'_>, browser_binding: &str) -> Result<String, OAuthError> {
        let plain = serde_json::to_vec(sealed).map_err(OAuthError::server_error)?;
        let bytes = self
            .sealer
            .seal(&plain, &self.associated_data(browser_binding))
            .map_err(OAuthError::server_error)?;
        let text = URL_SAFE_NO_PAD.encode(bytes);
        if text.len() > MAX_SEALED_LEN {
            return Err(OAuthError::invalid_request(
                "the authorization request is too large",
            ));
        }
        Ok(text)
    }

    /// Opens a sealed interaction. `None` when it is malformed, was sealed under another key
    /// or for another browser, or has expired.
    pub fn open(&self, sealed: &str, browser_binding: &str) -> Option<Opened> {
        if sealed.is_empty() || sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let plain = self
            .sealer
            .open(&bytes, &self.associated_data(browser_binding))
            .ok()?;
        let opened: Sealed = serde_json::from_slice(&plain).ok()?;
        if opened.expires_at <= self.now {
            return None;
        }
        Some(Opened {
            id: opened.id,
            expires_at: opened.expires_at,
            stage: opened.stage,
            request: opened.request,
        })
    }
}
