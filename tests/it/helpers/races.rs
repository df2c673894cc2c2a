//! Racing requests: many futures released at the same instant, for the tests that a rule
//! holds under concurrency (exactly one winner, a throttle's exact count).

use std::future::Future;
use std::sync::Arc;

/// How many copies of a request a race test fires at once.
pub const RACERS: usize = 50;

/// Runs the futures at once, each on its own task, released together by a barrier.
pub async fn fire<T, F>(racers: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .into_iter()
        .map(|racer| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                racer.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
