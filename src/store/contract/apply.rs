//! Contract: configuration as code (`apply.rs`): a batch is applied whole or not at all.

use super::*;

contract_tests!(
    a_batch_applies_in_one_transaction,
    a_batch_that_meets_a_moved_database_changes_nothing,
);

async fn a_batch_applies_in_one_transaction(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-old", "old")).await.unwrap();
    store.insert_client(&client("client-old")).await.unwrap();
    store
        .insert_session(&session("s1", "sub-old", NOW + 600))
        .await
        .unwrap();
    let version = store.change_versions().await.unwrap().clients;
    let mut disabled = user("sub-old", "old");
    disabled.disabled = true;
    let mut metadata = metadata("client-old");
    metadata.client_name = "Renamed".to_owned();
    store
        .apply_changes(
            &[
                Change::InsertClient(client("client-new")),
                Change::InsertUser(user("sub-new", "new")),
                Change::UpdateClientMetadata {
                    client_id: "client-old".to_owned(),
                    metadata: metadata.clone(),
                },
                Change::UpdateUser {
                    user: disabled.clone(),
                    end_access: true,
                },
            ],
            NOW + 1,
        )
        .await
        .unwrap();
    assert!(store.get_client("client-new").await.unwrap().is_some());
    assert!(store.get_user("sub-new").await.unwrap().is_some());
    let old = store.get_client("client-old").await.unwrap().unwrap();
    assert_eq!(old.metadata.client_name, "Renamed");
    assert!(store.get_user("sub-old").await.unwrap().unwrap().disabled);
    assert_eq!(
        store.get_session(&hash("s1"), NOW + 2).await.unwrap(),
        None,
        "disabling ended the session"
    );
    assert_eq!(
        store.change_versions().await.unwrap().clients,
        version + 1,
        "one bump for the batch"
    );

    store
        .apply_changes(
            &[
                Change::DeleteClient("client-old".to_owned()),
                Change::DeleteUser("sub-old".to_owned()),
            ],
            NOW + 2,
        )
        .await
        .unwrap();
    assert!(store.get_client("client-old").await.unwrap().is_none());
    assert!(store.get_user("sub-old").await.unwrap().is_none());
}

async fn a_batch_that_meets_a_moved_database_changes_nothing(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    let version = store.change_versions().await.unwrap().clients;
    for last in [
        Change::DeleteClient("client-gone".to_owned()),
        Change::UpdateClientMetadata {
            client_id: "client-gone".to_owned(),
            metadata: metadata("client-gone"),
        },
        Change::DeleteUser("sub-gone".to_owned()),
        Change::InsertClient(client("client-x")),
    ] {
        let result = store
            .apply_changes(
                &[
                    Change::InsertClient(client("client-x")),
                    Change::DeleteUser("sub-a".to_owned()),
                    last.clone(),
                ],
                NOW,
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "{last:?}: {result:?}"
        );
        assert!(
            store.get_client("client-x").await.unwrap().is_none(),
            "{last:?}"
        );
        assert!(store.get_user("sub-a").await.unwrap().is_some(), "{last:?}");
    }
    assert_eq!(store.change_versions().await.unwrap().clients, version);
}
