//! The background work that keeps a node in step with the others and the database tidy:
//! polling the change counters (client cache, signing keys), rebuilding the key set when a
//! key changes state, scheduling key rotations, and purging expired rows. Started by
//! `App::spawn_background_tasks`.
//!
//! Purging adapts to the backlog: each kind of row is deleted in batches that double while
//! they come back full (`Batching`), each batch one short statement, until a batch comes
//! back short or the pass's time budget is spent; a pass that leaves rows behind is followed
//! by the next one after `CATCH_UP_INTERVAL` rather than `HOUSEKEEPING_INTERVAL`. Every node
//! purges: on Postgres the batches of nodes purging at once are disjoint (`FOR UPDATE SKIP
//! LOCKED`), so no row is counted twice and no node waits for another's locks.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::app::{App, retired_key_publication};
use crate::keys::Schedule;
use crate::store::{ChangeVersions, Expiring, Store, StoreResult};

/// How often a node polls the store's change counters. A client change or key rotation made
/// through any node is seen by every node within this interval (plus one query).
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often expired rows are purged when the last pass left none behind.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// How soon the next pass starts when the last one ran out of time with rows left.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);
/// The first batch of each kind in a pass (kept for callers that purge by hand).
pub const HOUSEKEEPING_BATCH: u32 = 1000;
/// How long one pass may keep purging before it lets the node rest.
pub const PASS_BUDGET: Duration = Duration::from_secs(10);
/// Expired rows still present are counted up to this many per table, for `/metrics`.
pub const BACKLOG_CAP: u32 = 1_000_000;

/// Batch sizes of a pass: the first statement of each kind deletes at most `initial` rows,
/// and the size doubles while batches come back full, up to `max`. At `max` (20,000 rows) one
/// statement takes tens of milliseconds on Postgres, so no lock is held long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub initial: u32,
    pub max: u32,
}

pub const PURGE_BATCHING: Batching = Batching {
    initial: HOUSEKEEPING_BATCH,
    max: 20_000,
};

/// What draining one kind did in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drained {
    pub rows: u64,
    pub statements: u32,
    /// The last batch came back short: nothing of this kind was left expired.
    pub done: bool,
}

/// Deletes with `purge(batch)` until a batch comes back short or `deadline` passes (after at
/// least one statement), doubling the batch while they come back full.
pub async fn drain<F, Fut>(
    mut purge: F,
    batching: Batching,
    deadline: Instant,
) -> StoreResult<Drained>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = StoreResult<u64>>,
{
    let mut batch = batching.initial.max(1);
    let mut drained = Drained::default();
    loop {
        let rows = purge(batch).await?;
        drained.rows += rows;
        drained.statements += 1;
        if rows < u64::from(batch) {
            drained.done = true;
            return Ok(drained);
        }
        if Instant::now() >= deadline {
            return Ok(drained);
        }
        batch = batch
            .saturating_mul(2)
            .min(batching.max.max(batching.initial));
    }
}

/// One pass over every kind of expiring row, each drained in turn within `budget` (every
/// kind gets at least one statement). Returns what each table gave, by table name.
pub async fn purge_pass(
    store: &dyn Store,
    now: i64,
    batching: Batching,
    budget: Duration,
) -> StoreResult<Vec<(&'static str, Drained)>> {
    let deadline = Instant::now() + budget;
    let mut report = Vec::new();
    for kind in Expiring::ALL {
        let drained = drain(|b| store.purge_kind(kind, now, b), batching, deadline).await?;
        report.push((kind.table(), drained));
    }
    // Finished outbox items stay visible (the admin API's delivery status) for a week.
    let outbox_before = now - OUTBOX_RETENTION;
    let others: [(&'static str, Purge<'_>); 5] = [
        ("used_value", Box::new(move |b| store.purge_used(now, b))),
        (
            "pushed_request",
            Box::new(move |b| store.purge_pushed(now, b)),
        ),
        (
            "device_authorization",
            Box::new(move |b| store.purge_devices(now, b)),
        ),
        (
            "initial_access_token",
            Box::new(move |b| store.purge_initial_tokens(now, b)),
        ),
        (
            "outbox",
            Box::new(move |b| store.purge_outbox(outbox_before, b)),
        ),
    ];
    for (table, purge) in others {
        let drained = drain(purge, batching, deadline).await?;
        report.push((table, drained));
    }
    Ok(report)
}

/// A purge of one of the concerns that keep their own purge statement.
type Purge<'a> = Box<
    dyn FnMut(u32) -> std::pin::Pin<Box<dyn Future<Output = StoreResult<u64>> + Send + 'a>>
        + Send
        + 'a,
>;
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

/// Deletes expired rows, adapting to the backlog (see the module comment), and publishes
/// what it did as metrics (`telemetry::purged`, `telemetry::purge_backlog`).
pub async fn housekeeping(app: App) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        wait = HOUSEKEEPING_INTERVAL;
        let started = Instant::now();
        match purge_pass(app.store.as_ref(), app.now(), PURGE_BATCHING, PASS_BUDGET).await {
            Ok(report) => {
                let seconds = started.elapsed().as_secs_f64();
                let mut rows = 0;
                for (table, drained) in &report {
                    crate::telemetry::purged(table, drained.rows);
                    rows += drained.rows;
                    if !drained.done {
                        wait = CATCH_UP_INTERVAL;
                    }
                }
                crate::telemetry::purge_pass(rows, seconds);
                if rows > 0 {
                    tracing::debug!(rows, seconds, "purged expired rows");
                }
            }
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        for kind in Expiring::ALL {
            match app
                .store
                .expired_backlog(kind, app.now(), BACKLOG_CAP)
                .await
            {
                Ok(n) => crate::telemetry::purge_backlog(kind.table(), n),
                Err(e) => tracing::warn!(error = %e, "could not count the housekeeping backlog"),
            }
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
