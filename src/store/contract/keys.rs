//! Contract: Signing keys (`keys.rs`).

use super::*;

contract_tests!(initial_keys_are_inserted_once_and_rotation_retires_old_keys,);

async fn initial_keys_are_inserted_once_and_rotation_retires_old_keys(store: Arc<dyn Store>) {
    assert!(store.list_keys().await.unwrap().is_empty());
    let inserted = race(&store, |s, i| async move {
        s.insert_initial_keys(&[key(&format!("k{i}-rs"), NOW), key(&format!("k{i}-es"), NOW)])
            .await
    })
    .await;
    assert_eq!(inserted.iter().filter(|b| **b).count(), 1, "{inserted:?}");
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    assert_eq!(store.change_versions().await.unwrap().keys, 1);
    assert!(
        !store
            .insert_initial_keys(&[key("late", NOW)])
            .await
            .unwrap()
    );
    assert_eq!(store.change_versions().await.unwrap().keys, 1);

    let before = store.list_keys().await.unwrap();
    store
        .rotate_keys(&[key("k-new", NOW + 100)], NOW + 100)
        .await
        .unwrap();
    let after = store.list_keys().await.unwrap();
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], key("k-new", NOW + 100), "newest first");
    for old in &after[1..] {
        assert_eq!(old.retired_at, Some(NOW + 100));
        assert!(before.iter().any(|k| k.kid == old.kid));
    }
    assert_eq!(store.change_versions().await.unwrap().keys, 2);

    store
        .rotate_keys(&[key("k-newer", NOW + 200)], NOW + 200)
        .await
        .unwrap();
    let kids: Vec<_> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(&kids[..2], ["k-newer", "k-new"]);
    assert_eq!(store.delete_retired_keys(NOW + 150).await.unwrap(), 2);
    let left = store.list_keys().await.unwrap();
    assert_eq!(left.len(), 2);
    assert_eq!(left[1].retired_at, Some(NOW + 200));
    assert_eq!(left[0].retired_at, None);
}
