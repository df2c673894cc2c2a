//! Housekeeping under a backlog, which the contract's small cases cannot build: a large
//! backlog drains in a bounded number of passes, and nodes purging at once neither count a
//! row twice nor wait for each other.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;

use super::*;
use crate::store::Store;
use crate::store::testing::{connect_options, fresh_postgres_url, fresh_sqlite_path};
use crate::upkeep::{Batching, PURGE_BATCHING, purge_pass};

const NOW: i64 = 1_700_000_000;
const SESSIONS: i64 = 150_000;
const REVOKED: i64 = 50_000;

/// 150,000 expired sessions and 50,000 expired revoked-token marks, plus 10 live ones of each.
/// `series` is the dialect's `SELECT n FROM <1..=count>`, `blob` its bytes made of `n`.
fn backlog(series: fn(i64) -> String, blob: &str) -> Vec<String> {
    vec![
        format!(
            "INSERT INTO session (session_hash, sid, user_sub, auth_time, amr, created_at, \
             expires_at) SELECT {}, 'sid', 'sub', 0, 'pwd', 0, \
             CASE WHEN n <= {SESSIONS} THEN {NOW} - 1 ELSE {NOW} + 3600 END \
             FROM ({}) AS s",
            blob,
            series(SESSIONS + 10)
        ),
        format!(
            "INSERT INTO revoked_access_token (jti, expires_at) SELECT 'jti-' || CAST(n AS TEXT), \
             CASE WHEN n <= {REVOKED} THEN {NOW} ELSE {NOW} + 3600 END FROM ({}) AS s",
            series(REVOKED + 10)
        ),
    ]
}

fn postgres_series(count: i64) -> String {
    format!("SELECT generate_series(1, {count}) AS n")
}

fn sqlite_series(count: i64) -> String {
    format!(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {count}) \
         SELECT n FROM c"
    )
}

/// Passes (at most `limit`) until one leaves nothing behind; returns the passes and rows.
async fn drain_backlog(store: &dyn Store, batching: Batching, limit: usize) -> (usize, u64) {
    let mut rows = 0;
    let started = std::time::Instant::now();
    for pass in 1..=limit {
        let report = purge_pass(store, NOW, batching, Duration::from_secs(60))
            .await
            .unwrap();
        rows += report.iter().map(|(_, d)| d.rows).sum::<u64>();
        if report.iter().all(|(_, d)| d.done) {
            // For docs/deployment.md's housekeeping rates (cargo test -- --nocapture).
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "purged {rows} rows in {pass} pass(es), {seconds:.2} s: {:.0} rows/s",
                rows as f64 / seconds
            );
            return (pass, rows);
        }
    }
    panic!("not drained in {limit} passes");
}

async fn check_drained(store: &dyn Store) {
    for kind in Expiring::ALL {
        assert_eq!(
            store.expired_backlog(kind, NOW, 1_000_000).await.unwrap(),
            0,
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_200_000_rows_drains_in_one_pass_on_postgres() {
    let store = PgStore::connect(&fresh_postgres_url().await, &connect_options())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for statement in backlog(postgres_series, "int8send(CAST(n AS BIGINT))") {
        store.pool.execute(statement.as_str()).await.unwrap();
    }
    assert_eq!(
        store
            .expired_backlog(Expiring::Sessions, NOW, 1_000_000)
            .await
            .unwrap(),
        SESSIONS as u64
    );
    assert_eq!(
        store
            .expired_backlog(Expiring::Sessions, NOW, 1_000)
            .await
            .unwrap(),
        1_000,
        "counted up to the cap"
    );
    let (passes, rows) = drain_backlog(&store, PURGE_BATCHING, 3).await;
    assert_eq!(passes, 1);
    assert_eq!(rows, (SESSIONS + REVOKED) as u64);
    check_drained(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_200_000_rows_drains_in_one_pass_on_sqlite() {
    let store = SqliteStore::connect(&fresh_sqlite_path(), &connect_options())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for statement in backlog(sqlite_series, "CAST(n AS BLOB)") {
        store.pool.execute(statement.as_str()).await.unwrap();
    }
    let (passes, rows) = drain_backlog(&store, PURGE_BATCHING, 3).await;
    assert_eq!(passes, 1);
    assert_eq!(rows, (SESSIONS + REVOKED) as u64);
    check_drained(&store).await;
}

/// The batch doubles while batches come back full: the first pass's statements are bounded
/// by the doubling, not by the backlog over the first batch.
#[tokio::test]
async fn batches_double_while_they_come_back_full() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let left = Arc::new(AtomicU64::new(200_000));
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (l, s) = (left.clone(), sizes.clone());
    let drained = crate::upkeep::drain(
        move |batch| {
            let (l, s) = (l.clone(), s.clone());
            async move {
                s.lock().unwrap().push(batch);
                let take = u64::from(batch).min(l.load(Ordering::SeqCst));
                l.fetch_sub(take, Ordering::SeqCst);
                Ok(take)
            }
        },
        Batching {
            initial: 1_000,
            max: 20_000,
        },
        std::time::Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(drained.rows, 200_000);
    assert!(drained.done);
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(&sizes[..6], &[1_000, 2_000, 4_000, 8_000, 16_000, 20_000]);
    // 31,000 rows in the first five, then 20,000 each: 9 more, the last one short.
    assert_eq!(sizes.len(), 5 + 9, "{sizes:?}");
}

/// Two nodes (two pools on one database) purging at once, in small batches so that they
/// collide often: every row is counted by exactly one of them, and neither waits for the
/// other's locks (a deadlock would fail the statement or hit the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_purging_at_once_count_every_row_once() {
    let url = fresh_postgres_url().await;
    let first = PgStore::connect(&url, &connect_options()).await.unwrap();
    first.migrate().await.unwrap();
    let second = PgStore::connect(&url, &connect_options()).await.unwrap();
    for statement in backlog(postgres_series, "int8send(CAST(n AS BIGINT))") {
        first.pool.execute(statement.as_str()).await.unwrap();
    }
    let small = Batching {
        initial: 500,
        max: 2_000,
    };
    let nodes: Vec<Arc<dyn Store>> = vec![Arc::new(first), Arc::new(second)];
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|store| {
            tokio::spawn(async move {
                let mut rows = 0;
                loop {
                    let report = purge_pass(store.as_ref(), NOW, small, Duration::from_secs(60))
                        .await
                        .unwrap();
                    rows += report.iter().map(|(_, d)| d.rows).sum::<u64>();
                    if report.iter().all(|(_, d)| d.done) {
                        return rows;
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .expect("a node hung: no deadlock allowed")
            .unwrap();
    }
    assert_eq!(total, (SESSIONS + REVOKED) as u64);
    check_drained(nodes[0].as_ref()).await;
}
