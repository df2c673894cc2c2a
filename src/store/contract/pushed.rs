//! Contract: Pushed authorization requests (`pushed.rs`).

use super::*;

contract_tests!(a_pushed_request_is_taken_once_before_it_expires,);

async fn a_pushed_request_is_taken_once_before_it_expires(store: Arc<dyn Store>) {
    let request = PushedRequest {
        client_id: "c1".into(),
        params: "response_type=code&client_id=c1".into(),
        expires_at: NOW + 60,
    };
    store.insert_pushed(b"r1", &request).await.unwrap();
    store.insert_pushed(b"r2", &request).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_pushed(b"r1", NOW).await.unwrap()
            })
        })
        .collect();
    let mut taken = Vec::new();
    for r in racers {
        taken.extend(r.await.unwrap());
    }
    assert_eq!(
        taken,
        vec![request.clone()],
        "exactly one of 50 racers takes it"
    );
    assert_eq!(
        store.take_pushed(b"r2", NOW + 60).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.purge_pushed(NOW + 60, 10).await.unwrap(), 1);
}
