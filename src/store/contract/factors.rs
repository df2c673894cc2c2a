//! Contract: Second factors (`factors.rs`): TOTP steps and recovery codes are each accepted
//! once, even when 50 submissions race; replacing a set kills the old one; deleting the user
//! takes the factors with it.

use super::*;

contract_tests!(
    factors_round_trip_and_replace,
    a_totp_step_is_accepted_once_among_racers,
    a_recovery_code_is_used_once_among_racers,
    the_mfa_standing_and_user_deletion,
);

fn factor(id: &str, sub: &str, kind: FactorKind, created_at: i64) -> FactorRecord {
    FactorRecord {
        id: id.to_owned(),
        user_sub: sub.to_owned(),
        kind,
        name: format!("factor {id}"),
        sealed_secret: (kind == FactorKind::Totp).then(|| hash(&format!("sealed-{id}"))),
        last_step: -1,
        data: None,
        created_at,
        last_used_at: None,
    }
}

fn set(id: &str, sub: &str, codes: &[&str]) -> RecoverySet {
    RecoverySet {
        factor: factor(id, sub, FactorKind::RecoveryCodes, NOW + 1),
        code_hashes: codes.iter().map(|c| hash(c)).collect(),
    }
}

async fn factors_round_trip_and_replace(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    let totp = factor("t1", "sub-a", FactorKind::Totp, NOW);
    store
        .replace_totp(&totp, Some(&set("r1", "sub-a", &["a1", "a2"])))
        .await
        .unwrap();
    let listed = store.list_factors("sub-a").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], totp, "the sealed secret comes back as stored");
    assert_eq!(listed[1].kind, FactorKind::RecoveryCodes);
    assert_eq!(store.recovery_codes_left("sub-a").await.unwrap(), 2);

    // A new TOTP replaces the old one; a new recovery set the old set and its codes.
    let newer = factor("t2", "sub-a", FactorKind::Totp, NOW + 5);
    store.replace_totp(&newer, None).await.unwrap();
    store
        .replace_recovery_codes(&set("r2", "sub-a", &["b1", "b2", "b3"]))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list_factors("sub-a")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["r2", "t2"]);
    assert_eq!(store.recovery_codes_left("sub-a").await.unwrap(), 3);
    assert_eq!(
        store
            .use_recovery_code("sub-a", &hash("a1"), NOW)
            .await
            .unwrap(),
        None,
        "the old set died with its replacement"
    );
    assert!(
        !store
            .accept_totp_step("sub-a", "t1", 10, NOW, &event("factor_used", "sub-a"))
            .await
            .unwrap()
    );

    // Passkeys are added beside each other.
    store
        .add_factor(&factor("p1", "sub-a", FactorKind::Passkey, NOW + 9))
        .await
        .unwrap();
    store.touch_factor("sub-a", "p1", NOW + 20).await.unwrap();
    let passkey = store.list_factors("sub-a").await.unwrap().pop().unwrap();
    assert_eq!(passkey.last_used_at, Some(NOW + 20));

    assert_eq!(
        store.delete_factor("sub-b", "r2", true).await.unwrap(),
        FactorRemoval::NotFound,
        "another user's"
    );
    assert_eq!(
        store.delete_factor("sub-a", "r2", true).await.unwrap(),
        FactorRemoval::Removed
    );
    assert_eq!(
        store.delete_factor("sub-a", "r2", true).await.unwrap(),
        FactorRemoval::NotFound
    );
    assert_eq!(
        store.recovery_codes_left("sub-a").await.unwrap(),
        0,
        "the set's codes went with it"
    );
}

async fn a_totp_step_is_accepted_once_among_racers(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    store
        .replace_totp(&factor("t1", "sub-a", FactorKind::Totp, NOW), None)
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .accept_totp_step("sub-a", "t1", 1000, NOW, &event("factor_used", "sub-a"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.unwrap());
    }
    assert_eq!(
        wins, 1,
        "exactly one of 50 racing submissions of one code wins"
    );
    assert_eq!(
        events_of(&store, "factor_used").await.len(),
        1,
        "only the accepted step stores its event"
    );
    assert!(
        !store
            .accept_totp_step("sub-a", "t1", 999, NOW, &event("factor_used", "sub-a"))
            .await
            .unwrap(),
        "an earlier step"
    );
    assert!(
        !store
            .accept_totp_step("sub-b", "t1", 1001, NOW, &event("factor_used", "sub-a"))
            .await
            .unwrap(),
        "another user"
    );
    assert!(
        store
            .accept_totp_step(
                "sub-a",
                "t1",
                1001,
                NOW + 30,
                &event("factor_used", "sub-a")
            )
            .await
            .unwrap()
    );
    let totp = store.list_factors("sub-a").await.unwrap().pop().unwrap();
    assert_eq!((totp.last_step, totp.last_used_at), (1001, Some(NOW + 30)));
}

async fn a_recovery_code_is_used_once_among_racers(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    store.insert_user(&user("sub-b", "bob")).await.unwrap();
    store
        .replace_recovery_codes(&set("r1", "sub-a", &["c1", "c2"]))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .use_recovery_code("sub-a", &hash("c1"), NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        if let Some(id) = r.await.unwrap() {
            assert_eq!(id, "r1");
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one of 50 racing uses of one code wins");
    assert_eq!(
        store
            .use_recovery_code("sub-b", &hash("c2"), NOW)
            .await
            .unwrap(),
        None,
        "a code is its user's only"
    );
    assert_eq!(store.recovery_codes_left("sub-a").await.unwrap(), 1);
    let set = store.list_factors("sub-a").await.unwrap().pop().unwrap();
    assert_eq!(set.last_used_at, Some(NOW));
}

async fn the_mfa_standing_and_user_deletion(store: Arc<dyn Store>) {
    assert_eq!(store.mfa_standing("nobody").await.unwrap(), None);
    let mut alice = user("sub-a", "alice");
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.mfa_standing("sub-a").await.unwrap(),
        Some((false, vec![]))
    );
    alice.mfa_required = true;
    assert!(store.update_user(&alice).await.unwrap());
    assert!(store.get_user("sub-a").await.unwrap().unwrap().mfa_required);
    store
        .replace_totp(
            &factor("t1", "sub-a", FactorKind::Totp, NOW),
            Some(&set("r1", "sub-a", &["c1"])),
        )
        .await
        .unwrap();
    let (required, mut kinds) = store.mfa_standing("sub-a").await.unwrap().unwrap();
    kinds.sort_by_key(|k| k.as_str());
    assert!(required);
    assert_eq!(kinds, [FactorKind::RecoveryCodes, FactorKind::Totp]);

    assert!(store.delete_user("sub-a", NOW).await.unwrap());
    assert!(store.list_factors("sub-a").await.unwrap().is_empty());
    assert_eq!(store.recovery_codes_left("sub-a").await.unwrap(), 0);
}
