//! Contract: Sessions and session views (`sessions.rs`).

use super::*;

contract_tests!(
    sessions_are_found_only_until_they_expire,
    a_session_view_joins_user_and_consent,
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
