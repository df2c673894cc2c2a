//! Reading the audit log: newest first, filtered by kind, user, client and time, paged by
//! event id.

use crate::app::App;
use crate::protocol::OAuthError;
use crate::protocol::admin::{EventResponse, ListResponse};
use crate::store::AuditFilter;

/// Which events to list (every set field must match), newest first.
pub use crate::store::AuditFilter as Filter;

/// One page of events matching `filter` (whose `limit` the caller has checked).
pub async fn list(
    app: &App,
    filter: &AuditFilter,
) -> Result<ListResponse<EventResponse>, OAuthError> {
    let events = app.store.list_events(filter).await?;
    let next = if events.len() as u64 == u64::from(filter.limit) {
        events.last().map(|e| e.event_id.to_string())
    } else {
        None
    };
    Ok(ListResponse {
        items: events
            .into_iter()
            .map(|e| EventResponse {
                event_id: e.event_id,
                occurred_at: e.occurred_at,
                kind: e.kind,
                sub: e.user_sub,
                client_id: e.client_id,
                ip: e.ip,
                detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
        next,
    })
}
