//! Contract: Signing keys (`keys.rs`).

use super::*;

contract_tests!(
    initial_keys_are_inserted_once_and_rotation_retires_old_keys,
    a_scheduled_successor_is_inserted_once_whoever_races,
    a_rotation_by_hand_drops_scheduled_keys_and_retires_at_once,
    a_rotation_by_hand_published_ahead_retires_the_old_key_when_the_new_one_starts,
);

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
        .rotate_keys(&[key("k-new", NOW + 100)], NOW + 100, NOW + 100)
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
        .rotate_keys(&[key("k-newer", NOW + 200)], NOW + 200, NOW + 200)
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

fn next_key(kid: &str, created_at: i64, activates_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        activates_at,
        ..key(kid, created_at)
    }
}

/// Fifty nodes notice at once that the active key's successor is due: exactly one inserts.
async fn a_scheduled_successor_is_inserted_once_whoever_races(store: Arc<dyn Store>) {
    assert!(store.insert_initial_keys(&[key("k0", NOW)]).await.unwrap());
    let version = store.change_versions().await.unwrap().keys;
    let won = race(&store, |s, i| async move {
        s.schedule_next_key(&next_key(&format!("n{i}"), NOW + 90, NOW + 100), "k0")
            .await
    })
    .await;
    assert_eq!(won.iter().filter(|b| **b).count(), 1, "{won:?}");
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0].activates_at, NOW + 100, "latest activation first");
    assert_eq!(keys[1].kid, "k0");
    assert_eq!(
        keys[1].retired_at,
        Some(NOW + 100),
        "retires when the successor starts"
    );
    assert_eq!(store.change_versions().await.unwrap().keys, version + 1);
    // The same claim again, later: the key already has its successor.
    assert!(
        !store
            .schedule_next_key(&next_key("late", NOW + 95, NOW + 105), "k0")
            .await
            .unwrap()
    );
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}

async fn a_rotation_by_hand_drops_scheduled_keys_and_retires_at_once(store: Arc<dyn Store>) {
    assert!(store.insert_initial_keys(&[key("k0", NOW)]).await.unwrap());
    assert!(
        store
            .schedule_next_key(&next_key("k1", NOW + 90, NOW + 100), "k0")
            .await
            .unwrap()
    );
    store
        .rotate_keys(&[key("k2", NOW + 50)], NOW + 50, NOW + 50)
        .await
        .unwrap();
    let keys = store.list_keys().await.unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        ["k2", "k0"],
        "the scheduled key never signed: dropped"
    );
    assert_eq!(
        keys[1].retired_at,
        Some(NOW + 50),
        "retired now, not at NOW + 100"
    );
    assert_eq!(keys[0].retired_at, None);
}

/// `keys rotate` without `--now`: the new key is `next` until `starts`, the active key signs
/// until then; a second rotation before `starts` replaces the pending key (it never signed)
/// and moves the hand-over, and fifty at once leave exactly one pending key.
async fn a_rotation_by_hand_published_ahead_retires_the_old_key_when_the_new_one_starts(
    store: Arc<dyn Store>,
) {
    assert!(store.insert_initial_keys(&[key("k0", NOW)]).await.unwrap());
    store
        .rotate_keys(&[next_key("k1", NOW + 10, NOW + 60)], NOW + 10, NOW + 60)
        .await
        .unwrap();
    let keys = store.list_keys().await.unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k1", "k0"]);
    assert_eq!(keys[0].retired_at, None);
    assert_eq!(keys[1].retired_at, Some(NOW + 60), "signs until k1 starts");

    let version = store.change_versions().await.unwrap().keys;
    race(&store, |s, i| async move {
        let kid = format!("r{i}");
        s.rotate_keys(&[next_key(&kid, NOW + 20, NOW + 80)], NOW + 20, NOW + 80)
            .await
    })
    .await;
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "one pending key and k0: {keys:?}");
    assert!(keys[0].kid.starts_with('r'), "{keys:?}");
    assert_eq!(keys[0].activates_at, NOW + 80);
    assert_eq!(keys[1].kid, "k0");
    assert_eq!(keys[1].retired_at, Some(NOW + 80), "the hand-over moved");
    assert!(store.change_versions().await.unwrap().keys > version);
}
