//! Contract: Refresh-token rotation and reuse (`refresh.rs`): one row per family, one
//! operation that rotates it, or revokes the family where it must, in the call that detects
//! it.

use super::*;

contract_tests!(
    a_refresh_token_rotates_exactly_once_among_racing_requests,
    expired_and_revoked_refresh_tokens_do_not_rotate,
    a_reused_refresh_token_revokes_its_family_in_the_same_call,
    any_token_of_the_family_but_the_current_one_is_reuse,
    another_clients_or_an_inactive_users_refresh_token_revokes_its_family,
    a_refresh_asking_for_more_scope_than_granted_changes_nothing,
    a_family_rotated_many_times_keeps_only_its_current_token,
    a_key_bound_refresh_token_rotates_only_with_its_key,
    within_the_reuse_grace_the_replaced_token_gets_the_same_successor,
    with_a_reuse_grace_racing_requests_rotate_once_and_all_get_the_successor,
);

/// `client-1` presenting `token`, with the scope granted, to be replaced by `new_hash` (idle
/// lifetime 600 s).
fn rotation<'a>(token: PresentedRefresh<'a>, new_hash: &'a [u8], now: i64) -> RotationRequest<'a> {
    RotationRequest {
        presented: token,
        client_id: "client-1",
        scope: RefreshScope::Granted,
        dpop_jkt: None,
        new_token_hash: new_hash,
        now,
        idle_ttl: 600,
        reuse_grace: 0,
    }
}

/// User `sub-1`, grant `grant_id` and its family at generation 0, current token `tag`.
async fn family(store: &Arc<dyn Store>, tag: &str, grant_id: &str) -> RefreshTokenRecord {
    if store.get_user("sub-1").await.unwrap().is_none() {
        store.insert_user(&user("sub-1", "one")).await.unwrap();
    }
    store
        .insert_grant(&grant(grant_id, "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = refresh(tag, grant_id, "client-1", "sub-1");
    store.insert_refresh_token(&token).await.unwrap();
    token
}

fn reused(grant_id: &str) -> Rotation {
    Rotation::Reused {
        grant_id: grant_id.to_owned(),
    }
}

async fn a_refresh_token_rotates_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    let old = family(&store, "rt-0", "grant-1").await;
    let h0 = hash("rt-0");
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-1", 0, &h0), NOW)
            .await
            .unwrap(),
        Some(old.clone())
    );

    let results = race_n(&store, FAMILY_RACERS, |s, i| async move {
        let (old_hash, new_hash) = (hash("rt-0"), hash(&format!("rt-1-{i}")));
        let outcome = s
            .rotate_refresh_token(&rotation(
                presented("grant-1", 0, &old_hash),
                &new_hash,
                NOW + 10,
            ))
            .await?;
        Ok((i, outcome))
    })
    .await;
    let winners: Vec<_> = results
        .iter()
        .filter_map(|(i, r)| match r {
            Rotation::Rotated(record) => Some((*i, record.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(*winners[0].1, old);
    // Every loser presented a token that was no longer current. The first to see that
    // revoked the family, which deletes its row: those after it find no family.
    let reuses = results
        .iter()
        .filter(|(_, r)| *r == reused("grant-1"))
        .count();
    let invalid = results
        .iter()
        .filter(|(_, r)| *r == Rotation::Invalid)
        .count();
    assert!(reuses >= 1, "{results:?}");
    assert_eq!(reuses + invalid, FAMILY_RACERS - 1, "{results:?}");

    // The family is revoked, the winner's new token with it.
    assert_eq!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 10)
    );
    for i in 0..FAMILY_RACERS {
        let h = hash(&format!("rt-1-{i}"));
        let found = store
            .get_refresh_token(&presented("grant-1", 1, &h), NOW + 10)
            .await
            .unwrap();
        assert_eq!(found, None, "{i}");
    }
    let late = hash("rt-late");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-1", 0, &h0), &late, NOW + 20))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    let winner = hash(&format!("rt-1-{}", winners[0].0));
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-1", 1, &winner), &late, NOW + 30))
            .await
            .unwrap(),
        Rotation::Invalid,
        "the winner's token died with its family"
    );
}

async fn expired_and_revoked_refresh_tokens_do_not_rotate(store: Arc<dyn Store>) {
    let token = family(&store, "rt", "grant-1").await;
    let (h, new) = (hash("rt"), hash("rt-new"));
    let current = presented("grant-1", 0, &h);

    // Idle lifetime over, then absolute lifetime over.
    let at_idle = token.idle_expires_at;
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(current, &new, at_idle))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&current, at_idle).await.unwrap(),
        None
    );
    store
        .insert_grant(&grant("grant-long", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let mut long_idle = refresh("rt-long-idle", "grant-long", "client-1", "sub-1");
    long_idle.idle_expires_at = NOW + 1_000_000;
    store.insert_refresh_token(&long_idle).await.unwrap();
    let hl = hash("rt-long-idle");
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-long", 0, &hl), NOW)
            .await
            .unwrap()
            .unwrap()
            .idle_expires_at,
        long_idle.expires_at,
        "the idle expiry is capped at the family's"
    );
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(
                presented("grant-long", 0, &hl),
                &new,
                long_idle.expires_at
            ))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    let unknown = hash("unknown");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-none", 0, &unknown), &new, NOW))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-1", 1, &new), NOW)
            .await
            .unwrap(),
        None,
        "nothing changed"
    );

    // A family with no grant row is dead.
    store
        .insert_refresh_token(&refresh("rt-orphan", "grant-gone", "client-1", "sub-1"))
        .await
        .unwrap();
    let ho = hash("rt-orphan");
    let orphan = presented("grant-gone", 0, &ho);
    assert_eq!(store.get_refresh_token(&orphan, NOW).await.unwrap(), None);
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(orphan, &new, NOW))
            .await
            .unwrap(),
        Rotation::Invalid
    );

    // After the family is revoked, neither the current nor an old token rotates.
    let rotated = store
        .rotate_refresh_token(&rotation(current, &new, NOW + 1))
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)));
    store.revoke_grant("grant-1", NOW + 2).await.unwrap();
    let newer = hash("rt-newer");
    for old in [current, presented("grant-1", 1, &new)] {
        assert_eq!(
            store
                .rotate_refresh_token(&rotation(old, &newer, NOW + 3))
                .await
                .unwrap(),
            Rotation::Invalid,
            "{old:?}"
        );
        assert_eq!(store.get_refresh_token(&old, NOW + 3).await.unwrap(), None);
    }
}

async fn a_reused_refresh_token_revokes_its_family_in_the_same_call(store: Arc<dyn Store>) {
    family(&store, "rt-a", "grant-r").await;
    let (a, b, c) = (hash("rt-a"), hash("rt-b"), hash("rt-c"));
    assert!(matches!(
        store
            .rotate_refresh_token(&rotation(presented("grant-r", 0, &a), &b, NOW + 1))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert!(
        !store
            .is_access_token_revoked("j", Some("grant-r"))
            .await
            .unwrap()
    );

    // No revoke_grant here: the call that detects the reuse revokes the family.
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-r", 0, &a), &c, NOW + 5))
            .await
            .unwrap(),
        reused("grant-r")
    );
    let g = store.get_grant("grant-r").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 5));
    assert!(
        store
            .is_access_token_revoked("j", Some("grant-r"))
            .await
            .unwrap()
    );
    for (generation, token) in [(1, &b), (1, &c)] {
        assert_eq!(
            store
                .get_refresh_token(&presented("grant-r", generation, token), NOW + 5)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-r", 1, &b), &c, NOW + 6))
            .await
            .unwrap(),
        Rotation::Invalid,
        "the current token was deleted with its family"
    );

    // A family row of a revoked grant (one a racing rotation touched) is reuse as well, and
    // the first revocation time stays.
    store
        .insert_refresh_token(&refresh("rt-late", "grant-r", "client-1", "sub-1"))
        .await
        .unwrap();
    let late = hash("rt-late");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-r", 0, &late), &c, NOW + 7))
            .await
            .unwrap(),
        reused("grant-r")
    );
    assert_eq!(
        store
            .get_grant("grant-r")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 5)
    );
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-r", 0, &late), &c, NOW + 8))
            .await
            .unwrap(),
        Rotation::Invalid,
        "deleted by the revocation"
    );
}

/// The caller presents only tokens Latchkey issued (their MAC holds): one that names the
/// family but is not its current token (an older generation, or the current generation with
/// another secret, or a generation never reached) was rotated out or superseded, so it is
/// reuse, and it revokes the family even after many rotations.
async fn any_token_of_the_family_but_the_current_one_is_reuse(store: Arc<dyn Store>) {
    let stale = [
        (0, hash("gen-0")),
        (2, hash("other-secret")),
        (3, hash("gen-3")),
        (9, hash("gen-9")),
    ];
    for (i, (generation, token)) in stale.iter().enumerate() {
        let grant_id = format!("grant-{i}");
        family(&store, "gen-0", &grant_id).await;
        // Two rotations: generation 2 is current, with the token "gen-2".
        for (from, to) in [(0, "gen-1"), (1, "gen-2")] {
            let (old, new) = (hash(&format!("gen-{from}")), hash(to));
            assert!(matches!(
                store
                    .rotate_refresh_token(&rotation(presented(&grant_id, from, &old), &new, NOW))
                    .await
                    .unwrap(),
                Rotation::Rotated(_)
            ));
        }
        let c = hash("c");
        assert_eq!(
            store
                .rotate_refresh_token(&rotation(presented(&grant_id, *generation, token), &c, NOW))
                .await
                .unwrap(),
            reused(&grant_id),
            "generation {generation}"
        );
        let g2 = hash("gen-2");
        assert_eq!(
            store
                .get_refresh_token(&presented(&grant_id, 2, &g2), NOW)
                .await
                .unwrap(),
            None,
            "generation {generation}: the current token died with its family"
        );
    }
}

async fn another_clients_or_an_inactive_users_refresh_token_revokes_its_family(
    store: Arc<dyn Store>,
) {
    let new = hash("rt-new");
    // Another client, even asking for a scope never granted: the family ends.
    family(&store, "rt-o", "grant-o").await;
    let o = hash("rt-o");
    let other = RotationRequest {
        client_id: "client-2",
        scope: RefreshScope::Requested("openid admin"),
        ..rotation(presented("grant-o", 0, &o), &new, NOW)
    };
    assert_eq!(
        store.rotate_refresh_token(&other).await.unwrap(),
        Rotation::OtherClient {
            grant_id: "grant-o".to_owned()
        }
    );
    assert_eq!(
        store
            .get_grant("grant-o")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW)
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-o", 0, &o), NOW)
            .await
            .unwrap(),
        None
    );

    // A disabled user's token, and one whose user is gone.
    let mut disabled = user("sub-d", "dee");
    disabled.disabled = true;
    store.insert_user(&disabled).await.unwrap();
    for (tag, grant_id, sub) in [
        ("rt-d", "grant-d", "sub-d"),
        ("rt-g", "grant-g", "sub-gone"),
    ] {
        store
            .insert_grant(&grant(grant_id, "client-1", sub, NOW + 86_400))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh(tag, grant_id, "client-1", sub))
            .await
            .unwrap();
        let h = hash(tag);
        assert_eq!(
            store
                .rotate_refresh_token(&rotation(presented(grant_id, 0, &h), &new, NOW + 1))
                .await
                .unwrap(),
            Rotation::UserInactive {
                grant_id: grant_id.to_owned()
            },
            "{tag}"
        );
        assert_eq!(
            store.get_grant(grant_id).await.unwrap().unwrap().revoked_at,
            Some(NOW + 1),
            "{tag}"
        );
        assert!(
            store
                .is_access_token_revoked("j", Some(grant_id))
                .await
                .unwrap()
        );
    }
    // Enabling the user again does not bring the family back.
    disabled.disabled = false;
    store.update_user(&disabled).await.unwrap();
    let d = hash("rt-d");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-d", 0, &d), &new, NOW + 2))
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

async fn a_refresh_asking_for_more_scope_than_granted_changes_nothing(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    store
        .insert_grant(&grant("grant-s", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = RefreshTokenRecord {
        resource: Some("https://api.example.com".to_owned()),
        ..refresh("rt-s", "grant-s", "client-1", "sub-1")
    };
    store.insert_refresh_token(&token).await.unwrap();
    let (s, s2) = (hash("rt-s"), hash("rt-s2"));
    let first = presented("grant-s", 0, &s);
    // Granted: "openid offline_access".
    for scope in [
        RefreshScope::Requested("openid email"),
        RefreshScope::Requested("offline_access openid profile"),
        RefreshScope::Requested("openid offline"),
        RefreshScope::Malformed,
    ] {
        let request = RotationRequest {
            scope,
            ..rotation(first, &s2, NOW + 1)
        };
        assert_eq!(
            store.rotate_refresh_token(&request).await.unwrap(),
            Rotation::ScopeTooWide,
            "{scope:?}"
        );
    }
    assert_eq!(
        store.get_refresh_token(&first, NOW + 1).await.unwrap(),
        Some(token.clone()),
        "still current"
    );
    assert_eq!(
        store
            .get_grant("grant-s")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );

    // Within the scope granted: rotated, and the successor carries the family on, with the
    // scope originally granted (RFC 6749 §6).
    let narrower = RotationRequest {
        scope: RefreshScope::Requested("offline_access"),
        ..rotation(first, &s2, NOW + 10)
    };
    assert_eq!(
        store.rotate_refresh_token(&narrower).await.unwrap(),
        Rotation::Rotated(Box::new(token.clone()))
    );
    let successor = RefreshTokenRecord {
        generation: 1,
        token_hash: s2.clone(),
        created_at: NOW + 10,
        idle_expires_at: NOW + 10 + 600,
        ..token.clone()
    };
    let second = presented("grant-s", 1, &s2);
    assert_eq!(
        store.get_refresh_token(&second, NOW + 10).await.unwrap(),
        Some(successor)
    );
    assert_eq!(
        store.get_refresh_token(&first, NOW + 10).await.unwrap(),
        None,
        "rotated out"
    );

    // The successor's idle lifetime never outlasts the family.
    let s3 = hash("rt-s3");
    let long = RotationRequest {
        idle_ttl: 10_000_000,
        ..rotation(second, &s3, NOW + 20)
    };
    assert!(matches!(
        store.rotate_refresh_token(&long).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let last = store
        .get_refresh_token(&presented("grant-s", 2, &s3), NOW + 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.idle_expires_at, token.expires_at);
}

/// Through the trait: after many rotations only the current token works, every earlier one
/// is reuse. (The row count itself is checked in `store/refresh.rs`'s tests, which can see
/// the tables.)
async fn a_family_rotated_many_times_keeps_only_its_current_token(store: Arc<dyn Store>) {
    family(&store, "gen-0", "grant-m").await;
    for generation in 0..200 {
        let (old, new) = (
            hash(&format!("gen-{generation}")),
            hash(&format!("gen-{}", generation + 1)),
        );
        assert!(matches!(
            store
                .rotate_refresh_token(&rotation(presented("grant-m", generation, &old), &new, NOW))
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
    }
    let current = hash("gen-200");
    let record = store
        .get_refresh_token(&presented("grant-m", 200, &current), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.generation, 200);
    let first = hash("gen-0");
    let c = hash("c");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(presented("grant-m", 0, &first), &c, NOW))
            .await
            .unwrap(),
        reused("grant-m")
    );
}

async fn a_key_bound_refresh_token_rotates_only_with_its_key(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    store
        .insert_grant(&grant("grant-k", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = RefreshTokenRecord {
        dpop_jkt: Some("jkt-1".to_owned()),
        ..refresh("rt-k", "grant-k", "client-1", "sub-1")
    };
    store.insert_refresh_token(&token).await.unwrap();
    let (k, k2) = (hash("rt-k"), hash("rt-k2"));
    // No proof, or a proof of another key: nothing changes, the family lives on.
    for jkt in [None, Some("jkt-2"), Some("")] {
        let request = RotationRequest {
            dpop_jkt: jkt,
            ..rotation(presented("grant-k", 0, &k), &k2, NOW + 1)
        };
        assert_eq!(
            store.rotate_refresh_token(&request).await.unwrap(),
            Rotation::KeyMismatch,
            "{jkt:?}"
        );
    }
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-k", 0, &k), NOW + 1)
            .await
            .unwrap(),
        Some(token.clone()),
        "still current"
    );
    assert_eq!(
        store
            .get_grant("grant-k")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    // With its key: rotated, and the successor is bound to the same key.
    let with_key = RotationRequest {
        dpop_jkt: Some("jkt-1"),
        ..rotation(presented("grant-k", 0, &k), &k2, NOW + 2)
    };
    assert_eq!(
        store.rotate_refresh_token(&with_key).await.unwrap(),
        Rotation::Rotated(Box::new(token.clone()))
    );
    let successor = store
        .get_refresh_token(&presented("grant-k", 1, &k2), NOW + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.generation, 1);
    assert_eq!(successor.dpop_jkt.as_deref(), Some("jkt-1"));
    // Reuse still ends the family, key or no key.
    assert_eq!(
        store
            .rotate_refresh_token(&RotationRequest {
                dpop_jkt: Some("jkt-1"),
                ..rotation(presented("grant-k", 0, &k), &hash("rt-k3"), NOW + 3)
            })
            .await
            .unwrap(),
        Rotation::Reused {
            grant_id: "grant-k".to_owned()
        }
    );
    // An unbound token rotates with or without a proof.
    family(&store, "rt-u", "grant-u").await;
    let (u, u2) = (hash("rt-u"), hash("rt-u2"));
    let with_proof = RotationRequest {
        dpop_jkt: Some("jkt-1"),
        ..rotation(presented("grant-u", 0, &u), &u2, NOW + 4)
    };
    assert!(matches!(
        store.rotate_refresh_token(&with_proof).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let unbound = store
        .get_refresh_token(&presented("grant-u", 1, &u2), NOW + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unbound.dpop_jkt, None, "binding happens at issuance only");
}

/// `rotation` with a reuse grace of `grace` seconds.
fn graced<'a>(
    token: PresentedRefresh<'a>,
    new_hash: &'a [u8],
    now: i64,
    grace: i64,
) -> RotationRequest<'a> {
    RotationRequest {
        reuse_grace: grace,
        ..rotation(token, new_hash, now)
    }
}

fn is_revoked(rotation: &Rotation) -> bool {
    matches!(rotation, Rotation::Reused { .. })
}

/// The token the latest rotation replaced, presented again within the grace with the
/// successor derived from it, gets that successor again and changes nothing; anything else
/// (after the grace, with another successor, an older generation, no grace) is reuse.
async fn within_the_reuse_grace_the_replaced_token_gets_the_same_successor(store: Arc<dyn Store>) {
    let (h0, h1, h2) = (hash("g-0"), hash("g-1"), hash("g-2"));
    let first = || presented("grant-1", 0, &h0);
    family(&store, "g-0", "grant-1").await;
    let rotated = store
        .rotate_refresh_token(&graced(first(), &h1, NOW, 5))
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)), "{rotated:?}");
    for at in [NOW, NOW + 3, NOW + 5] {
        let again = store
            .rotate_refresh_token(&graced(first(), &h1, at, 5))
            .await
            .unwrap();
        assert!(
            matches!(&again, Rotation::Retried(c) if c.generation == 1 && c.token_hash == h1),
            "at +{}: {again:?}",
            at - NOW
        );
    }
    // Nothing changed: the successor rotates as usual.
    let current = presented("grant-1", 1, &h1);
    assert!(matches!(
        store
            .rotate_refresh_token(&graced(current, &h2, NOW + 6, 5))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    // Two generations back is reuse, within the grace or not.
    assert!(is_revoked(
        &store
            .rotate_refresh_token(&graced(first(), &h1, NOW + 6, 5))
            .await
            .unwrap()
    ));

    // After the grace; with another successor; without a grace: reuse, the family revoked.
    for (grant, at, successor, grace) in [
        ("grant-2", NOW + 6, &h1, 5),
        ("grant-3", NOW + 1, &h2, 5),
        ("grant-4", NOW + 1, &h1, 0),
    ] {
        family(&store, "g-0", grant).await;
        let token = presented(grant, 0, &h0);
        assert!(matches!(
            store
                .rotate_refresh_token(&graced(token, &h1, NOW, 5))
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
        let again = store
            .rotate_refresh_token(&graced(token, successor, at, grace))
            .await
            .unwrap();
        assert!(is_revoked(&again), "{grant}: {again:?}");
        assert!(
            store
                .get_refresh_token(&presented(grant, 1, &h1), at)
                .await
                .unwrap()
                .is_none(),
            "{grant}: the family is revoked"
        );
    }
}

/// Racing requests with one token under a reuse grace: exactly one rotates the family; every
/// other one gets the same successor (`Retried`); the family lives on.
async fn with_a_reuse_grace_racing_requests_rotate_once_and_all_get_the_successor(
    store: Arc<dyn Store>,
) {
    family(&store, "rt-0", "grant-1").await;
    let results = race_n(&store, FAMILY_RACERS, |s, _| async move {
        let (old_hash, new_hash) = (hash("rt-0"), hash("rt-1"));
        s.rotate_refresh_token(&graced(
            presented("grant-1", 0, &old_hash),
            &new_hash,
            NOW + 10,
            5,
        ))
        .await
    })
    .await;
    let rotated = results
        .iter()
        .filter(|r| matches!(r, Rotation::Rotated(_)))
        .count();
    let retried = results
        .iter()
        .filter(|r| matches!(r, Rotation::Retried(c) if c.token_hash == hash("rt-1")))
        .count();
    assert_eq!((rotated, retried), (1, FAMILY_RACERS - 1), "{results:?}");
    let h1 = hash("rt-1");
    assert!(
        store
            .get_refresh_token(&presented("grant-1", 1, &h1), NOW + 10)
            .await
            .unwrap()
            .is_some(),
        "the family lives on"
    );
}
