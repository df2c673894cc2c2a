//! Signing keys as operators see them: the published set, and rotation by hand.
//!
//! A rotation by hand follows the same states as the automatic one (`keys::Keys::rotate`):
//! the new keys are `next`, published in JWKS for the publish-ahead window
//! (`LATCHKEY_KEY_PUBLISH_AHEAD`) before they sign, so that no relying party meets a `kid`
//! its cached JWKS lacks; the keys they replace then retire and stay published until every
//! token they signed has expired. `now` skips the window, for a key that may be compromised.
//! Other nodes pick the new keys up when the store's key version moves.

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::keys::Schedule;
use crate::protocol::OAuthError;
use crate::protocol::admin::{KeyListResponse, KeyRotation};

/// The keys this node publishes, newest first.
pub fn list(app: &App) -> KeyListResponse {
    KeyListResponse {
        keys: app.keys.current().published.clone(),
    }
}

/// Rotates every algorithm's key and answers the new published set.
pub async fn rotate(app: &App, rotation: KeyRotation) -> Result<KeyListResponse, OAuthError> {
    let publish_ahead = if rotation.now {
        0
    } else {
        Schedule::from_config(&app.config).publish_ahead
    };
    let starts = app
        .keys
        .rotate(app.store.as_ref(), app.now(), publish_ahead)
        .await?;
    audit::record(
        app,
        Event::new(Kind::KeysRotated)
            .detail("activates_at", starts)
            .detail("now", rotation.now),
    )
    .await;
    Ok(list(app))
}
