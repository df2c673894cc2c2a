//! Contract: Users (`users.rs`), and what deleting one takes with it.

use super::*;

contract_tests!(
    users_round_trip_and_usernames_are_unique,
    deleting_a_user_removes_its_dependents,
    a_password_change_ends_the_other_sessions_and_every_family,
    a_password_change_by_reset_link_ends_every_session_and_family,
    racing_password_changes_from_one_password_succeed_once,
    a_claims_patch_touches_only_the_claims_it_names,
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

/// A user with the sessions `tags` (each with a client that wants to hear of its end) and one
/// refresh family per client in `clients`.
async fn user_with_sessions_and_families(
    store: &Arc<dyn Store>,
    sub: &str,
    tags: &[&str],
    clients: &[&str],
) {
    store
        .insert_user(&user(sub, &format!("name-{sub}")))
        .await
        .unwrap();
    for tag in tags {
        store
            .insert_session(&session(tag, sub, NOW + 600))
            .await
            .unwrap();
        store
            .record_session_client(&format!("sid-{tag}"), "rp-pw", sub, NOW + 600)
            .await
            .unwrap();
    }
    for client in clients {
        let grant_id = format!("g-{sub}-{client}");
        store
            .insert_grant(&grant(&grant_id, client, sub, NOW + 86_400))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh(&format!("rt-{grant_id}"), &grant_id, client, sub))
            .await
            .unwrap();
    }
}

async fn family_lives(store: &Arc<dyn Store>, sub: &str, client: &str) -> bool {
    let grant_id = format!("g-{sub}-{client}");
    store
        .get_refresh_token(
            &presented(&grant_id, 0, &hash(&format!("rt-{grant_id}"))),
            NOW,
        )
        .await
        .unwrap()
        .is_some()
}

async fn a_password_change_ends_the_other_sessions_and_every_family(store: Arc<dyn Store>) {
    user_with_sessions_and_families(&store, "sub-pw", &["pw1", "pw2", "pw3"], &["c1", "c2"]).await;
    user_with_sessions_and_families(&store, "sub-qw", &["qw1"], &["c1"]).await;
    let old = user("sub-pw", "x").password_hash;

    // Not the current password: nothing changes, nothing ends.
    assert!(
        !store
            .change_password(
                "sub-pw",
                "$argon2id$stale",
                "$argon2id$new",
                Some(&hash("pw1")),
                NOW
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .get_session(&hash("pw2"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(family_lives(&store, "sub-pw", "c1").await);

    assert!(
        store
            .change_password("sub-pw", &old, "$argon2id$new", Some(&hash("pw1")), NOW + 5)
            .await
            .unwrap()
    );
    let changed = store.get_user("sub-pw").await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.updated_at, NOW + 5);
    // The session it was made in stays; the others end, and their client hears of it.
    assert!(
        store
            .get_session(&hash("pw1"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get_session(&hash("pw2"), NOW).await.unwrap(), None);
    assert_eq!(store.get_session(&hash("pw3"), NOW).await.unwrap(), None);
    let queued = store.list_outbox(LOGOUT_KIND, "rp-pw", 10).await.unwrap();
    assert_eq!(queued.len(), 2);
    // Every refresh family of the user ends, and its grant is revoked.
    assert!(!family_lives(&store, "sub-pw", "c1").await);
    assert!(!family_lives(&store, "sub-pw", "c2").await);
    let grant = store.get_grant("g-sub-pw-c1").await.unwrap().unwrap();
    assert_eq!(grant.revoked_at, Some(NOW + 5));
    // Another user keeps everything.
    assert!(
        store
            .get_session(&hash("qw1"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(family_lives(&store, "sub-qw", "c1").await);

    // The old password no longer matches; a disabled user cannot change theirs.
    assert!(
        !store
            .change_password("sub-pw", &old, "$argon2id$again", Some(&hash("pw1")), NOW)
            .await
            .unwrap()
    );
    let mut disabled = user("sub-qw", "name-sub-qw");
    disabled.disabled = true;
    store.update_user(&disabled).await.unwrap();
    assert!(
        !store
            .change_password("sub-qw", &old, "$argon2id$new", Some(&hash("qw1")), NOW)
            .await
            .unwrap()
    );
}

/// A reset link's change keeps no session (`keep` is `None`): every session of the user ends,
/// each client hears of it, and every family ends.
async fn a_password_change_by_reset_link_ends_every_session_and_family(store: Arc<dyn Store>) {
    user_with_sessions_and_families(&store, "sub-pw", &["pw1", "pw2"], &["c1"]).await;
    user_with_sessions_and_families(&store, "sub-qw", &["qw1"], &["c1"]).await;
    let old = user("sub-pw", "x").password_hash;
    assert!(
        store
            .change_password("sub-pw", &old, "$argon2id$new", None, NOW + 5)
            .await
            .unwrap()
    );
    assert_eq!(store.get_session(&hash("pw1"), NOW).await.unwrap(), None);
    assert_eq!(store.get_session(&hash("pw2"), NOW).await.unwrap(), None);
    let queued = store.list_outbox(LOGOUT_KIND, "rp-pw", 10).await.unwrap();
    assert_eq!(queued.len(), 2);
    assert!(!family_lives(&store, "sub-pw", "c1").await);
    // Another user keeps everything.
    assert!(
        store
            .get_session(&hash("qw1"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(family_lives(&store, "sub-qw", "c1").await);
    // The link's password is gone: the same change again does nothing.
    assert!(
        !store
            .change_password("sub-pw", &old, "$argon2id$again", None, NOW + 6)
            .await
            .unwrap()
    );
}

async fn racing_password_changes_from_one_password_succeed_once(store: Arc<dyn Store>) {
    user_with_sessions_and_families(&store, "sub-race", &["r1"], &["c1"]).await;
    let old = user("sub-race", "x").password_hash;
    let results = race(&store, move |store, i| {
        let old = old.clone();
        async move {
            store
                .change_password(
                    "sub-race",
                    &old,
                    &format!("$argon2id$new-{i}"),
                    Some(&hash("r1")),
                    NOW,
                )
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
}

async fn a_claims_patch_touches_only_the_claims_it_names(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-cl", "clara")).await.unwrap();
    let patch = |value: serde_json::Value| match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    assert!(
        store
            .patch_claims(
                "sub-cl",
                &patch(serde_json::json!({"name": null, "given_name": "Clara", "locale": "de-DE"})),
                NOW + 7,
            )
            .await
            .unwrap()
    );
    let stored = store.get_user("sub-cl").await.unwrap().unwrap();
    assert_eq!(stored.claims.name, None);
    assert_eq!(stored.claims.given_name.as_deref(), Some("Clara"));
    assert_eq!(stored.claims.locale.as_deref(), Some("de-DE"));
    // Claims the patch does not name are kept as they are.
    assert_eq!(stored.claims.email.as_deref(), Some("clara@example.com"));
    assert_eq!(stored.claims.email_verified, Some(true));
    assert_eq!(stored.updated_at, NOW + 7);
    // Removing what is not there is no error; an empty patch changes nothing.
    assert!(
        store
            .patch_claims("sub-cl", &patch(serde_json::json!({"nickname": null})), NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .patch_claims("sub-cl", &serde_json::Map::new(), NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user("sub-cl").await.unwrap().unwrap().claims,
        stored.claims
    );
    // Nobody, or a disabled user: false.
    assert!(
        !store
            .patch_claims("nobody", &patch(serde_json::json!({"name": "X"})), NOW)
            .await
            .unwrap()
    );
    let mut disabled = stored.clone();
    disabled.disabled = true;
    store.update_user(&disabled).await.unwrap();
    assert!(
        !store
            .patch_claims("sub-cl", &patch(serde_json::json!({"name": "X"})), NOW)
            .await
            .unwrap()
    );
}
