//! Contract: Refresh-token rotation and reuse (`refresh.rs`): one operation that rotates, or
//! revokes the family where it must, in the call that detects it.

use super::*;

contract_tests!(
    a_refresh_token_rotates_exactly_once_among_racing_requests,
    expired_and_revoked_refresh_tokens_do_not_rotate,
    a_reused_refresh_token_revokes_its_family_in_the_same_call,
    another_clients_or_an_inactive_users_refresh_token_revokes_its_family,
    a_refresh_asking_for_more_scope_than_granted_changes_nothing,
    a_key_bound_refresh_token_rotates_only_with_its_key,
);

/// `client-1` presenting the token `token_hash` at `now`, with the scope granted, to be
/// replaced by `new_hash` (idle lifetime 600 s).
fn rotation<'a>(token_hash: &'a [u8], new_hash: &'a [u8], now: i64) -> RotationRequest<'a> {
    RotationRequest {
        token_hash,
        client_id: "client-1",
        scope: RefreshScope::Granted,
        dpop_jkt: None,
        new_token_hash: new_hash,
        now,
        idle_ttl: 600,
    }
}

/// User `sub-1`, grant `grant_id` and its current refresh token `tag`.
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
    assert_eq!(
        store.get_refresh_token(&hash("rt-0"), NOW).await.unwrap(),
        Some(old.clone())
    );

    let results = race_n(&store, FAMILY_RACERS, |s, i| async move {
        let (old_hash, new_hash) = (hash("rt-0"), hash(&format!("rt-1-{i}")));
        let outcome = s
            .rotate_refresh_token(&rotation(&old_hash, &new_hash, NOW + 10))
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
    assert_eq!(winners[0].1, old);
    // Every loser presented a token used before. The first to see that revoked the family,
    // which deletes its tokens, the presented one included: those after it present a token
    // that no longer exists.
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

    // The losers presented a token used before: the family is revoked, the winner's new
    // token with it.
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
        let tag = format!("rt-1-{i}");
        let found = store
            .get_refresh_token(&hash(&tag), NOW + 10)
            .await
            .unwrap();
        assert_eq!(found, None, "{tag}");
    }
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-0"), NOW + 10)
            .await
            .unwrap(),
        None
    );
    let late = hash("rt-late");
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt-0"), &late, NOW + 20))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&late, NOW + 20).await.unwrap(),
        None
    );
    let winner = hash(&format!("rt-1-{}", winners[0].0));
    let outcome = store
        .rotate_refresh_token(&rotation(&winner, &late, NOW + 30))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Rotation::Invalid) || outcome == reused("grant-1"),
        "the winner's token died with its family: {outcome:?}"
    );
}

async fn expired_and_revoked_refresh_tokens_do_not_rotate(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = refresh("rt", "grant-1", "client-1", "sub-1");
    store.insert_refresh_token(&token).await.unwrap();
    let new = hash("rt-new");

    // Idle lifetime over, then absolute lifetime over.
    let at_idle = token.idle_expires_at;
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt"), &new, at_idle))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt"), at_idle).await.unwrap(),
        None
    );
    let mut long_idle = refresh("rt-long-idle", "grant-1", "client-1", "sub-1");
    long_idle.idle_expires_at = NOW + 1_000_000;
    store.insert_refresh_token(&long_idle).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt-long-idle"), &new, long_idle.expires_at))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("unknown"), &new, NOW))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt-new"), NOW).await.unwrap(),
        None,
        "nothing inserted"
    );

    // A token whose family has no grant row is dead.
    store
        .insert_refresh_token(&refresh("rt-orphan", "grant-gone", "client-1", "sub-1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-orphan"), NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt-orphan"), &new, NOW))
            .await
            .unwrap(),
        Rotation::Invalid
    );

    // After the family is revoked, neither the current nor an old token rotates.
    let rotated = store
        .rotate_refresh_token(&rotation(&hash("rt"), &new, NOW + 1))
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)));
    store.revoke_grant("grant-1", NOW + 2).await.unwrap();
    let newer = hash("rt-newer");
    for old in ["rt", "rt-new"] {
        let outcome = store
            .rotate_refresh_token(&rotation(&hash(old), &newer, NOW + 3))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, Rotation::Invalid)
                || outcome
                    == Rotation::Reused {
                        grant_id: "grant-1".to_owned()
                    },
            "{old}: {outcome:?}"
        );
        assert_eq!(
            store.get_refresh_token(&hash(old), NOW + 3).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-newer"), NOW + 3)
            .await
            .unwrap(),
        None
    );
}

async fn a_reused_refresh_token_revokes_its_family_in_the_same_call(store: Arc<dyn Store>) {
    family(&store, "rt-a", "grant-r").await;
    let (a, b, c) = (hash("rt-a"), hash("rt-b"), hash("rt-c"));
    assert!(matches!(
        store
            .rotate_refresh_token(&rotation(&a, &b, NOW + 1))
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
            .rotate_refresh_token(&rotation(&a, &c, NOW + 5))
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
    for token in [&b, &c] {
        assert_eq!(store.get_refresh_token(token, NOW + 5).await.unwrap(), None);
    }
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&b, &c, NOW + 6))
            .await
            .unwrap(),
        Rotation::Invalid,
        "the current token was deleted with its family"
    );

    // A current token of a revoked family (one a racing rotation stored) is reuse as well,
    // and the first revocation time stays.
    store
        .insert_refresh_token(&refresh("rt-late", "grant-r", "client-1", "sub-1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt-late"), &c, NOW + 7))
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
            .rotate_refresh_token(&rotation(&hash("rt-late"), &c, NOW + 8))
            .await
            .unwrap(),
        Rotation::Invalid,
        "deleted by the revocation"
    );
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
        ..rotation(&o, &new, NOW)
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
        store.get_refresh_token(&hash("rt-o"), NOW).await.unwrap(),
        None
    );
    assert_eq!(store.get_refresh_token(&new, NOW).await.unwrap(), None);

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
        assert_eq!(
            store
                .rotate_refresh_token(&rotation(&hash(tag), &new, NOW + 1))
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
    assert_eq!(
        store
            .rotate_refresh_token(&rotation(&hash("rt-d"), &new, NOW + 2))
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
    // Granted: "openid offline_access".
    for scope in [
        RefreshScope::Requested("openid email"),
        RefreshScope::Requested("offline_access openid profile"),
        RefreshScope::Requested("openid offline"),
        RefreshScope::Malformed,
    ] {
        let request = RotationRequest {
            scope,
            ..rotation(&s, &s2, NOW + 1)
        };
        assert_eq!(
            store.rotate_refresh_token(&request).await.unwrap(),
            Rotation::ScopeTooWide,
            "{scope:?}"
        );
    }
    assert_eq!(
        store.get_refresh_token(&s, NOW + 1).await.unwrap(),
        Some(token.clone()),
        "still current"
    );
    assert_eq!(store.get_refresh_token(&s2, NOW + 1).await.unwrap(), None);
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
        ..rotation(&s, &s2, NOW + 10)
    };
    assert_eq!(
        store.rotate_refresh_token(&narrower).await.unwrap(),
        Rotation::Rotated(token.clone())
    );
    let successor = RefreshTokenRecord {
        token_hash: s2.clone(),
        created_at: NOW + 10,
        idle_expires_at: NOW + 10 + 600,
        ..token.clone()
    };
    assert_eq!(
        store.get_refresh_token(&s2, NOW + 10).await.unwrap(),
        Some(successor)
    );

    // The successor's idle lifetime never outlasts the family.
    let s3 = hash("rt-s3");
    let long = RotationRequest {
        idle_ttl: 10_000_000,
        ..rotation(&s2, &s3, NOW + 20)
    };
    assert!(matches!(
        store.rotate_refresh_token(&long).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let last = store
        .get_refresh_token(&s3, NOW + 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.idle_expires_at, token.expires_at);
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
            ..rotation(&k, &k2, NOW + 1)
        };
        assert_eq!(
            store.rotate_refresh_token(&request).await.unwrap(),
            Rotation::KeyMismatch,
            "{jkt:?}"
        );
    }
    assert_eq!(
        store.get_refresh_token(&k, NOW + 1).await.unwrap(),
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
        ..rotation(&k, &k2, NOW + 2)
    };
    assert_eq!(
        store.rotate_refresh_token(&with_key).await.unwrap(),
        Rotation::Rotated(token.clone())
    );
    let successor = store
        .get_refresh_token(&k2, NOW + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.dpop_jkt.as_deref(), Some("jkt-1"));
    // Reuse still ends the family, key or no key.
    assert_eq!(
        store
            .rotate_refresh_token(&RotationRequest {
                dpop_jkt: Some("jkt-1"),
                ..rotation(&k, &hash("rt-k3"), NOW + 3)
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
        ..rotation(&u, &u2, NOW + 4)
    };
    assert!(matches!(
        store.rotate_refresh_token(&with_proof).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let unbound = store
        .get_refresh_token(&u2, NOW + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unbound.dpop_jkt, None, "binding happens at issuance only");
}
