//! Contract: Finishing interactions, with and without consent (`interactions.rs`).

use super::*;

contract_tests!(
    an_interaction_finishes_at_most_once,
    a_consent_finishes_only_with_a_live_session,
);

fn finish<'a>(interaction_id: &'a str, code: &'a AuthCodeRecord) -> InteractionFinish<'a> {
    InteractionFinish {
        interaction_id,
        interaction_expires_at: NOW + 600,
        code,
        grant_expires_at: NOW + 700,
    }
}

fn consent_finish<'a>(
    interaction_id: &'a str,
    session_hash: &'a [u8],
    scope: &'a str,
    code: &'a AuthCodeRecord,
    event: &'a AuditEvent,
) -> ConsentFinish<'a> {
    ConsentFinish {
        interaction_id,
        interaction_expires_at: NOW + 600,
        session_hash,
        // The cases finish with session "sess-c" (see `session`), or with none at all.
        session_sid: "sid-sess-c",
        scope,
        code,
        grant_expires_at: NOW + 700,
        event,
    }
}

async fn an_interaction_finishes_at_most_once(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-f", "eff")).await.unwrap();
    // Finished with a code: the code and its grant are stored together.
    let first = code("fin-1", "g-fin-1", "client-f", "sub-f", NOW + 60);
    assert!(
        store
            .finish_interaction_with_code(&finish("i-1", &first))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_grant("g-fin-1").await.unwrap(),
        Some(grant("g-fin-1", "client-f", "sub-f", NOW + 700))
    );
    assert!(matches!(
        store
            .consume_code(&hash("fin-1"), "client-f", None, NOW, NOW + 700)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    // A second finish of the same interaction writes nothing.
    let second = code("fin-2", "g-fin-2", "client-f", "sub-f", NOW + 60);
    assert!(
        !store
            .finish_interaction_with_code(&finish("i-1", &second))
            .await
            .unwrap()
    );
    assert_eq!(store.get_grant("g-fin-2").await.unwrap(), None);
    assert_eq!(
        store
            .consume_code(&hash("fin-2"), "client-f", None, NOW, NOW + 700)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert!(!store.finish_interaction("i-1", NOW + 600).await.unwrap());

    // Finished without a code (denied), then a late finish with one is refused.
    assert!(store.finish_interaction("i-2", NOW + 600).await.unwrap());
    assert!(!store.finish_interaction("i-2", NOW + 600).await.unwrap());
    let late = code("fin-3", "g-fin-3", "client-f", "sub-f", NOW + 60);
    assert!(
        !store
            .finish_interaction_with_code(&finish("i-2", &late))
            .await
            .unwrap()
    );
    assert_eq!(store.get_grant("g-fin-3").await.unwrap(), None);

    // Racing finishes of one interaction: exactly one wins, and only its code exists.
    let wins = race(&store, |s, i| async move {
        let c = code(
            &format!("race-{i}"),
            &format!("g-race-{i}"),
            "client-f",
            "sub-f",
            NOW + 60,
        );
        s.finish_interaction_with_code(&finish("i-race", &c)).await
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    let mut stored = 0;
    for i in 0..RACERS {
        if store
            .get_grant(&format!("g-race-{i}"))
            .await
            .unwrap()
            .is_some()
        {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "only the winner's code and grant are stored");
}

async fn a_consent_finishes_only_with_a_live_session(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-c", "cee")).await.unwrap();
    store
        .insert_session(&session("sess-c", "sub-c", NOW + 100))
        .await
        .unwrap();
    // The code and event records' user and session fields are the session's, whatever
    // they held.
    let blank = |tag: &str| AuthCodeRecord {
        user_sub: String::new(),
        sid: String::new(),
        auth_time: 0,
        amr: String::new(),
        ..code(tag, &format!("g-{tag}"), "client-c", "sub-c", NOW + 60)
    };
    let granted = AuditEvent {
        user_sub: None,
        ..event("consent_granted", "ignored")
    };

    let live = hash("sess-c");
    let nobody = hash("no-such-session");
    // No such session: nothing written, the interaction still open.
    let c0 = blank("cf-0");
    let f = consent_finish("ci-1", &nobody, "openid", &c0, &granted);
    assert_eq!(
        store.finish_consent(&f).await.unwrap(),
        ConsentOutcome::NoSession
    );
    assert_eq!(store.get_grant("g-cf-0").await.unwrap(), None);
    assert!(events_of(&store, "consent_granted").await.is_empty());

    // A live session, but not the one the interaction was decided for: nothing written.
    let other = ConsentFinish {
        session_sid: "sid-of-an-earlier-session",
        ..consent_finish("ci-1", &live, "openid", &c0, &granted)
    };
    assert_eq!(
        store.finish_consent(&other).await.unwrap(),
        ConsentOutcome::NoSession
    );
    assert_eq!(store.get_grant("g-cf-0").await.unwrap(), None);
    assert!(events_of(&store, "consent_granted").await.is_empty());

    // A live session: consent, event, grant and code, with the session's details.
    let c1 = blank("cf-1");
    let f = consent_finish("ci-1", &live, "openid email", &c1, &granted);
    assert_eq!(
        store.finish_consent(&f).await.unwrap(),
        ConsentOutcome::Issued {
            user_sub: "sub-c".to_owned()
        }
    );
    let consent = store
        .get_consent("sub-c", "client-c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consent.scope, "openid email");
    assert_eq!(consent.updated_at, NOW);
    let logged = events_of(&store, "consent_granted").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].user_sub.as_deref(), Some("sub-c"));
    assert_eq!(logged[0].client_id.as_deref(), Some("client-f"));
    assert_eq!(logged[0].ip.as_deref(), Some("192.0.2.1"));
    let expected_session = session("sess-c", "sub-c", NOW + 100);
    match store
        .consume_code(&hash("cf-1"), "client-c", None, NOW, NOW + 700)
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(c) => {
            assert_eq!(c.user_sub, "sub-c");
            assert_eq!(c.sid, expected_session.sid);
            assert_eq!(c.auth_time, expected_session.auth_time);
            assert_eq!(c.amr, expected_session.amr);
        }
        other => panic!("expected a redeemable code, got {other:?}"),
    }
    assert_eq!(
        store.get_grant("g-cf-1").await.unwrap().unwrap().user_sub,
        "sub-c"
    );

    // The same interaction again: nothing more.
    let c2 = blank("cf-2");
    let f = consent_finish("ci-1", &live, "profile", &c2, &granted);
    assert_eq!(
        store.finish_consent(&f).await.unwrap(),
        ConsentOutcome::AlreadyFinished
    );
    assert_eq!(store.get_grant("g-cf-2").await.unwrap(), None);
    assert_eq!(events_of(&store, "consent_granted").await.len(), 1);

    // A later consent adds scopes after the ones granted before, once each.
    let c3 = blank("cf-3");
    let f = consent_finish("ci-3", &live, "profile email offline_access", &c3, &granted);
    assert!(matches!(
        store.finish_consent(&f).await.unwrap(),
        ConsentOutcome::Issued { .. }
    ));
    let consent = store
        .get_consent("sub-c", "client-c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consent.scope, "openid email profile offline_access");

    // A disabled user's session does not count.
    let mut disabled = user("sub-c", "cee");
    disabled.disabled = true;
    store.update_user(&disabled).await.unwrap();
    let c4 = blank("cf-4");
    let f = consent_finish("ci-4", &live, "openid", &c4, &granted);
    assert_eq!(
        store.finish_consent(&f).await.unwrap(),
        ConsentOutcome::NoSession
    );
    assert_eq!(store.get_grant("g-cf-4").await.unwrap(), None);
    // Nor after it expired.
    disabled.disabled = false;
    store.update_user(&disabled).await.unwrap();
    let late = ConsentFinish {
        code: &AuthCodeRecord {
            created_at: NOW + 100,
            ..blank("cf-5")
        },
        ..consent_finish("ci-5", &live, "openid", &c4, &granted)
    };
    assert_eq!(
        store.finish_consent(&late).await.unwrap(),
        ConsentOutcome::NoSession
    );

    // Racing consents for one interaction: exactly one is issued.
    let outcomes = race(&store, |s, i| async move {
        let c = AuthCodeRecord {
            user_sub: String::new(),
            ..code(
                &format!("crace-{i}"),
                &format!("g-crace-{i}"),
                "client-c",
                "sub-c",
                NOW + 60,
            )
        };
        let e = event("consent_granted", "x");
        let live = hash("sess-c");
        s.finish_consent(&consent_finish("ci-race", &live, "openid", &c, &e))
            .await
    })
    .await;
    let issued = outcomes
        .iter()
        .filter(|o| matches!(o, ConsentOutcome::Issued { .. }))
        .count();
    assert_eq!(issued, 1);
    assert!(outcomes.iter().all(|o| matches!(
        o,
        ConsentOutcome::Issued { .. } | ConsentOutcome::AlreadyFinished
    )));
}
