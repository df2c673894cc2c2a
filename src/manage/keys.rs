//! Signing keys as operators see them: the published set, and rotation.
//!
//! Rotation generates a new key for every algorithm and retires the old ones; a retired key
//! stays published in JWKS until every token it signed has expired (`keys::Keys::rotate`).
//! Other nodes pick the new keys up when the store's key version moves.

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::admin::KeyListResponse;

/// The keys this node publishes, newest first.
pub fn list(app: &App) -> KeyListResponse {
    KeyListResponse {
        keys: app.keys.current().published.clone(),
    }
}

/// Rotates every algorithm's key and answers the new published set.
pub async fn rotate(app: &App) -> Result<KeyListResponse, OAuthError> {
    app.keys.rotate(app.store.as_ref(), app.now()).await?;
    audit::record(app, Event::new(Kind::KeysRotated)).await;
    Ok(list(app))
}
