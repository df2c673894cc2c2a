//! Contract: Migrations, change counters and purging expired rows (`housekeeping.rs`).

use super::*;

contract_tests!(
    migrations_are_idempotent_and_versions_start_at_zero,
    purge_removes_only_expired_rows_in_batches,
);

async fn migrations_are_idempotent_and_versions_start_at_zero(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(
        store.change_versions().await.unwrap(),
        ChangeVersions {
            clients: 0,
            keys: 0
        }
    );
}

async fn purge_removes_only_expired_rows_in_batches(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    // Each kind gets one expired row (expires_at == now counts as expired) and one live one.
    for (tag, exp) in [("old", NOW), ("new", NOW + 1)] {
        store
            .insert_session(&session(tag, "sub-1", exp))
            .await
            .unwrap();
        assert!(store.finish_interaction(tag, exp).await.unwrap());
        store
            .insert_code(&code(tag, &format!("g-code-{tag}"), "c", "sub-1", exp), exp)
            .await
            .unwrap();
        store
            .revoke_access_token(&format!("jti-{tag}"), exp)
            .await
            .unwrap();
    }
    for g in ["g-rt", "g-rt-idle", "g-rt-abs"] {
        store
            .insert_grant(&grant(g, "c", "sub-1", NOW))
            .await
            .unwrap();
    }
    let mut idle = refresh("rt-idle", "g-rt-idle", "c", "sub-1");
    idle.idle_expires_at = NOW;
    let mut absolute = refresh("rt-abs", "g-rt-abs", "c", "sub-1");
    absolute.expires_at = NOW;
    let live = refresh("rt-live", "g-rt", "c", "sub-1");
    for t in [&idle, &absolute, &live] {
        store.insert_refresh_token(t).await.unwrap();
    }

    // 1 code, 1 session, 1 finished interaction, 2 refresh families, 3 grants (g-code-old and
    // the two families'), 1 jti. g-rt expired too, but its live refresh family holds it.
    assert_eq!(store.purge_expired(NOW, 100).await.unwrap(), 9);
    assert_eq!(store.purge_expired(NOW, 100).await.unwrap(), 0);

    assert!(
        store
            .get_session(&hash("new"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !store.finish_interaction("new", NOW + 1).await.unwrap(),
        "a live finished mark stays"
    );
    assert!(
        store.finish_interaction("old", NOW + 1).await.unwrap(),
        "an expired one is gone"
    );
    assert!(store.get_grant("g-code-new").await.unwrap().is_some());
    assert!(store.get_grant("g-code-old").await.unwrap().is_none());
    assert!(
        store
            .is_access_token_revoked("jti-new", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("jti-old", None)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_refresh_token(&presented("g-rt", 0, &hash("rt-live")), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.get_grant("g-rt").await.unwrap().is_some());
    assert!(matches!(
        store
            .consume_code(&hash("new"), "c", None, NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    // Batches: at most `batch` rows of each kind per call.
    for i in 0..5 {
        store
            .insert_session(&session(&format!("batch-{i}"), "sub-1", NOW))
            .await
            .unwrap();
    }
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 2);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 2);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 0);
}
