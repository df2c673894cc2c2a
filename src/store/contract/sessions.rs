//! Contract: Sessions and session views (`sessions.rs`).

use super::*;

contract_tests!(
    sessions_are_found_only_until_they_expire,
    a_session_view_joins_user_and_consent,
    a_users_sessions_are_listed_most_recently_used_first,
    a_user_ends_only_their_own_sessions,
    a_sessions_last_use_is_written_only_when_stale,
);

async fn sessions_are_found_only_until_they_expire(store: Arc<dyn Store>) {
    let s1 = session("s1", "sub-a", NOW + 100);
    store.insert_session(&s1).await.unwrap();
    store
        .insert_session(&session("s2", "sub-a", NOW + 100))
        .await
        .unwrap();
    store
        .insert_session(&session("s3", "sub-b", NOW + 100))
        .await
        .unwrap();

    assert_eq!(store.get_session(&hash("s1"), NOW).await.unwrap(), Some(s1));
    assert_eq!(
        store.get_session(&hash("s1"), NOW + 100).await.unwrap(),
        None
    );
    assert_eq!(store.get_session(&hash("nope"), NOW).await.unwrap(), None);

    store.delete_session(&hash("s1"), NOW).await.unwrap();
    assert_eq!(store.get_session(&hash("s1"), NOW).await.unwrap(), None);
    store.delete_session(&hash("s1"), NOW).await.unwrap();

    // A session stored with the event of the login that started it.
    let login = event("login_succeeded", "sub-b");
    store
        .insert_session_with_event(&session("s4", "sub-b", NOW + 100), &login)
        .await
        .unwrap();
    assert!(store.get_session(&hash("s4"), NOW).await.unwrap().is_some());
    let logged = events_of(&store, "login_succeeded").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].user_sub.as_deref(), Some("sub-b"));
    // A failed session insert (the id exists) logs nothing either.
    let duplicate = store
        .insert_session_with_event(&session("s4", "sub-b", NOW + 100), &login)
        .await;
    assert!(duplicate.is_err());
    assert_eq!(events_of(&store, "login_succeeded").await.len(), 1);

    assert_eq!(
        store.delete_sessions_for_user("sub-a", NOW).await.unwrap(),
        1
    );
    assert_eq!(store.get_session(&hash("s2"), NOW).await.unwrap(), None);
    assert!(store.get_session(&hash("s3"), NOW).await.unwrap().is_some());
}

async fn a_session_view_joins_user_and_consent(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-v", "vera")).await.unwrap();
    store
        .insert_session(&session("sv", "sub-v", NOW + 100))
        .await
        .unwrap();
    let view = store
        .get_session_view(&hash("sv"), NOW, "client-v")
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(view.session, session("sv", "sub-v", NOW + 100));
    assert_eq!(view.username, "vera");
    assert!(!view.user_disabled);
    assert_eq!(view.consented_scope, None, "nothing granted yet");
    store
        .save_consent(&ConsentRecord {
            user_sub: "sub-v".to_owned(),
            client_id: "client-v".to_owned(),
            scope: "openid email".to_owned(),
            updated_at: NOW,
        })
        .await
        .unwrap();
    let view = store.get_session_view(&hash("sv"), NOW, "client-v").await;
    assert_eq!(
        view.unwrap().unwrap().consented_scope.as_deref(),
        Some("openid email")
    );
    let other_client = store.get_session_view(&hash("sv"), NOW, "client-w").await;
    assert_eq!(other_client.unwrap().unwrap().consented_scope, None);
    let mut disabled = user("sub-v", "vera");
    disabled.disabled = true;
    store.update_user(&disabled).await.unwrap();
    let view = store.get_session_view(&hash("sv"), NOW, "client-v").await;
    assert!(view.unwrap().unwrap().user_disabled);

    let expired = store
        .get_session_view(&hash("sv"), NOW + 100, "client-v")
        .await;
    assert_eq!(expired.unwrap(), None);
    // A session whose user is gone is no session.
    store
        .insert_session(&session("orphan", "sub-gone", NOW + 100))
        .await
        .unwrap();
    let orphan = store
        .get_session_view(&hash("orphan"), NOW, "client-v")
        .await;
    assert_eq!(orphan.unwrap(), None);
}

async fn a_users_sessions_are_listed_most_recently_used_first(store: Arc<dyn Store>) {
    for (tag, sub, used) in [
        ("l1", "sub-l", NOW),
        ("l2", "sub-l", NOW + 30),
        ("l3", "sub-l", NOW + 10),
        ("m1", "sub-m", NOW + 50),
    ] {
        let mut s = session(tag, sub, NOW + 100);
        s.last_used_at = used;
        store.insert_session(&s).await.unwrap();
    }
    let listed = store.list_sessions_of_user("sub-l", NOW, 10).await.unwrap();
    let sids: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
    assert_eq!(sids, ["sid-l2", "sid-l3", "sid-l1"]);
    // What the account page shows comes back as stored.
    assert_eq!(listed[0].device, "Firefox, Linux");
    assert_eq!(listed[0].ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(listed[0].last_used_at, NOW + 30);
    let first = store.list_sessions_of_user("sub-l", NOW, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].sid, "sid-l2");
    // Expired sessions are not listed.
    assert!(
        store
            .list_sessions_of_user("sub-l", NOW + 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_sessions_of_user("nobody", NOW, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_user_ends_only_their_own_sessions(store: Arc<dyn Store>) {
    for (tag, sub) in [
        ("o1", "sub-o"),
        ("o2", "sub-o"),
        ("o3", "sub-o"),
        ("p1", "sub-p"),
    ] {
        store
            .insert_session(&session(tag, sub, NOW + 100))
            .await
            .unwrap();
        store
            .record_session_client(&format!("sid-{tag}"), "rp-o", sub, NOW + 100)
            .await
            .unwrap();
    }
    let notified = |store: Arc<dyn Store>| async move {
        let items = store.list_outbox(LOGOUT_KIND, "rp-o", 10).await.unwrap();
        let mut sids: Vec<String> = items
            .iter()
            .map(|i| {
                let payload: serde_json::Value = serde_json::from_str(&i.payload).unwrap();
                payload["sid"].as_str().unwrap().to_owned()
            })
            .collect();
        sids.sort();
        sids
    };

    // Another user's session, or none at all: nothing ends, nothing is queued, one answer.
    assert!(
        !store
            .end_session_of_user("sub-o", "sid-p1", NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_session_of_user("sub-o", "sid-none", NOW)
            .await
            .unwrap()
    );
    assert!(store.get_session(&hash("p1"), NOW).await.unwrap().is_some());
    assert!(notified(store.clone()).await.is_empty());

    // One's own: it ends, and its client is told.
    assert!(
        store
            .end_session_of_user("sub-o", "sid-o1", NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.get_session(&hash("o1"), NOW).await.unwrap(), None);
    assert_eq!(notified(store.clone()).await, ["sid-o1"]);
    assert!(
        !store
            .end_session_of_user("sub-o", "sid-o1", NOW)
            .await
            .unwrap()
    );

    // Everywhere else: all but the kept one, and only the user's.
    assert_eq!(
        store
            .end_other_sessions_of_user("sub-o", &hash("o3"), NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_session(&hash("o2"), NOW).await.unwrap(), None);
    assert!(store.get_session(&hash("o3"), NOW).await.unwrap().is_some());
    assert!(store.get_session(&hash("p1"), NOW).await.unwrap().is_some());
    assert_eq!(notified(store.clone()).await, ["sid-o1", "sid-o2"]);
    // Keeping a session of another user ends all of one's own.
    assert_eq!(
        store
            .end_other_sessions_of_user("sub-o", &hash("p1"), NOW)
            .await
            .unwrap(),
        1
    );
    assert!(store.get_session(&hash("p1"), NOW).await.unwrap().is_some());
}

async fn a_sessions_last_use_is_written_only_when_stale(store: Arc<dyn Store>) {
    store
        .insert_session(&session("t1", "sub-t", NOW + 1000))
        .await
        .unwrap();
    let last_use = |store: Arc<dyn Store>| async move {
        store
            .get_session(&hash("t1"), NOW)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    // Not stale (last use NOW is not before NOW - 59): nothing written.
    store
        .touch_session(&hash("t1"), NOW + 30, NOW - 29)
        .await
        .unwrap();
    assert_eq!(last_use(store.clone()).await, NOW);
    // Stale: written.
    store
        .touch_session(&hash("t1"), NOW + 60, NOW + 1)
        .await
        .unwrap();
    assert_eq!(last_use(store.clone()).await, NOW + 60);
    // Racing writers for the same stale session: the conditional write lands once, with a
    // time one of them brought.
    let results = race(&store, |store, i| async move {
        let now = NOW + 200 + i as i64;
        store.touch_session(&hash("t1"), now, NOW + 141).await
    })
    .await;
    assert_eq!(results.len(), RACERS);
    let landed = last_use(store.clone()).await;
    assert!((NOW + 200..NOW + 200 + RACERS as i64).contains(&landed));
    // An unknown session is no error.
    store.touch_session(&hash("none"), NOW, NOW).await.unwrap();
}
