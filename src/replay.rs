//! Values that may be used once (a client assertion's `jti`), recorded in the database in
//! batches.
//!
//! Every use needs a database write, since any node may see the value next. One statement and
//! one commit per value would make that write the cost of the whole request; instead the uses
//! that arrive while earlier batches are in flight are gathered into the next batch, one
//! statement for all of them (`ReplayStore::use_each`). Under light load a batch is one value
//! and nothing waits; under heavy load batches grow on their own. The database still decides
//! each value, so racing uses on any number of nodes still have exactly one winner. Nothing
//! is kept here but the uses in flight.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::{Store, StoreError, StoreResult};

/// The most values in one statement.
const MAX_BATCH: usize = 256;
/// How many batches may be in flight at once (each holds one pooled connection). One: the
/// uses that arrive during a batch's round trip all go into the next, so batches grow with
/// the load. Measured with private_key_jwt at ~6,000 requests a second on two cores, four in
/// flight gave batches of one or two and cost Postgres 76 µs of CPU per assertion; one in
/// flight, 36 µs, and p99 latency was lower, not higher (9.5 against 12.6 ms, runs minutes
/// apart).
const MAX_IN_FLIGHT: usize = 1;
/// Uses waiting for a batch; past this, callers wait for room (back-pressure, bounded memory).
const QUEUE: usize = 4096;

struct Use {
    key: String,
    expires_at: i64,
    now: i64,
    answer: oneshot::Sender<StoreResult<bool>>,
}

/// The batching front of `ReplayStore`. Cheap to clone; its task ends when the last clone is
/// dropped.
#[derive(Clone)]
pub struct UsedOnce {
    queue: mpsc::Sender<Use>,
}

impl UsedOnce {
    /// Starts the batching task on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, uses) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, uses));
        UsedOnce { queue }
    }

    /// Records `key` as used until `expires_at`; false when it was used before and that use
    /// has not expired at `now` (a replay). As `ReplayStore::use_once`.
    pub async fn use_once(&self, key: String, expires_at: i64, now: i64) -> StoreResult<bool> {
        let (answer, answered) = oneshot::channel();
        let sent = self.queue.send(Use {
            key,
            expires_at,
            now,
            answer,
        });
        if sent.await.is_err() {
            return Err(stopped());
        }
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the single-use recorder stopped".to_owned())
}

/// Takes a batch whenever a slot for one is free: whatever queued up meanwhile goes in it.
async fn run(store: Arc<dyn Store>, mut uses: mpsc::Receiver<Use>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = uses.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match uses.try_recv() {
                Ok(u) => batch.push(u),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            settle(store.as_ref(), batch).await;
            drop(slot);
        });
    }
}

/// Writes one batch and answers each use. A key repeated within the batch is decided once:
/// its first use gets the database's answer, the repeats lose (at most one use of a value
/// wins, as if they had come one after the other).
async fn settle(store: &dyn Store, batch: Vec<Use>) {
    let now = batch.iter().map(|u| u.now).max().unwrap_or_default();
    let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut distinct: Vec<(String, i64)> = Vec::with_capacity(batch.len());
    let mut slot_of = Vec::with_capacity(batch.len());
    for u in &batch {
        match first_of.get(u.key.as_str()) {
            Some(_) => slot_of.push(None),
            None => {
                first_of.insert(&u.key, distinct.len());
                slot_of.push(Some(distinct.len()));
                distinct.push((u.key.clone(), u.expires_at));
            }
        }
    }
    let outcome = store.use_each(&distinct, now).await;
    for (u, slot) in batch.into_iter().zip(slot_of) {
        let answer = match (&outcome, slot) {
            (Ok(won), Some(i)) => Ok(won[i]),
            (Ok(_), None) => Ok(false),
            (Err(e), _) => Err(StoreError::Unavailable(e.to_string())),
        };
        // The caller may have gone (its request was cancelled); its use stands.
        let _ = u.answer.send(answer);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::testing::{postgres_store, sqlite_store};

    #[tokio::test]
    async fn racing_uses_of_one_value_have_one_winner_sqlite() {
        racing_uses_of_one_value_have_one_winner(sqlite_store().await).await;
    }

    #[tokio::test]
    async fn racing_uses_of_one_value_have_one_winner_postgres() {
        racing_uses_of_one_value_have_one_winner(postgres_store().await).await;
    }

    /// Fifty uses of one value, and one of another, gathered into batches: one winner each.
    async fn racing_uses_of_one_value_have_one_winner(store: Arc<dyn Store>) {
        let used = UsedOnce::start(store);
        let racers: Vec<_> = (0..50)
            .map(|_| {
                let used = used.clone();
                tokio::spawn(async move { used.use_once("k".into(), 100, 1).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for r in racers {
            wins += usize::from(r.await.unwrap());
        }
        assert_eq!(wins, 1);
        assert!(used.use_once("other".into(), 100, 1).await.unwrap());
    }
}
