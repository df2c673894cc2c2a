//! Contract: Device authorization (`devices.rs`).

use super::*;

contract_tests!(a_device_is_approved_once_and_taken_once,);

fn device(tag: &str, user_code: &str) -> DeviceRecord {
    DeviceRecord {
        device_code_hash: tag.as_bytes().to_vec(),
        user_code: user_code.into(),
        client_id: "tv".into(),
        scope: "openid".into(),
        resource: None,
        interval_secs: 5,
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

async fn a_device_is_approved_once_and_taken_once(store: Arc<dyn Store>) {
    store
        .insert_user(&UserRecord {
            sub: "sub-d".into(),
            username: "dee".into(),
            password_hash: "x".into(),
            claims: Default::default(),
            disabled: false,
            password_reset_required: false,
            mfa_required: false,
            created_at: NOW,
            updated_at: NOW,
        })
        .await
        .unwrap();
    store
        .insert_session(&SessionRecord {
            session_hash: b"sess".to_vec(),
            sid: "sid-1".into(),
            user_sub: "sub-d".into(),
            auth_time: NOW - 5,
            amr: "pwd".into(),
            created_at: NOW,
            expires_at: NOW + 3600,
            ..SessionRecord::default()
        })
        .await
        .unwrap();
    store
        .insert_device(&device("d1", "BCDFGHJK"))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_device(&device("d2", "BCDFGHJK")).await,
        Err(crate::store::StoreError::Conflict(_))
    ));
    assert_eq!(
        store.pending_device("BCDFGHJK", NOW).await.unwrap(),
        Some(device("d1", "BCDFGHJK"))
    );
    assert_eq!(
        store.poll_device(b"d1", "tv", NOW).await.unwrap(),
        Poll::Pending
    );
    assert_eq!(
        store.poll_device(b"d1", "tv", NOW + 2).await.unwrap(),
        Poll::SlowDown
    );
    assert_eq!(
        store.poll_device(b"d1", "tv", NOW + 8).await.unwrap(),
        Poll::SlowDown,
        "the interval grew to 10 s"
    );
    assert_eq!(
        store.poll_device(b"d1", "other", NOW + 30).await.unwrap(),
        Poll::Invalid
    );
    let event = AuditEvent {
        kind: "device_approved".into(),
        ..Default::default()
    };
    let answer = |sid: &'static str| DeviceAnswer {
        user_code: "BCDFGHJK",
        session_hash: b"sess",
        session_sid: sid,
        allowed: true,
        now: NOW + 30,
        event: &event,
    };
    assert_eq!(
        store.answer_device(&answer("another-sid")).await.unwrap(),
        DeviceAnswered::NoSession
    );
    assert_eq!(
        store.answer_device(&answer("sid-1")).await.unwrap(),
        DeviceAnswered::Done {
            user_sub: "sub-d".into()
        }
    );
    assert_eq!(
        store.answer_device(&answer("sid-1")).await.unwrap(),
        DeviceAnswered::NotPending
    );
    // Racing polls: one takes the grant.
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.poll_device(b"d1", "tv", NOW + 100).await.unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for r in racers {
        if let Poll::Approved { approval, .. } = r.await.unwrap() {
            assert_eq!(approval.user_sub, "sub-d");
            assert_eq!(approval.sid, "sid-1");
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
    assert_eq!(
        store.poll_device(b"d1", "tv", NOW + 200).await.unwrap(),
        Poll::Invalid
    );
    // Denied, and expired.
    store
        .insert_device(&device("d3", "CDFGHJKL"))
        .await
        .unwrap();
    let deny = DeviceAnswer {
        user_code: "CDFGHJKL",
        allowed: false,
        ..answer("sid-1")
    };
    assert!(matches!(
        store.answer_device(&deny).await.unwrap(),
        DeviceAnswered::Done { .. }
    ));
    assert_eq!(
        store.poll_device(b"d3", "tv", NOW + 40).await.unwrap(),
        Poll::Denied
    );
    store
        .insert_device(&device("d4", "DFGHJKLM"))
        .await
        .unwrap();
    assert_eq!(
        store.poll_device(b"d4", "tv", NOW + 600).await.unwrap(),
        Poll::Expired
    );
    assert_eq!(
        store.pending_device("DFGHJKLM", NOW + 600).await.unwrap(),
        None
    );
    assert_eq!(store.purge_devices(NOW + 600, 10).await.unwrap(), 3);
}
