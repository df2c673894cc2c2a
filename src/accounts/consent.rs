//! Remembered consent: which scopes a user already granted a client, and recording new ones
//! (incremental authorization: only the missing scopes are asked for).

use crate::protocol::Scope;
use crate::store::{ConsentStore, StoreResult};

/// The scopes of `requested` that `sub` has not yet granted to `client_id`.
pub async fn missing_scopes(
    store: &dyn ConsentStore,
    sub: &str,
    client_id: &str,
    requested: &Scope,
) -> StoreResult<Scope> {
    let granted = store.get_consent(sub, client_id).await?;
    Ok(missing_from(
        granted.as_ref().map(|c| c.scope.as_str()),
        requested,
    ))
}

/// The scopes of `requested` not in `granted` (what the user granted before, if anything).
pub fn missing_from(granted: Option<&str>, requested: &Scope) -> Scope {
    requested.difference(&granted.map(Scope::parse_lenient).unwrap_or_default())
}
