//! Remembered consent: which scopes a user already granted a client, and recording new ones
//! (incremental authorization: only the missing scopes are asked for).

use crate::protocol::Scope;
use crate::store::{ConsentRecord, ConsentStore, StoreResult};

/// The scopes of `requested` that `sub` has not yet granted to `client_id`.
pub async fn missing_scopes(
    store: &dyn ConsentStore,
    sub: &str,
    client_id: &str,
    requested: &Scope,
) -> StoreResult<Scope> {
    let granted = store
        .get_consent(sub, client_id)
        .await?
        .map(|c| Scope::parse_lenient(&c.scope))
        .unwrap_or_default();
    Ok(requested.difference(&granted))
}

/// Adds `scope` to what `sub` granted `client_id`.
pub async fn grant(
    store: &dyn ConsentStore,
    sub: &str,
    client_id: &str,
    scope: &Scope,
    now: i64,
) -> StoreResult<()> {
    let existing = store
        .get_consent(sub, client_id)
        .await?
        .map(|c| Scope::parse_lenient(&c.scope))
        .unwrap_or_default();
    store
        .save_consent(&ConsentRecord {
            user_sub: sub.to_owned(),
            client_id: client_id.to_owned(),
            scope: existing.union(scope).to_string(),
            updated_at: now,
        })
        .await
}
