//! Contract: Refresh-token rotation and reuse (`refresh.rs`).

use super::*;

contract_tests!(
    a_refresh_token_rotates_exactly_once_among_racing_requests,
    expired_and_revoked_refresh_tokens_do_not_rotate,
    rotated_refresh_tokens_name_their_grant,
);

async fn a_refresh_token_rotates_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let old = refresh("rt-0", "grant-1", "client-1", "sub-1");
    store.insert_refresh_token(&old).await.unwrap();
    assert_eq!(
        store.get_refresh_token(&hash("rt-0"), NOW).await.unwrap(),
        Some(old.clone())
    );

    let results = race(&store, |s, i| async move {
        let new = refresh(&format!("rt-1-{i}"), "grant-1", "client-1", "sub-1");
        let outcome = s
            .rotate_refresh_token(&hash("rt-0"), &new, NOW + 10)
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
    let reused = Rotation::Reused {
        grant_id: "grant-1".to_owned(),
    };
    assert_eq!(
        results.iter().filter(|(_, r)| *r == reused).count(),
        RACERS - 1
    );

    // Only the winner's new token was stored.
    let winner = format!("rt-1-{}", winners[0].0);
    for i in 0..RACERS {
        let tag = format!("rt-1-{i}");
        let found = store
            .get_refresh_token(&hash(&tag), NOW + 10)
            .await
            .unwrap();
        assert_eq!(found.is_some(), tag == winner, "{tag}");
    }
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-0"), NOW + 10)
            .await
            .unwrap(),
        None
    );
    let late = refresh("rt-late", "grant-1", "client-1", "sub-1");
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt-0"), &late, NOW + 20)
            .await
            .unwrap(),
        reused
    );

    // The new token rotates in its turn.
    let next = refresh("rt-2", "grant-1", "client-1", "sub-1");
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(&winner), &next, NOW + 30)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

async fn expired_and_revoked_refresh_tokens_do_not_rotate(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = refresh("rt", "grant-1", "client-1", "sub-1");
    store.insert_refresh_token(&token).await.unwrap();
    let new = refresh("rt-new", "grant-1", "client-1", "sub-1");

    // Idle lifetime over, then absolute lifetime over.
    let at_idle = token.idle_expires_at;
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt"), &new, at_idle)
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
            .rotate_refresh_token(&hash("rt-long-idle"), &new, long_idle.expires_at)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("unknown"), &new, NOW)
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
            .rotate_refresh_token(&hash("rt-orphan"), &new, NOW)
            .await
            .unwrap(),
        Rotation::Invalid
    );

    // After the family is revoked, neither the current nor an old token rotates.
    let rotated = store
        .rotate_refresh_token(&hash("rt"), &new, NOW + 1)
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)));
    store.revoke_grant("grant-1", NOW + 2).await.unwrap();
    let newer = refresh("rt-newer", "grant-1", "client-1", "sub-1");
    for old in ["rt", "rt-new"] {
        let outcome = store
            .rotate_refresh_token(&hash(old), &newer, NOW + 3)
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

async fn rotated_refresh_tokens_name_their_grant(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-r", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let old = refresh("rt-a", "grant-r", "client-1", "sub-1");
    store.insert_refresh_token(&old).await.unwrap();
    assert_eq!(
        store.rotated_token_grant(&hash("rt-a")).await.unwrap(),
        None,
        "current, not rotated"
    );
    let new = refresh("rt-b", "grant-r", "client-1", "sub-1");
    store
        .rotate_refresh_token(&hash("rt-a"), &new, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotated_token_grant(&hash("rt-a"))
            .await
            .unwrap()
            .as_deref(),
        Some("grant-r")
    );
    assert_eq!(
        store.rotated_token_grant(&hash("unknown")).await.unwrap(),
        None
    );
}
