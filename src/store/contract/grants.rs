//! Contract: Revoking grants (token families) (`grants.rs`).

use super::*;

contract_tests!(
    revoking_a_grant_revokes_its_access_and_refresh_tokens,
    grants_are_revoked_per_user_and_client,
);

async fn revoking_a_grant_revokes_its_access_and_refresh_tokens(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt", "grant-1", "client-1", "sub-1"))
        .await
        .unwrap();
    assert!(
        !store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-missing"))
            .await
            .unwrap()
    );

    store.revoke_grant("grant-1", NOW + 5).await.unwrap();
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert_eq!(
        store
            .get_refresh_token(&presented("grant-1", 0, &hash("rt")), NOW)
            .await
            .unwrap(),
        None
    );
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 5));

    // Idempotent: the first revocation time stays.
    store.revoke_grant("grant-1", NOW + 9).await.unwrap();
    assert_eq!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 5)
    );
    store.revoke_grant("grant-missing", NOW).await.unwrap();
}

async fn grants_are_revoked_per_user_and_client(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("g-a1", "client-a", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-a2", "client-a", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-b", "client-b", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-other", "client-a", "sub-2", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt-a1", "g-a1", "client-a", "sub-1"))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt-b", "g-b", "client-b", "sub-1"))
        .await
        .unwrap();

    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", Some("client-a"), NOW)
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-a1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("g-a1", 0, &hash("rt-a1")), NOW)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .get_refresh_token(&presented("g-b", 0, &hash("rt-b")), NOW)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", None, NOW)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("g-b", 0, &hash("rt-b")), NOW)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-other"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", None, NOW)
            .await
            .unwrap(),
        0
    );
}
