//! Contract: Attempt counters (`throttle.rs`).

use super::*;

contract_tests!(
    throttle_counts_attempts_atomically_and_locks,
    two_keys_are_counted_in_one_call_the_second_only_after_the_first,
    racing_attempts_over_two_keys_are_counted_as_each_rule_allows,
);

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

/// Rules for the two-key cases: an address with few free attempts, an account with many.
const FEW: ThrottleRule = ThrottleRule {
    free: 5,
    window: 60,
    max_delay: 60,
    lockout_after: 8,
    lockout: 300,
};
const MANY: ThrottleRule = ThrottleRule {
    free: 1_000,
    window: 60,
    max_delay: 60,
    lockout_after: 2_000,
    lockout: 300,
};

fn counted(attempts: i64, locked_until: i64) -> AttemptCount {
    AttemptCount::Counted {
        attempts,
        locked_until,
    }
}

async fn two_keys_are_counted_in_one_call_the_second_only_after_the_first(store: Arc<dyn Store>) {
    let (address, account) = ("login:ip:192.0.2.9", "login:account:bob");
    assert_eq!(
        store
            .count_attempts((address, &MANY), Some((account, &FEW)), NOW)
            .await
            .unwrap(),
        (counted(1, 0), Some(counted(1, 0)))
    );
    assert_eq!(
        store
            .count_attempts((address, &MANY), None, NOW)
            .await
            .unwrap(),
        (counted(2, 0), None),
        "one key"
    );
    // The account reaches its sixth attempt, which locks it for a second: the next attempt
    // is counted for the address and refused for the account.
    for n in 2..=6 {
        let (_, second) = store
            .count_attempts((address, &MANY), Some((account, &FEW)), NOW)
            .await
            .unwrap();
        assert_eq!(second, Some(counted(n, FEW.lock_after(n, NOW))));
    }
    assert_eq!(
        store
            .count_attempts((address, &MANY), Some((account, &FEW)), NOW)
            .await
            .unwrap(),
        (
            counted(8, 0),
            Some(AttemptCount::Refused {
                locked_until: NOW + 1
            })
        )
    );
    // A locked first key refuses, and the second is not counted at all.
    let (locked, other) = ("login:ip:192.0.2.10", "login:account:carol");
    for n in 1..=6 {
        assert_eq!(
            store.count_attempt(locked, &FEW, NOW).await.unwrap(),
            counted(n, FEW.lock_after(n, NOW))
        );
    }
    assert_eq!(
        store
            .count_attempts((locked, &FEW), Some((other, &MANY)), NOW)
            .await
            .unwrap(),
        (
            AttemptCount::Refused {
                locked_until: NOW + 1
            },
            None
        )
    );
    assert_eq!(
        store.count_attempt(other, &MANY, NOW).await.unwrap(),
        counted(1, 0),
        "the second key was never counted"
    );
    // The lock expires: both counted again, the address's count going on.
    assert_eq!(
        store
            .count_attempts((locked, &FEW), Some((other, &MANY)), NOW + 1)
            .await
            .unwrap(),
        (counted(7, NOW + 1 + 2), Some(counted(2, 0)))
    );
}

async fn racing_attempts_over_two_keys_are_counted_as_each_rule_allows(store: Arc<dyn Store>) {
    // A strict address before a lenient account: exactly the address's six attempts are
    // counted, and the account is counted for those six only.
    let outcomes = race_n(&store, FAMILY_RACERS, |s, _| async move {
        s.count_attempts(
            ("login:ip:192.0.2.20", &FEW),
            Some(("login:account:dora", &MANY)),
            NOW,
        )
        .await
    })
    .await;
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for (first, second) in &outcomes {
        match (first, second) {
            (
                AttemptCount::Counted { attempts, .. },
                Some(AttemptCount::Counted { attempts: n, .. }),
            ) => {
                firsts.push(*attempts);
                seconds.push(*n);
            }
            (AttemptCount::Refused { .. }, None) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    firsts.sort();
    seconds.sort();
    assert_eq!(firsts, vec![1, 2, 3, 4, 5, 6], "{outcomes:?}");
    assert_eq!(seconds, vec![1, 2, 3, 4, 5, 6], "{outcomes:?}");

    // A lenient address before a strict account: every attempt counts for the address, and
    // exactly six for the account.
    let outcomes = race_n(&store, FAMILY_RACERS, |s, _| async move {
        s.count_attempts(
            ("login:ip:192.0.2.21", &MANY),
            Some(("login:account:eve", &FEW)),
            NOW,
        )
        .await
    })
    .await;
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for (first, second) in &outcomes {
        let AttemptCount::Counted { attempts, .. } = first else {
            panic!("the address never locks: {first:?}");
        };
        firsts.push(*attempts);
        match second {
            Some(AttemptCount::Counted { attempts, .. }) => seconds.push(*attempts),
            Some(AttemptCount::Refused { locked_until }) => assert_eq!(*locked_until, NOW + 1),
            None => panic!("the second key is always tried after a counted first"),
        }
    }
    firsts.sort();
    seconds.sort();
    assert_eq!(firsts, (1..=FAMILY_RACERS as i64).collect::<Vec<_>>());
    assert_eq!(seconds, vec![1, 2, 3, 4, 5, 6], "{outcomes:?}");
}
