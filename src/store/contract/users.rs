//! Contract: Users (`users.rs`), and what deleting one takes with it.

use super::*;

contract_tests!(
    users_round_trip_and_usernames_are_unique,
    deleting_a_user_removes_its_dependents,
);

async fn users_round_trip_and_usernames_are_unique(store: Arc<dyn Store>) {
    let alice = user("sub-a", "alice");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&user("sub-b", "bob")).await.unwrap();
    store.insert_user(&user("sub-c", "carol")).await.unwrap();

    assert_eq!(store.get_user("sub-a").await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.get_user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.get_user_by_username("nobody").await.unwrap(), None);
    assert_eq!(store.get_user("missing").await.unwrap(), None);

    let taken = store.insert_user(&user("sub-d", "alice")).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict("username"))),
        "{taken:?}"
    );
    let same_sub = store.insert_user(&user("sub-a", "alice2")).await;
    assert!(
        matches!(same_sub, Err(StoreError::Conflict("sub"))),
        "{same_sub:?}"
    );

    let subs = |page: Vec<UserRecord>| page.into_iter().map(|u| u.sub).collect::<Vec<_>>();
    assert_eq!(
        subs(store.list_users(None, 2).await.unwrap()),
        ["sub-a", "sub-b"]
    );
    assert_eq!(
        subs(store.list_users(Some("sub-b"), 10).await.unwrap()),
        ["sub-c"]
    );

    let mut renamed = alice.clone();
    renamed.username = "bob".to_owned();
    let clash = store.update_user(&renamed).await;
    assert!(
        matches!(clash, Err(StoreError::Conflict("username"))),
        "{clash:?}"
    );

    renamed.username = "alicia".to_owned();
    renamed.disabled = true;
    renamed.claims.family_name = Some("Liddell".to_owned());
    renamed.updated_at = NOW + 10;
    assert!(store.update_user(&renamed).await.unwrap());
    assert_eq!(
        store.get_user("sub-a").await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(store.get_user_by_username("alice").await.unwrap(), None);
    let mut ghost = renamed.clone();
    ghost.sub = "missing".to_owned();
    ghost.username = "ghost".to_owned();
    assert!(!store.update_user(&ghost).await.unwrap());

    assert!(
        store
            .set_password("sub-a", "$argon2id$new", NOW + 20)
            .await
            .unwrap()
    );
    let stored = store.get_user("sub-a").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$argon2id$new");
    assert_eq!(stored.updated_at, NOW + 20);
    assert!(!store.set_password("missing", "x", NOW).await.unwrap());
}

async fn deleting_a_user_removes_its_dependents(store: Arc<dyn Store>) {
    for sub in ["sub-1", "sub-2"] {
        store
            .insert_user(&user(sub, &format!("name-{sub}")))
            .await
            .unwrap();
        store
            .insert_session(&session(&format!("s-{sub}"), sub, NOW + 600))
            .await
            .unwrap();
        store
            .insert_code(
                &code(
                    &format!("code-{sub}"),
                    &format!("g-code-{sub}"),
                    "client-1",
                    sub,
                    NOW + 60,
                ),
                NOW + 60,
            )
            .await
            .unwrap();
        store
            .insert_grant(&grant(
                &format!("g-rt-{sub}"),
                "client-1",
                sub,
                NOW + 86_400,
            ))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh(
                &format!("rt-{sub}"),
                &format!("g-rt-{sub}"),
                "client-1",
                sub,
            ))
            .await
            .unwrap();
        store
            .save_consent(&ConsentRecord {
                user_sub: sub.to_owned(),
                client_id: "client-1".to_owned(),
                scope: "openid".to_owned(),
                updated_at: NOW,
            })
            .await
            .unwrap();
    }

    assert!(store.delete_user("sub-1", NOW + 1).await.unwrap());
    assert!(!store.delete_user("sub-1", NOW + 1).await.unwrap());
    assert_eq!(store.get_user("sub-1").await.unwrap(), None);
    assert_eq!(
        store.get_user_by_username("name-sub-1").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_session(&hash("s-sub-1"), NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_code(&hash("code-sub-1"), "client-1", None, NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_refresh_token(&presented("g-rt-sub-1", 0, &hash("rt-sub-1")), NOW)
            .await
            .unwrap(),
        None
    );
    assert!(store.list_consents("sub-1").await.unwrap().is_empty());
    assert!(
        store
            .is_access_token_revoked("j", Some("g-rt-sub-1"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_grant("g-rt-sub-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 1)
    );

    // The username is free again, and the other user keeps everything.
    store
        .insert_user(&user("sub-3", "name-sub-1"))
        .await
        .unwrap();
    assert!(
        store
            .get_session(&hash("s-sub-2"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_refresh_token(&presented("g-rt-sub-2", 0, &hash("rt-sub-2")), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list_consents("sub-2").await.unwrap().len(), 1);
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-rt-sub-2"))
            .await
            .unwrap()
    );
}
