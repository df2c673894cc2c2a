//! Contract: Identifiers used once (`replay.rs`).

use super::*;

contract_tests!(
    a_value_is_used_once_until_it_expires,
    a_batch_uses_each_value_once,
);

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

async fn a_batch_uses_each_value_once(store: Arc<dyn Store>) {
    assert!(store.use_once("jti:used", NOW + 60, NOW).await.unwrap());
    assert!(store.use_once("jti:old", NOW + 10, NOW).await.unwrap());
    let batch = |keys: &[&str]| -> Vec<(String, i64)> {
        keys.iter().map(|k| ((*k).to_owned(), NOW + 60)).collect()
    };
    // A fresh value wins, a live one loses, an expired one is taken over.
    let won = store
        .use_each(&batch(&["jti:new", "jti:used", "jti:old"]), NOW + 20)
        .await
        .unwrap();
    assert_eq!(won, vec![true, false, true]);
    // Racing batches that share values (in different orders): each value wins once.
    let keys: Vec<String> = (0..40).map(|i| format!("jti:race-{i:02}")).collect();
    let racers: Vec<_> = (0..10)
        .map(|r| {
            let store = store.clone();
            let mut mine: Vec<(String, i64)> = keys.iter().map(|k| (k.clone(), NOW + 60)).collect();
            mine.rotate_left(r * 4);
            if r % 2 == 1 {
                mine.reverse();
            }
            tokio::spawn(async move {
                let won = store.use_each(&mine, NOW).await.unwrap();
                mine.into_iter()
                    .zip(won)
                    .filter(|(_, w)| *w)
                    .map(|(k, _)| k.0)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for r in racers {
        winners.extend(r.await.unwrap());
    }
    winners.sort();
    assert_eq!(winners, keys, "every value won exactly once");
    assert_eq!(store.use_each(&[], NOW).await.unwrap(), Vec::<bool>::new());
}
