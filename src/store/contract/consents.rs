//! Contract: Remembered consent (`consents.rs`).

use super::*;

contract_tests!(consents_are_saved_replaced_listed_and_deleted,);

async fn consents_are_saved_replaced_listed_and_deleted(store: Arc<dyn Store>) {
    let consent = |client_id: &str, scope: &str, at: i64| ConsentRecord {
        user_sub: "sub-1".to_owned(),
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        updated_at: at,
    };
    assert_eq!(store.get_consent("sub-1", "client-b").await.unwrap(), None);
    store
        .save_consent(&consent("client-b", "openid", NOW))
        .await
        .unwrap();
    store
        .save_consent(&consent("client-a", "openid email", NOW))
        .await
        .unwrap();
    store
        .save_consent(&consent("client-b", "openid profile", NOW + 5))
        .await
        .unwrap();
    assert_eq!(
        store.get_consent("sub-1", "client-b").await.unwrap(),
        Some(consent("client-b", "openid profile", NOW + 5))
    );
    assert_eq!(
        store.list_consents("sub-1").await.unwrap(),
        vec![
            consent("client-a", "openid email", NOW),
            consent("client-b", "openid profile", NOW + 5)
        ]
    );
    assert!(store.list_consents("sub-2").await.unwrap().is_empty());
    assert!(store.delete_consent("sub-1", "client-a").await.unwrap());
    assert!(!store.delete_consent("sub-1", "client-a").await.unwrap());
    assert_eq!(store.list_consents("sub-1").await.unwrap().len(), 1);
}
