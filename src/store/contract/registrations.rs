//! Contract: Dynamic client registration (`registrations.rs`).

use super::*;

contract_tests!(initial_tokens_are_spent_no_more_than_their_uses,);

async fn initial_tokens_are_spent_no_more_than_their_uses(store: Arc<dyn Store>) {
    store
        .insert_initial_token(b"iat", 3, NOW, NOW + 60)
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.spend_initial_token(b"iat", NOW).await.unwrap()
            })
        })
        .collect();
    let mut spent = 0;
    for r in racers {
        spent += usize::from(r.await.unwrap());
    }
    assert_eq!(spent, 3, "three uses among 50 racers");
    store
        .insert_initial_token(b"old", 5, NOW, NOW + 60)
        .await
        .unwrap();
    assert!(
        !store.spend_initial_token(b"old", NOW + 60).await.unwrap(),
        "expired"
    );
    assert!(!store.spend_initial_token(b"none", NOW).await.unwrap());
    assert_eq!(store.purge_initial_tokens(NOW + 60, 10).await.unwrap(), 2);
    assert_eq!(store.registration_token("c1").await.unwrap(), None);
    store
        .set_registration_token("c1", b"rat", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.registration_token("c1").await.unwrap(),
        Some(b"rat".to_vec())
    );
    store
        .set_registration_token("c1", b"rat2", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.registration_token("c1").await.unwrap(),
        Some(b"rat2".to_vec())
    );
    store.delete_registration("c1").await.unwrap();
    assert_eq!(store.registration_token("c1").await.unwrap(), None);
}
