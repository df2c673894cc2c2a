//! Contract: Clients (`clients.rs`), and what deleting one takes with it.

use super::*;

contract_tests!(
    clients_round_trip_conflict_page_and_bump_the_version,
    deleting_a_client_removes_its_dependents,
    a_rotation_keeps_at_most_one_previous_secret_until_it_expires,
);

async fn clients_round_trip_conflict_page_and_bump_the_version(store: Arc<dyn Store>) {
    for id in ["client-b", "client-a", "client-c"] {
        store.insert_client(&client(id)).await.unwrap();
    }
    let mut public = client("client-public");
    public.secret_hash = None;
    public.metadata.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
    store.insert_client(&public).await.unwrap();
    assert_eq!(store.change_versions().await.unwrap().clients, 4);

    assert_eq!(
        store.get_client("client-a").await.unwrap(),
        Some(client("client-a"))
    );
    assert_eq!(
        store.get_client("client-public").await.unwrap(),
        Some(public)
    );
    assert_eq!(store.get_client("missing").await.unwrap(), None);

    let duplicate = store.insert_client(&client("client-a")).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict("client_id"))),
        "{duplicate:?}"
    );
    assert_eq!(
        store.change_versions().await.unwrap().clients,
        4,
        "a failed insert bumps nothing"
    );

    let ids = |page: Vec<ClientRecord>| page.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_clients(None, 2).await.unwrap()),
        ["client-a", "client-b"]
    );
    assert_eq!(
        ids(store.list_clients(Some("client-b"), 2).await.unwrap()),
        ["client-c", "client-public"]
    );
    assert!(
        store
            .list_clients(Some("client-public"), 2)
            .await
            .unwrap()
            .is_empty()
    );

    let mut changed = metadata("renamed");
    changed.first_party = true;
    assert!(
        store
            .update_client_metadata("client-a", &changed, NOW + 10)
            .await
            .unwrap()
    );
    let stored = store.get_client("client-a").await.unwrap().unwrap();
    assert_eq!(stored.metadata, changed);
    assert_eq!(stored.updated_at, NOW + 10);
    assert_eq!(stored.issued_at, NOW);
    assert_eq!(store.change_versions().await.unwrap().clients, 5);
    assert!(
        !store
            .update_client_metadata("missing", &changed, NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.change_versions().await.unwrap().clients,
        5,
        "no change, no bump"
    );

    assert!(
        store
            .set_client_secret("client-a", &new_secret("new-secret", NOW + 20, None), None)
            .await
            .unwrap()
    );
    let stored = store.get_client("client-a").await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(hash("new-secret")));
    assert_eq!(stored.updated_at, NOW + 20);
    assert!(
        !store
            .set_client_secret("missing", &new_secret("x", NOW, None), None)
            .await
            .unwrap()
    );
    assert_eq!(store.change_versions().await.unwrap().clients, 6);

    assert!(store.delete_client("client-a", NOW + 30).await.unwrap());
    assert_eq!(store.get_client("client-a").await.unwrap(), None);
    assert!(!store.delete_client("client-a", NOW + 30).await.unwrap());
    assert_eq!(store.change_versions().await.unwrap().clients, 7);
}

async fn deleting_a_client_removes_its_dependents(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    for id in ["client-1", "client-2"] {
        store.insert_client(&client(id)).await.unwrap();
        store
            .insert_code(
                &code(
                    &format!("code-{id}"),
                    &format!("g-code-{id}"),
                    id,
                    "sub-1",
                    NOW + 60,
                ),
                NOW + 60,
            )
            .await
            .unwrap();
        store
            .insert_grant(&grant(&format!("g-rt-{id}"), id, "sub-1", NOW + 86_400))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh(
                &format!("rt-{id}"),
                &format!("g-rt-{id}"),
                id,
                "sub-1",
            ))
            .await
            .unwrap();
        store
            .save_consent(&ConsentRecord {
                user_sub: "sub-1".to_owned(),
                client_id: id.to_owned(),
                scope: "openid".to_owned(),
                updated_at: NOW,
            })
            .await
            .unwrap();
    }
    let version = store.change_versions().await.unwrap().clients;

    assert!(store.delete_client("client-1", NOW + 1).await.unwrap());
    assert_eq!(store.change_versions().await.unwrap().clients, version + 1);
    assert_eq!(store.get_client("client-1").await.unwrap(), None);
    assert_eq!(
        store
            .consume_code(&hash("code-client-1"), "client-1", None, NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("g-rt-client-1", 0, &hash("rt-client-1")), NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_consent("sub-1", "client-1").await.unwrap(), None);
    let g = store.get_grant("g-rt-client-1").await.unwrap().unwrap();
    assert_eq!(
        g.revoked_at,
        Some(NOW + 1),
        "grants stay, revoked, until they expire"
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-rt-client-1"))
            .await
            .unwrap()
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-code-client-1"))
            .await
            .unwrap()
    );

    // The other client keeps everything.
    assert!(store.get_client("client-2").await.unwrap().is_some());
    assert!(
        store
            .get_refresh_token(&presented("g-rt-client-2", 0, &hash("rt-client-2")), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_consent("sub-1", "client-2")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-rt-client-2"))
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .consume_code(&hash("code-client-2"), "client-2", None, NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}

fn new_secret(tag: &str, created_at: i64, expires_at: Option<i64>) -> NewClientSecret {
    NewClientSecret {
        hash: hash(tag),
        created_at,
        expires_at,
    }
}

/// A rotation may keep the replaced secret working for a while; a second rotation drops the
/// oldest, so at most two secrets ever work, and a kept secret never outlives its own expiry.
async fn a_rotation_keeps_at_most_one_previous_secret_until_it_expires(store: Arc<dyn Store>) {
    store.insert_client(&client("client-r")).await.unwrap();
    let first = hash("secret-client-r");
    assert!(
        store
            .set_client_secret(
                "client-r",
                &new_secret("s2", NOW + 10, Some(NOW + 500)),
                Some(NOW + 100)
            )
            .await
            .unwrap()
    );
    let stored = store.get_client("client-r").await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(hash("s2")));
    assert_eq!(stored.secret_created_at, Some(NOW + 10));
    assert_eq!(stored.secret_expires_at, Some(NOW + 500));
    let previous = stored.previous_secret.clone().unwrap();
    assert_eq!(
        (
            previous.hash.clone(),
            previous.created_at,
            previous.expires_at
        ),
        (first.clone(), NOW, NOW + 100)
    );
    let live = |r: &ClientRecord, at: i64| -> Vec<Vec<u8>> {
        r.live_secret_hashes(at).map(<[u8]>::to_vec).collect()
    };
    assert_eq!(live(&stored, NOW + 50), vec![hash("s2"), first.clone()]);
    assert_eq!(
        live(&stored, NOW + 100),
        vec![hash("s2")],
        "the previous one expired"
    );
    assert!(
        live(&stored, NOW + 500).is_empty(),
        "the current one expired too"
    );

    // Kept for longer than the replaced secret's own expiry: its expiry wins.
    assert!(
        store
            .set_client_secret(
                "client-r",
                &new_secret("s3", NOW + 20, None),
                Some(NOW + 9_999)
            )
            .await
            .unwrap()
    );
    let stored = store.get_client("client-r").await.unwrap().unwrap();
    let previous = stored.previous_secret.clone().unwrap();
    assert_eq!(
        (previous.hash, previous.expires_at),
        (hash("s2"), NOW + 500)
    );
    assert_eq!(
        live(&stored, NOW + 30),
        vec![hash("s3"), hash("s2")],
        "never the first"
    );

    // Without overlap, the replaced secret stops at once.
    assert!(
        store
            .set_client_secret("client-r", &new_secret("s4", NOW + 30, None), None)
            .await
            .unwrap()
    );
    let stored = store.get_client("client-r").await.unwrap().unwrap();
    assert_eq!(stored.previous_secret, None);
    assert_eq!(live(&stored, NOW + 31), vec![hash("s4")]);
}
