//! The background work that keeps a node in step with the others and the database tidy:
//! polling the change counters (client cache, signing keys) and purging expired rows. Started
//! by `App::spawn_background_tasks`.

use std::time::Duration;

use crate::app::{App, retired_key_publication};
use crate::store::ChangeVersions;

/// How often a node polls the store's change counters. A client change or key rotation made
/// through any node is seen by every node within this interval (plus one query).
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often expired rows are purged, and how many per table per round.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
pub const HOUSEKEEPING_BATCH: u32 = 1000;
/// How long a delivered or failed outbox item is kept after it finished.
pub const OUTBOX_RETENTION: i64 = 7 * 24 * 3600;

/// Polls the change counters; clears the client cache and reloads keys when they move.
pub async fn watch_changes(app: App) {
    let mut seen: Option<ChangeVersions> = None;
    let mut interval = tokio::time::interval(CHANGE_POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let versions = match app.store.change_versions().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not poll change versions");
                // Nothing cached can be trusted to be current once polling fails.
                app.clients.clear();
                app.client_keys.clear();
                seen = None;
                continue;
            }
        };
        let previous = seen.unwrap_or_default();
        if seen.is_none() || versions.clients != previous.clients {
            app.clients.clear();
            app.client_keys.clear();
        }
        if (seen.is_none() || versions.keys != previous.keys)
            && let Err(e) = app.keys.reload(app.store.as_ref(), app.now()).await
        {
            tracing::warn!(error = %e, "could not reload signing keys");
            continue;
        }
        seen = Some(versions);
    }
}

/// Deletes expired rows in bounded batches. Every node may run it: the deletes are
/// idempotent and each takes only rows that are already dead.
pub async fn housekeeping(app: App) {
    let mut interval = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match app.store.purge_expired(app.now(), HOUSEKEEPING_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        if let Err(e) = app.store.purge_used(app.now(), HOUSEKEEPING_BATCH).await {
            tracing::warn!(error = %e, "housekeeping of used values failed");
        }
        // Finished outbox items stay visible (the admin API's delivery status) for a week.
        if let Err(e) = app
            .store
            .purge_outbox(app.now() - OUTBOX_RETENTION, HOUSEKEEPING_BATCH)
            .await
        {
            tracing::warn!(error = %e, "housekeeping of the outbox failed");
        }
        if let Err(e) = app.store.purge_pushed(app.now(), HOUSEKEEPING_BATCH).await {
            tracing::warn!(error = %e, "housekeeping of pushed requests failed");
        }
        if let Err(e) = app.store.purge_devices(app.now(), HOUSEKEEPING_BATCH).await {
            tracing::warn!(error = %e, "housekeeping of device authorizations failed");
        }
        if let Err(e) = app
            .store
            .purge_initial_tokens(app.now(), HOUSEKEEPING_BATCH)
            .await
        {
            tracing::warn!(error = %e, "housekeeping of initial access tokens failed");
        }
        // Retired keys past their publication window are dropped too, and the key set
        // reloaded so JWKS stops listing them.
        let cutoff = app.now() - retired_key_publication(&app.config);
        match app.store.delete_retired_keys(cutoff).await {
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = app.keys.reload(app.store.as_ref(), app.now()).await {
                    tracing::warn!(error = %e, "could not reload signing keys");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not delete retired keys"),
        }
    }
}
