//! Contract: Authorization codes (`codes.rs`).

use super::*;

contract_tests!(
    a_code_is_redeemed_exactly_once_among_racing_requests,
    expired_unknown_and_revoked_codes_are_invalid,
    a_reused_code_revokes_its_grant_in_the_same_call,
    a_code_presented_by_another_client_is_consumed_and_revokes_its_grant,
    a_code_bound_to_a_dpop_key_is_redeemed_only_with_that_key,
);

async fn a_code_is_redeemed_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    let c = code("code-1", "grant-1", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c, NOW + 60).await.unwrap();
    assert_eq!(
        store.get_grant("grant-1").await.unwrap(),
        Some(grant("grant-1", "client-1", "sub-1", NOW + 60))
    );

    let results = race_n(&store, FAMILY_RACERS, |s, _| async move {
        s.consume_code(&hash("code-1"), "client-1", None, NOW + 1, NOW + 7_200)
            .await
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
    assert_eq!(
        results.iter().filter(|r| **r == reused).count(),
        FAMILY_RACERS - 1
    );
    assert_eq!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 1),
        "the losers' reuse revoked the grant"
    );

    assert_eq!(
        store
            .consume_code(&hash("code-1"), "client-1", None, NOW + 2, NOW + 7_200)
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
            .consume_code(&hash("code-2"), "client-1", None, NOW, NOW + 100)
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
            .consume_code(&hash("expired"), "client-1", None, NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .consume_code(&hash("unknown"), "client-1", None, NOW, NOW + 60)
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
            .consume_code(&hash("revoked"), "client-1", None, NOW, NOW + 60)
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
        let redemption = store
            .consume_code(&hash(tag), "client-1", None, NOW, NOW + 60)
            .await;
        assert_eq!(redemption.unwrap(), CodeRedemption::Invalid, "{tag}");
    }
    disabled.disabled = false;
    store.update_user(&disabled).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("of-disabled"), "client-1", None, NOW, NOW + 60)
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

/// A code grant with one refresh token, for the revocation cases.
async fn redeemed_family(store: &Arc<dyn Store>, tag: &str, grant_id: &str) {
    store
        .insert_code(
            &code(tag, grant_id, "client-1", "sub-1", NOW + 60),
            NOW + 60,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .consume_code(&hash(tag), "client-1", None, NOW, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    store
        .insert_refresh_token(&refresh(
            &format!("rt-{tag}"),
            grant_id,
            "client-1",
            "sub-1",
        ))
        .await
        .unwrap();
}

async fn a_reused_code_revokes_its_grant_in_the_same_call(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    redeemed_family(&store, "code-r", "grant-r").await;
    assert!(
        !store
            .is_access_token_revoked("j", Some("grant-r"))
            .await
            .unwrap()
    );

    // No revoke_grant here: the call that detects the reuse revokes the family.
    assert_eq!(
        store
            .consume_code(&hash("code-r"), "client-1", None, NOW + 5, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Reused {
            grant_id: "grant-r".to_owned()
        }
    );
    let g = store.get_grant("grant-r").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 5));
    assert!(
        store
            .is_access_token_revoked("j", Some("grant-r"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-r", 0, &hash("rt-code-r")), NOW)
            .await
            .unwrap(),
        None
    );
    // Reused again: still reuse, and the first revocation time stays.
    assert!(matches!(
        store
            .consume_code(&hash("code-r"), "client-1", None, NOW + 9, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Reused { .. }
    ));
    assert_eq!(
        store
            .get_grant("grant-r")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 5)
    );
}

async fn a_code_presented_by_another_client_is_consumed_and_revokes_its_grant(
    store: Arc<dyn Store>,
) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    let c = code("code-o", "grant-o", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c, NOW + 60).await.unwrap();
    assert_eq!(
        store
            .consume_code(&hash("code-o"), "client-2", None, NOW, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::OtherClient {
            grant_id: "grant-o".to_owned()
        }
    );
    let g = store.get_grant("grant-o").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW));
    assert_eq!(g.expires_at, NOW + 60, "not extended");
    // The code is used up: its own client now presents a reused code.
    assert_eq!(
        store
            .consume_code(&hash("code-o"), "client-1", None, NOW + 1, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Reused {
            grant_id: "grant-o".to_owned()
        }
    );

    // Another client's code that is expired, or whose user is disabled, is merely invalid.
    let mut disabled = user("sub-d", "dee");
    disabled.disabled = true;
    store.insert_user(&disabled).await.unwrap();
    store
        .insert_code(
            &code("code-d", "grant-d", "client-1", "sub-d", NOW + 60),
            NOW + 60,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .consume_code(&hash("code-d"), "client-2", None, NOW, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_grant("grant-d")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
}

/// RFC 9449 §10: however a bound code was stored (plain, by a finished interaction, by a
/// consent), it is redeemed only with a proof of its key; without one, or with another key's,
/// nothing changes and it stays redeemable with the right key.
async fn a_code_bound_to_a_dpop_key_is_redeemed_only_with_that_key(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-k", "kay")).await.unwrap();
    store
        .insert_session(&session("sess-k", "sub-k", NOW + 100))
        .await
        .unwrap();
    let bound = |tag: &str| AuthCodeRecord {
        dpop_jkt: Some(format!("jkt-of-{tag}")),
        ..code(tag, &format!("g-{tag}"), "client-k", "sub-k", NOW + 60)
    };
    let (plain, finished, consented) = (bound("k-1"), bound("k-2"), bound("k-3"));
    store.insert_code(&plain, NOW + 60).await.unwrap();
    let finish = InteractionFinish {
        interaction_id: "ik-2",
        interaction_expires_at: NOW + 600,
        code: &finished,
        grant_expires_at: NOW + 700,
    };
    assert!(store.finish_interaction_with_code(&finish).await.unwrap());
    let live = hash("sess-k");
    let granted = event("consent_granted", "sub-k");
    let consent = ConsentFinish {
        interaction_id: "ik-3",
        interaction_expires_at: NOW + 600,
        session_hash: &live,
        session_sid: "sid-sess-k",
        scope: "openid",
        code: &consented,
        grant_expires_at: NOW + 700,
        event: &granted,
    };
    assert!(matches!(
        store.finish_consent(&consent).await.unwrap(),
        ConsentOutcome::Issued { .. }
    ));

    for tag in ["k-1", "k-2", "k-3"] {
        let jkt = format!("jkt-of-{tag}");
        for wrong in [None, Some("jkt-of-another-key"), Some("")] {
            assert_eq!(
                store
                    .consume_code(&hash(tag), "client-k", wrong, NOW + 1, NOW + 7_200)
                    .await
                    .unwrap(),
                CodeRedemption::WrongKey,
                "{tag} with {wrong:?}"
            );
        }
        let grant = store.get_grant(&format!("g-{tag}")).await.unwrap().unwrap();
        assert_eq!(grant.revoked_at, None, "a wrong key revokes nothing");
        match store
            .consume_code(&hash(tag), "client-k", Some(&jkt), NOW + 2, NOW + 7_200)
            .await
            .unwrap()
        {
            CodeRedemption::Redeemed(c) => assert_eq!(c.dpop_jkt.as_deref(), Some(jkt.as_str())),
            other => panic!("{tag}: expected a redemption, got {other:?}"),
        }
        // Once redeemed, the right key is a reuse like any other.
        assert!(matches!(
            store
                .consume_code(&hash(tag), "client-k", Some(&jkt), NOW + 3, NOW + 7_200)
                .await
                .unwrap(),
            CodeRedemption::Reused { .. }
        ));
    }
    // An unbound code does not care which key, if any, the request proved.
    let free = code("k-4", "g-k-4", "client-k", "sub-k", NOW + 60);
    store.insert_code(&free, NOW + 60).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("k-4"), "client-k", Some("any"), NOW, NOW + 7_200)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}
