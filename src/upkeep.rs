//! The background work that keeps a node in step with the others and the database tidy:
//! polling the change counters (client cache, signing keys), rebuilding the key set when a
//! key changes state, scheduling key rotations, and purging expired rows. Started by
//! `App::spawn_background_tasks`.

use std::time::Duration;

use crate::app::{App, retired_key_publication};
use crate::keys::Schedule;
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
        // A key changes state at a moment written in it (a `next` key activates, a retired
        // one leaves JWKS): every node rebuilds its set then, without any write to notice.
        if (seen.is_none() || versions.keys != previous.keys || app.keys.is_stale(app.now()))
            && let Err(e) = app.keys.reload(app.store.as_ref(), app.now()).await
        {
            tracing::warn!(error = %e, "could not reload signing keys");
            continue;
        }
        seen = Some(versions);
    }
}

/// How often a node checks whether a key rotation is due. The check reads only the node's
/// in-memory key set; the store is asked only when a rotation is due.
pub const KEY_SCHEDULE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Rotates signing keys on the configured schedule (`LATCHKEY_KEY_ROTATION_INTERVAL`). Every
/// node runs it; the store lets exactly one node insert each successor.
pub async fn rotate_keys_on_schedule(app: App) {
    let schedule = Schedule::from_config(&app.config);
    if schedule.interval == 0 {
        return;
    }
    let mut interval = tokio::time::interval(KEY_SCHEDULE_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match app
            .keys
            .schedule_due(app.store.as_ref(), app.now(), schedule)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(keys = n, "scheduled the next signing keys");
                crate::audit::record(
                    &app,
                    crate::audit::Event::new(crate::audit::Kind::KeysScheduled),
                )
                .await;
            }
            Err(e) => tracing::warn!(error = %e, "could not schedule the next signing keys"),
        }
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
