//! Contract: Authorization codes (`codes.rs`).

use super::*;

contract_tests!(
    a_code_is_redeemed_exactly_once_among_racing_requests,
    expired_unknown_and_revoked_codes_are_invalid,
);

async fn a_code_is_redeemed_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    let c = code("code-1", "grant-1", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c, NOW + 60).await.unwrap();
    assert_eq!(
        store.get_grant("grant-1").await.unwrap(),
        Some(grant("grant-1", "client-1", "sub-1", NOW + 60))
    );

    let results = race(&store, |s, _| async move {
        s.consume_code(&hash("code-1"), NOW + 1, NOW + 7_200).await
    })
    .await;
    let redeemed: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            CodeRedemption::Redeemed(record) => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(redeemed, vec![c]);
    let reused = CodeRedemption::Reused {
        grant_id: "grant-1".to_owned(),
    };
    assert_eq!(results.iter().filter(|r| **r == reused).count(), RACERS - 1);

    assert_eq!(
        store
            .consume_code(&hash("code-1"), NOW + 2, NOW + 7_200)
            .await
            .unwrap(),
        reused
    );
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.expires_at, NOW + 7_200, "redemption extends the grant");

    // The grant's expiry is only ever raised.
    let c2 = code("code-2", "grant-2", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c2, NOW + 9_000).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("code-2"), NOW, NOW + 100)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store
            .get_grant("grant-2")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        NOW + 9_000
    );
}

async fn expired_unknown_and_revoked_codes_are_invalid(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    store
        .insert_code(&code("expired", "grant-e", "client-1", "sub-1", NOW), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .consume_code(&hash("expired"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .consume_code(&hash("unknown"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    store
        .insert_code(
            &code("revoked", "grant-r", "client-1", "sub-1", NOW + 60),
            NOW + 60,
        )
        .await
        .unwrap();
    store.revoke_grant("grant-r", NOW).await.unwrap();
    assert_eq!(
        store
            .consume_code(&hash("revoked"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // A code whose user was disabled, or is gone, is invalid and stays unconsumed.
    let mut disabled = user("sub-d", "dee");
    disabled.disabled = true;
    store.insert_user(&disabled).await.unwrap();
    for (tag, sub) in [("of-disabled", "sub-d"), ("of-nobody", "sub-gone")] {
        let grant_id = format!("grant-{tag}");
        store
            .insert_code(&code(tag, &grant_id, "client-1", sub, NOW + 60), NOW + 60)
            .await
            .unwrap();
        let redemption = store.consume_code(&hash(tag), NOW, NOW + 60).await;
        assert_eq!(redemption.unwrap(), CodeRedemption::Invalid, "{tag}");
    }
    disabled.disabled = false;
    store.update_user(&disabled).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("of-disabled"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    let duplicate = store
        .insert_code(
            &code("other", "grant-r", "client-1", "sub-1", NOW + 60),
            NOW + 60,
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict("grant_id"))),
        "{duplicate:?}"
    );
}
