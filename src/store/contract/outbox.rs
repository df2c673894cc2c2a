//! Contract: the outbox (`outbox.rs`): claims with a lease, exactly one claimant per item,
//! attempts recorded only by their claimant; and ending sessions queues their logout
//! notifications (`sessions.rs`).

use super::*;
use crate::store::{AttemptResult, LOGOUT_KIND, OutboxItem};

contract_tests!(
    racing_claims_take_each_item_once,
    a_claim_lapses_after_its_lease_and_only_the_current_claimant_records,
    failed_attempts_wait_then_give_up,
    ending_sessions_queues_a_notification_per_client_of_each,
);

const KIND: &str = "test";

async fn racing_claims_take_each_item_once(store: Arc<dyn Store>) {
    for i in 0..5 {
        store
            .enqueue(
                KIND,
                "client-1",
                &format!("{{\"n\":{i}}}"),
                NOW,
                NOW + 86_400,
            )
            .await
            .unwrap();
    }
    // Another kind is not claimed by this kind's workers.
    store
        .enqueue("other", "client-1", "{}", NOW, NOW + 86_400)
        .await
        .unwrap();
    let claims = futures_util::future::join_all((0..50).map(|_| {
        let store = store.clone();
        async move { store.claim_due(KIND, NOW, 30).await.unwrap() }
    }))
    .await;
    let mut ids: Vec<i64> = claims.iter().flatten().map(|i| i.outbox_id).collect();
    assert_eq!(
        ids.len(),
        5,
        "each of 5 items claimed once by 50 racing claims"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    for item in claims.iter().flatten() {
        assert_eq!(item.attempts, 1);
        assert_eq!(item.next_attempt_at, NOW + 30, "leased");
        assert_eq!(item.status, "pending");
    }
    assert_eq!(store.claim_due(KIND, NOW + 29, 30).await.unwrap(), None);
}

async fn a_claim_lapses_after_its_lease_and_only_the_current_claimant_records(
    store: Arc<dyn Store>,
) {
    let id = store
        .enqueue(KIND, "client-1", "{}", NOW, NOW + 86_400)
        .await
        .unwrap();
    let first = store.claim_due(KIND, NOW, 30).await.unwrap().unwrap();
    assert_eq!((first.outbox_id, first.attempts), (id, 1));
    // The claimant dies; the lease runs out and another claims it.
    assert_eq!(store.claim_due(KIND, NOW + 10, 30).await.unwrap(), None);
    let second = store.claim_due(KIND, NOW + 30, 30).await.unwrap().unwrap();
    assert_eq!((second.outbox_id, second.attempts), (id, 2));
    // The first claimant's late answer changes nothing; the second's counts.
    assert!(
        !store
            .finish_attempt(id, 1, &AttemptResult::Delivered, NOW + 31)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_attempt(id, 2, &AttemptResult::Delivered, NOW + 32)
            .await
            .unwrap()
    );
    let listed = store.list_outbox(KIND, "client-1", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "delivered");
    assert_eq!(listed[0].finished_at, Some(NOW + 32));
    assert_eq!(listed[0].attempts, 2);
    // Delivered is final.
    assert_eq!(store.claim_due(KIND, NOW + 1000, 30).await.unwrap(), None);
    assert!(
        !store
            .finish_attempt(id, 2, &AttemptResult::Delivered, NOW + 33)
            .await
            .unwrap()
    );
    // Finished items are purged once old enough, pending ones never.
    store
        .enqueue(KIND, "client-1", "{}", NOW, NOW + 86_400)
        .await
        .unwrap();
    assert_eq!(store.purge_outbox(NOW + 31, 100).await.unwrap(), 0);
    assert_eq!(store.purge_outbox(NOW + 32, 100).await.unwrap(), 1);
    assert_eq!(
        store.list_outbox(KIND, "client-1", 10).await.unwrap().len(),
        1
    );
}

async fn failed_attempts_wait_then_give_up(store: Arc<dyn Store>) {
    let id = store
        .enqueue(KIND, "client-2", "{}", NOW, NOW + 100)
        .await
        .unwrap();
    let item = store.claim_due(KIND, NOW, 30).await.unwrap().unwrap();
    let retry = AttemptResult::Failed {
        error: "the server answered with status 500".into(),
        retry_at: Some(NOW + 5),
    };
    assert!(
        store
            .finish_attempt(id, item.attempts, &retry, NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim_due(KIND, NOW + 4, 30).await.unwrap(),
        None,
        "waits"
    );
    let again = store.claim_due(KIND, NOW + 5, 30).await.unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(
        again.last_error.as_deref(),
        Some("the server answered with status 500")
    );
    let give_up = AttemptResult::Failed {
        error: "unreachable".into(),
        retry_at: None,
    };
    assert!(
        store
            .finish_attempt(id, 2, &give_up, NOW + 6)
            .await
            .unwrap()
    );
    let listed = store.list_outbox(KIND, "client-2", 10).await.unwrap();
    assert_eq!(listed[0].status, "failed");
    assert_eq!(listed[0].last_error.as_deref(), Some("unreachable"));
    assert_eq!(store.claim_due(KIND, NOW + 1000, 30).await.unwrap(), None);

    // An item whose time ran out before it was claimed again fails when next looked at.
    let late = store
        .enqueue(KIND, "client-3", "{}", NOW, NOW + 10)
        .await
        .unwrap();
    assert_eq!(store.claim_due(KIND, NOW + 10, 30).await.unwrap(), None);
    let listed = store.list_outbox(KIND, "client-3", 10).await.unwrap();
    assert_eq!(
        (listed[0].outbox_id, listed[0].status.as_str()),
        (late, "failed")
    );
}

async fn ending_sessions_queues_a_notification_per_client_of_each(store: Arc<dyn Store>) {
    for (tag, sub) in [("e1", "sub-e"), ("e2", "sub-e"), ("f1", "sub-f")] {
        store
            .insert_session(&session(tag, sub, NOW + 100))
            .await
            .unwrap();
    }
    // Two clients took part in e1 (one of them twice), one in e2 and in f1.
    for (sid, client, sub) in [
        ("sid-e1", "rp-1", "sub-e"),
        ("sid-e1", "rp-2", "sub-e"),
        ("sid-e1", "rp-1", "sub-e"),
        ("sid-e2", "rp-1", "sub-e"),
        ("sid-f1", "rp-1", "sub-f"),
    ] {
        store
            .record_session_client(sid, client, sub, NOW + 100)
            .await
            .unwrap();
    }
    store.delete_session(&hash("e1"), NOW + 1).await.unwrap();
    assert_eq!(store.get_session(&hash("e1"), NOW).await.unwrap(), None);
    let payloads = |items: Vec<OutboxItem>| -> Vec<serde_json::Value> {
        items
            .iter()
            .map(|i| serde_json::from_str(&i.payload).unwrap())
            .collect()
    };
    let rp1 = store.list_outbox(LOGOUT_KIND, "rp-1", 10).await.unwrap();
    assert_eq!(rp1.len(), 1);
    assert_eq!(
        (rp1[0].status.as_str(), rp1[0].created_at),
        ("pending", NOW + 1)
    );
    assert_eq!(rp1[0].give_up_at, NOW + 1 + 86_400);
    assert_eq!(
        payloads(rp1),
        vec![serde_json::json!({"sid": "sid-e1", "sub": "sub-e"})]
    );
    assert_eq!(
        store
            .list_outbox(LOGOUT_KIND, "rp-2", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Ending it again queues nothing more.
    store.delete_session(&hash("e1"), NOW + 2).await.unwrap();
    assert_eq!(
        store
            .list_outbox(LOGOUT_KIND, "rp-1", 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // All of a user's sessions: one notification per session and client.
    assert_eq!(
        store
            .delete_sessions_for_user("sub-e", NOW + 3)
            .await
            .unwrap(),
        1
    );
    let rp1 = payloads(store.list_outbox(LOGOUT_KIND, "rp-1", 10).await.unwrap());
    assert_eq!(rp1.len(), 2);
    assert_eq!(rp1[0], serde_json::json!({"sid": "sid-e2", "sub": "sub-e"}));
    assert!(store.get_session(&hash("f1"), NOW).await.unwrap().is_some());
    // A session no client took part in ends without a notification.
    store
        .insert_session(&session("g1", "sub-g", NOW + 100))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_sessions_for_user("sub-g", NOW + 4)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .list_outbox(LOGOUT_KIND, "rp-1", 10)
            .await
            .unwrap()
            .len(),
        2
    );
}
