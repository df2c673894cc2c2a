//! Contract: The audit log (`audit.rs`).

use super::*;

contract_tests!(audit_events_are_recorded_and_filtered,);

async fn audit_events_are_recorded_and_filtered(store: Arc<dyn Store>) {
    let event = |kind: &str, sub: Option<&str>, client: Option<&str>, at: i64| AuditEvent {
        event_id: 0,
        occurred_at: at,
        kind: kind.to_owned(),
        user_sub: sub.map(str::to_owned),
        client_id: client.map(str::to_owned),
        ip: Some("127.0.0.1".to_owned()),
        detail: "{}".to_owned(),
    };
    store
        .record_event(&event("login_failed", Some("u1"), Some("c1"), NOW))
        .await
        .unwrap();
    store
        .record_event(&event("login_succeeded", Some("u1"), Some("c1"), NOW + 1))
        .await
        .unwrap();
    store
        .record_event(&event("client_created", None, Some("c2"), NOW + 2))
        .await
        .unwrap();
    let all = store
        .list_events(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].kind, "client_created", "newest first");
    assert!(all[0].event_id > all[1].event_id);
    let by_kind = store
        .list_events(&AuditFilter {
            kind: Some("login_failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_kind.len(), 1);
    assert_eq!(by_kind[0].user_sub.as_deref(), Some("u1"));
    let by_user = store
        .list_events(&AuditFilter {
            user_sub: Some("u1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_user.len(), 2);
    let by_client_since = store
        .list_events(&AuditFilter {
            client_id: Some("c1".into()),
            since: Some(NOW + 1),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_client_since.len(), 1);
    let page = store
        .list_events(&AuditFilter {
            before: Some(all[0].event_id),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].event_id, all[1].event_id);
    // Retention: events older than AUDIT_RETENTION are purged.
    store
        .purge_expired(NOW + AUDIT_RETENTION, 100)
        .await
        .unwrap();
    let left = store
        .list_events(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
}
