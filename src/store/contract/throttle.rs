//! Contract: Attempt counters (`throttle.rs`).

use super::*;

contract_tests!(throttle_counts_attempts_atomically_and_locks,);

async fn throttle_counts_attempts_atomically_and_locks(store: Arc<dyn Store>) {
    let rule = ThrottleRule {
        free: 5,
        window: 60,
        max_delay: 60,
        lockout_after: 8,
        lockout: 300,
    };
    let key = "login:account:alice";
    // Racing attempts on a fresh key: the five free ones and the sixth (which locks the key
    // for a second) are counted, once each, in order; every other one is refused unwritten.
    let outcomes = race(&store, move |s, _| async move {
        s.count_attempt(key, &rule, NOW).await
    })
    .await;
    let mut counted: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            AttemptCount::Counted { attempts, .. } => Some(*attempts),
            AttemptCount::Refused { .. } => None,
        })
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        vec![1, 2, 3, 4, 5, 6],
        "exactly the rule's attempts"
    );
    assert!(outcomes.iter().all(|o| match o {
        AttemptCount::Counted {
            attempts,
            locked_until,
        } => *locked_until == rule.lock_after(*attempts, NOW),
        AttemptCount::Refused { locked_until } => *locked_until == NOW + 1,
    }));
    // The back-off doubles, then the lockout.
    let mut at = NOW + 1;
    for (n, lock) in [(7, 2), (8, 300)] {
        assert_eq!(
            store.count_attempt(key, &rule, at).await.unwrap(),
            AttemptCount::Counted {
                attempts: n,
                locked_until: at + lock
            }
        );
        assert_eq!(
            store
                .count_attempt(key, &rule, at + lock - 1)
                .await
                .unwrap(),
            AttemptCount::Refused {
                locked_until: at + lock
            },
            "locked until {}",
            at + lock
        );
        at += lock;
    }
    // Once the lockout and the window have passed, counting starts over.
    assert_eq!(
        store.count_attempt(key, &rule, at + 60).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        }
    );

    // A success clears the account and gives the address back its one attempt, lifting a
    // back-off that the remaining count no longer justifies.
    let address = "login:ip:192.0.2.1";
    for n in 1..=6 {
        assert!(matches!(
            store.count_attempt(address, &rule, NOW).await.unwrap(),
            AttemptCount::Counted { attempts, .. } if attempts == n
        ));
    }
    store
        .settle_success(Some(key), Some((address, &rule)))
        .await
        .unwrap();
    assert_eq!(
        store.count_attempt(address, &rule, NOW).await.unwrap(),
        AttemptCount::Counted {
            attempts: 6,
            locked_until: NOW + 1
        },
        "the address keeps its other five attempts; its lock was lifted"
    );
    assert_eq!(
        store.count_attempt(key, &rule, at + 61).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        },
        "the account starts over"
    );
    store
        .settle_success(None, Some((address, &rule)))
        .await
        .unwrap();
    store
        .settle_success(Some("never-seen"), None)
        .await
        .unwrap();

    // Purge keeps locked and live rows, drops dead ones.
    store.purge_expired(NOW + 50, 100).await.unwrap();
    assert!(matches!(
        store.count_attempt(address, &rule, NOW + 50).await.unwrap(),
        AttemptCount::Counted { attempts: 6, .. }
    ));
    store.purge_expired(at + 1000, 100).await.unwrap();
    assert_eq!(
        store.count_attempt(key, &rule, at + 1000).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        }
    );
}
