//! Upstream identity providers ("Log in with …"): Latchkey as a relying party toward another
//! OpenID provider (`kind: "oidc"`) or plain OAuth 2.0 server (`kind: "oauth2"`).
//!
//! - `discovery`: what an upstream's endpoints and keys are (discovery fetched under the
//!   outbound rules, cached per node and refreshed; the JWKS again on an unknown `kid`).
//! - `flow`: the round trip. `begin` moves the pending interaction to the upstream stage
//!   (`authorize::flow::Stage::Upstream`) and sends the browser away with PKCE S256, `state`
//!   and `nonce`; what the callback needs travels sealed in a short-lived cookie bound to the
//!   browser (no row per login, any node finishes it). `callback` checks `state`, RFC 9207
//!   `iss`, redeems the code, verifies the ID token with the `openidconnect` crate
//!   (signature, `iss`, `aud`, `exp`, `nonce`; `azp` here), and resumes the interaction.
//! - `accounts`: which local user an upstream identity is (linked, linked by verified email,
//!   or created just in time), never more than one.
//!
//! Nothing here knows HTTP: `http::ui::upstream` translates. Failures never become a 5xx: the
//! flow ends at the client with `access_denied` or `temporarily_unavailable`.

pub mod accounts;
pub mod discovery;
pub mod flow;

use crate::app::App;
use crate::crypto::{SealError, Sealer};
use crate::protocol::OAuthError;

/// The master-key subkey purpose for upstream client secrets at rest.
pub const SECRET_PURPOSE: &[u8] = b"latchkey upstream secret v1";
/// The master-key subkey purpose for the round trip's sealed cookie.
pub const TRIP_PURPOSE: &[u8] = b"latchkey upstream trip v1";

/// A node's upstream state: the two sealers and the cache of discovered providers.
pub struct Upstreams {
    secrets: Sealer,
    trips: Sealer,
    pub providers: discovery::ProviderCache,
}

impl Upstreams {
    pub fn new(master_key: &[u8; 32]) -> Result<Self, SealError> {
        Ok(Upstreams {
            secrets: Sealer::for_purpose(master_key, SECRET_PURPOSE)?,
            trips: Sealer::for_purpose(master_key, TRIP_PURPOSE)?,
            providers: discovery::ProviderCache::default(),
        })
    }

    /// Drops what this node cached of an upstream (after it was replaced or deleted here;
    /// other nodes notice a changed issuer themselves, and refresh within the cache's TTL).
    pub fn forget(&self, id: &str) {
        self.providers.forget(id);
    }
}

/// Where an upstream sends its users back: `{issuer}/upstream/{id}/callback`, from the
/// configured issuer alone.
pub fn redirect_uri(issuer: &str, id: &str) -> String {
    format!("{}/upstream/{id}/callback", issuer.trim_end_matches('/'))
}

/// Seals an upstream's client secret for storage; the upstream id is the associated data,
/// so a sealed secret opens only for the row it was written for.
pub fn seal_secret(app: &App, id: &str, secret: &str) -> Result<Vec<u8>, OAuthError> {
    app.upstreams
        .secrets
        .seal(secret.as_bytes(), id.as_bytes())
        .map_err(OAuthError::server_error)
}

/// Opens a stored client secret.
pub fn open_secret(app: &App, id: &str, sealed: &[u8]) -> Result<String, OAuthError> {
    let plain = app
        .upstreams
        .secrets
        .open(sealed, id.as_bytes())
        .map_err(OAuthError::server_error)?;
    String::from_utf8(plain).map_err(OAuthError::server_error)
}
