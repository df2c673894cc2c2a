//! Contract: Revoked access tokens (`revocations.rs`).

use super::*;

contract_tests!(revoked_access_tokens_are_remembered,);

async fn revoked_access_tokens_are_remembered(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", NOW + 3_600)
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", NOW + 3_600)
        .await
        .unwrap();
    assert!(store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("jti-2", Some("grant-1"))
            .await
            .unwrap()
    );

    // A second revocation with an earlier expiry does not shorten how long it is remembered.
    store.revoke_access_token("jti-1", NOW + 10).await.unwrap();
    store.purge_expired(NOW + 100, 100).await.unwrap();
    assert!(store.is_access_token_revoked("jti-1", None).await.unwrap());
    store.purge_expired(NOW + 3_600, 100).await.unwrap();
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
}
