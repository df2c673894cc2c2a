//! Contract: passkeys (`passkeys.rs`): unique credentials, the per-user limit and the
//! signature counter that only moves forward, both under concurrency.

use super::*;

contract_tests!(
    passkeys_are_stored_listed_and_removed_per_user,
    a_credential_is_registered_once_and_a_user_has_at_most_ten,
    of_fifty_racing_registrations_exactly_the_cap_is_stored,
    the_sign_counter_only_moves_forward,
    of_racing_sign_ins_with_one_counter_exactly_one_is_recorded,
    a_deleted_user_takes_their_passkeys_along,
);

fn passkey(id: &str, user_sub: &str, credential_id: &[u8], sign_count: i64) -> PasskeyRecord {
    PasskeyRecord {
        passkey_id: id.to_owned(),
        credential_id: credential_id.to_vec(),
        user_sub: user_sub.to_owned(),
        name: format!("key {id}"),
        credential: format!(r#"{{"cred":"{id}"}}"#),
        sign_count,
        created_at: NOW,
        last_used_at: None,
    }
}

fn use_of(credential_id: &[u8], sign_count: i64, now: i64) -> PasskeyUse<'_> {
    PasskeyUse {
        credential_id,
        sign_count,
        credential: r#"{"cred":"updated"}"#,
        now,
    }
}

async fn passkeys_are_stored_listed_and_removed_per_user(store: Arc<dyn Store>) {
    let a = passkey("pk-a", "alice", &[0, 1, 2, 0xff], 0);
    let mut b = passkey("pk-b", "alice", b"second", 7);
    b.created_at = NOW + 1;
    let c = passkey("pk-c", "bob", b"bobs", 0);
    for p in [&a, &b, &c] {
        assert!(store.insert_passkey(p).await.unwrap());
    }
    assert_eq!(
        store.list_passkeys("alice").await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        store
            .get_passkey_by_credential(&[0, 1, 2, 0xff])
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.get_passkey_by_credential(b"none").await.unwrap(),
        None
    );
    assert!(
        !store.delete_passkey("bob", "pk-a").await.unwrap(),
        "a user removes only their own passkeys"
    );
    assert!(store.delete_passkey("alice", "pk-a").await.unwrap());
    assert!(!store.delete_passkey("alice", "pk-a").await.unwrap());
    assert_eq!(store.list_passkeys("alice").await.unwrap(), vec![b]);
    assert_eq!(store.list_passkeys("bob").await.unwrap(), vec![c]);
}

async fn a_credential_is_registered_once_and_a_user_has_at_most_ten(store: Arc<dyn Store>) {
    assert!(
        store
            .insert_passkey(&passkey("pk-1", "alice", b"cred", 0))
            .await
            .unwrap()
    );
    let again = store
        .insert_passkey(&passkey("pk-2", "bob", b"cred", 0))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict("credential_id"))),
        "{again:?}"
    );
    for i in 1..MAX_PASSKEYS_PER_USER {
        let p = passkey(&format!("pk-a{i}"), "alice", format!("c{i}").as_bytes(), 0);
        assert!(store.insert_passkey(&p).await.unwrap());
    }
    let over = passkey("pk-over", "alice", b"over", 0);
    assert!(
        !store.insert_passkey(&over).await.unwrap(),
        "the eleventh is refused"
    );
    assert_eq!(
        store.list_passkeys("alice").await.unwrap().len() as i64,
        MAX_PASSKEYS_PER_USER
    );
    assert!(
        store
            .insert_passkey(&passkey("pk-b", "bob", b"over", 0))
            .await
            .unwrap()
    );
}

/// The cap is one unique slot per passkey, not a count read beside the insert: fifty
/// registrations of one user at once store exactly `MAX_PASSKEYS_PER_USER`, and a removed
/// passkey frees its slot for the next one.
async fn of_fifty_racing_registrations_exactly_the_cap_is_stored(store: Arc<dyn Store>) {
    const RACERS: usize = 50;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let p = passkey(&format!("pk-{i}"), "alice", format!("c{i}").as_bytes(), 0);
                barrier.wait().await;
                store.insert_passkey(&p).await.unwrap()
            })
        })
        .collect();
    let mut stored = 0;
    for r in racers {
        if r.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(
        stored, MAX_PASSKEYS_PER_USER,
        "of {RACERS} racing registrations"
    );
    let listed = store.list_passkeys("alice").await.unwrap();
    assert_eq!(listed.len() as i64, MAX_PASSKEYS_PER_USER);

    assert!(
        !store
            .insert_passkey(&passkey("pk-late", "alice", b"late", 0))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_passkey("alice", &listed[3].passkey_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_passkey(&passkey("pk-late", "alice", b"late", 0))
            .await
            .unwrap(),
        "a removed passkey's slot is free again"
    );
    assert!(
        !store
            .insert_passkey(&passkey("pk-later", "alice", b"later", 0))
            .await
            .unwrap()
    );
}

async fn the_sign_counter_only_moves_forward(store: Arc<dyn Store>) {
    store
        .insert_passkey(&passkey("pk-1", "alice", b"counted", 5))
        .await
        .unwrap();
    store
        .insert_passkey(&passkey("pk-2", "alice", b"zero", 0))
        .await
        .unwrap();
    let record = |id: &'static [u8], count, now| {
        let store = store.clone();
        async move {
            store
                .record_passkey_use(&use_of(id, count, now))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        record(b"counted", 5, NOW + 1).await,
        PasskeyUsed::CounterNotIncreased
    );
    assert_eq!(
        record(b"counted", 4, NOW + 1).await,
        PasskeyUsed::CounterNotIncreased
    );
    assert_eq!(
        record(b"counted", 0, NOW + 1).await,
        PasskeyUsed::CounterNotIncreased
    );
    let unchanged = store
        .get_passkey_by_credential(b"counted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((unchanged.sign_count, unchanged.last_used_at), (5, None));
    assert_eq!(record(b"counted", 6, NOW + 2).await, PasskeyUsed::Recorded);
    let used = store
        .get_passkey_by_credential(b"counted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.sign_count, 6);
    assert_eq!(used.last_used_at, Some(NOW + 2));
    assert_eq!(used.credential, r#"{"cred":"updated"}"#);
    // An authenticator without a counter reports 0 every time.
    assert_eq!(record(b"zero", 0, NOW + 3).await, PasskeyUsed::Recorded);
    assert_eq!(record(b"zero", 0, NOW + 4).await, PasskeyUsed::Recorded);
    assert_eq!(record(b"zero", 3, NOW + 5).await, PasskeyUsed::Recorded);
    assert_eq!(
        record(b"zero", 0, NOW + 6).await,
        PasskeyUsed::CounterNotIncreased
    );
    assert_eq!(record(b"gone", 9, NOW + 6).await, PasskeyUsed::Gone);
}

async fn of_racing_sign_ins_with_one_counter_exactly_one_is_recorded(store: Arc<dyn Store>) {
    store
        .insert_passkey(&passkey("pk-1", "alice", b"raced", 1))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .record_passkey_use(&use_of(b"raced", 2, NOW))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut recorded = 0;
    for r in racers {
        let outcome = r.await.unwrap();
        if outcome == PasskeyUsed::Recorded {
            recorded += 1;
        } else {
            assert_eq!(outcome, PasskeyUsed::CounterNotIncreased);
        }
    }
    assert_eq!(
        recorded, 1,
        "exactly one of {FAMILY_RACERS} racing sign-ins counts"
    );
}

async fn a_deleted_user_takes_their_passkeys_along(store: Arc<dyn Store>) {
    store.insert_user(&user("alice", "alice")).await.unwrap();
    store
        .insert_passkey(&passkey("pk-1", "alice", b"cred", 0))
        .await
        .unwrap();
    assert!(store.delete_user("alice", NOW).await.unwrap());
    assert_eq!(
        store.get_passkey_by_credential(b"cred").await.unwrap(),
        None
    );
}
