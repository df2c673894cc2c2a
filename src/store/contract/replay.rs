//! Contract: Identifiers used once (`replay.rs`).

use super::*;

contract_tests!(a_value_is_used_once_until_it_expires,);

async fn a_value_is_used_once_until_it_expires(store: Arc<dyn Store>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.use_once("jti:a", NOW + 60, NOW).await.unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.unwrap());
    }
    assert_eq!(wins, 1, "exactly one of 50 racing uses wins");
    assert!(!store.use_once("jti:a", NOW + 60, NOW + 59).await.unwrap());
    assert!(store.use_once("jti:b", NOW + 60, NOW).await.unwrap());
    // Once expired, the value may be used again (its owner's rules reject old values).
    assert!(store.use_once("jti:a", NOW + 200, NOW + 60).await.unwrap());
    assert!(!store.use_once("jti:a", NOW + 200, NOW + 61).await.unwrap());
    assert_eq!(store.purge_used(NOW + 100, 10).await.unwrap(), 1, "jti:b");
    assert!(store.use_once("jti:b", NOW + 300, NOW + 100).await.unwrap());
}
