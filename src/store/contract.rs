//! The contract every backend must pass: one generic suite of cases, each an `async fn` taking
//! an `Arc<dyn Store>`, run against a fresh Postgres database and a fresh SQLite file by
//! `contract_tests!`. The cases check behaviour through the traits only, never through SQL,
//! and the concurrency cases race real tasks on a multi-threaded runtime.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::protocol::client::{ClientMetadata, TokenEndpointAuthMethod};
use crate::protocol::user::UserClaims;

const NOW: i64 = 1_700_000_000;
const RACERS: usize = 20;

/// Generates, for each case, a test per backend: `postgres::case` and `sqlite::case`.
macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(crate::store::testing::postgres_store().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(crate::store::testing::sqlite_store().await).await;
                }
            )*
        }
    };
}

contract_tests!(
    migrations_are_idempotent_and_versions_start_at_zero,
    clients_round_trip_conflict_page_and_bump_the_version,
    users_round_trip_and_usernames_are_unique,
    sessions_are_found_only_until_they_expire,
    an_interaction_finishes_at_most_once,
    a_consent_finishes_only_with_a_live_session,
    a_session_view_joins_user_and_consent,
    a_code_is_redeemed_exactly_once_among_racing_requests,
    expired_unknown_and_revoked_codes_are_invalid,
    a_refresh_token_rotates_exactly_once_among_racing_requests,
    expired_and_revoked_refresh_tokens_do_not_rotate,
    revoking_a_grant_revokes_its_access_and_refresh_tokens,
    revoked_access_tokens_are_remembered,
    grants_are_revoked_per_user_and_client,
    consents_are_saved_replaced_listed_and_deleted,
    initial_keys_are_inserted_once_and_rotation_retires_old_keys,
    purge_removes_only_expired_rows_in_batches,
    deleting_a_client_removes_its_dependents,
    deleting_a_user_removes_its_dependents,
    throttle_counts_attempts_atomically_and_locks,
    audit_events_are_recorded_and_filtered,
    rotated_refresh_tokens_name_their_grant,
);

/// A stand-in for a SecretHasher output: distinct per tag, and binary like the real thing.
fn hash(tag: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0x00];
    out.extend_from_slice(tag.as_bytes());
    out
}

fn metadata(name: &str) -> ClientMetadata {
    ClientMetadata {
        redirect_uris: vec!["https://app.example.com/cb".to_owned()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        scope: "openid profile offline_access".to_owned(),
        client_name: name.to_owned(),
        client_uri: Some("https://app.example.com".to_owned()),
        logo_uri: None,
        id_token_signed_response_alg: "RS256".to_owned(),
        first_party: false,
        allowed_resources: vec!["https://api.example.com".to_owned()],
        introspection: crate::protocol::client::IntrospectionAccess::Own,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        request_object_signing_alg: None,
        require_signed_request_object: false,
        require_pushed_authorization_requests: false,
    }
}

fn client(client_id: &str) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        secret_hash: Some(hash(&format!("secret-{client_id}"))),
        metadata: metadata(client_id),
        issued_at: NOW,
        updated_at: NOW,
    }
}

fn user(sub: &str, username: &str) -> UserRecord {
    UserRecord {
        sub: sub.to_owned(),
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        claims: UserClaims {
            name: Some(format!("User {username}")),
            email: Some(format!("{username}@example.com")),
            email_verified: Some(true),
            ..UserClaims::default()
        },
        disabled: false,
        password_reset_required: false,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn session(tag: &str, user_sub: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        session_hash: hash(tag),
        sid: format!("sid-{tag}"),
        user_sub: user_sub.to_owned(),
        auth_time: NOW,
        amr: "pwd".to_owned(),
        created_at: NOW,
        expires_at,
    }
}

fn grant(grant_id: &str, client_id: &str, user_sub: &str, expires_at: i64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        scope: "openid offline_access".to_owned(),
        created_at: NOW,
        expires_at,
        revoked_at: None,
    }
}

fn code(
    tag: &str,
    grant_id: &str,
    client_id: &str,
    user_sub: &str,
    expires_at: i64,
) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash(tag),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        redirect_uri: "https://app.example.com/cb".to_owned(),
        scope: "openid offline_access".to_owned(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        sid: "sid-1".to_owned(),
        auth_time: NOW - 5,
        amr: "pwd".to_owned(),
        acr: None,
        resource: Some("https://api.example.com".to_owned()),
        created_at: NOW,
        expires_at,
    }
}

fn refresh(tag: &str, grant_id: &str, client_id: &str, user_sub: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash(tag),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        scope: "openid offline_access".to_owned(),
        sid: "sid-1".to_owned(),
        auth_time: NOW - 5,
        amr: "pwd".to_owned(),
        resource: None,
        created_at: NOW,
        idle_expires_at: NOW + 3_600,
        expires_at: NOW + 86_400,
    }
}

fn key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        private_sealed: hash(&format!("sealed-{kid}")),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        created_at,
        retired_at: None,
    }
}

async fn migrations_are_idempotent_and_versions_start_at_zero(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(
        store.change_versions().await.unwrap(),
        ChangeVersions {
            clients: 0,
            keys: 0
        }
    );
}

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
            .set_client_secret("client-a", &hash("new-secret"), NOW + 20)
            .await
            .unwrap()
    );
    let stored = store.get_client("client-a").await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(hash("new-secret")));
    assert_eq!(stored.updated_at, NOW + 20);
    assert!(
        !store
            .set_client_secret("missing", &hash("x"), NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.change_versions().await.unwrap().clients, 6);

    assert!(store.delete_client("client-a", NOW + 30).await.unwrap());
    assert_eq!(store.get_client("client-a").await.unwrap(), None);
    assert!(!store.delete_client("client-a", NOW + 30).await.unwrap());
    assert_eq!(store.change_versions().await.unwrap().clients, 7);
}

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

    store.delete_session(&hash("s1")).await.unwrap();
    assert_eq!(store.get_session(&hash("s1"), NOW).await.unwrap(), None);
    store.delete_session(&hash("s1")).await.unwrap();

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

    assert_eq!(store.delete_sessions_for_user("sub-a").await.unwrap(), 1);
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

fn event(kind: &str, user_sub: &str) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        occurred_at: NOW,
        kind: kind.to_owned(),
        user_sub: Some(user_sub.to_owned()),
        client_id: Some("client-f".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
        detail: r#"{"scope":"openid"}"#.to_owned(),
    }
}

async fn events_of(store: &Arc<dyn Store>, kind: &str) -> Vec<AuditEvent> {
    store
        .list_events(&AuditFilter {
            kind: Some(kind.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

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
            .consume_code(&hash("fin-1"), NOW, NOW + 700)
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
            .consume_code(&hash("fin-2"), NOW, NOW + 700)
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
        .consume_code(&hash("cf-1"), NOW, NOW + 700)
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

/// Runs `RACERS` copies of `f` at once on separate tasks and collects their results.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = f(store.clone(), i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results
}

async fn a_code_is_redeemed_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    let c = code("code-1", "grant-1", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c, NOW + 60).await.unwrap();
    assert_eq!(
        store.get_grant("grant-1").await.unwrap(),
        Some(grant("grant-1", "client-1", "sub-1", NOW + 60))
    );

    let results = race(&store, |s, _| async move {
        s.consume_code(&hash("code-1"), NOW + 1, NOW + 7_200).await
    })
    .await;
    let redeemed: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            CodeRedemption::Redeemed(record) => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(redeemed, vec![c]);
    let reused = CodeRedemption::Reused {
        grant_id: "grant-1".to_owned(),
    };
    assert_eq!(results.iter().filter(|r| **r == reused).count(), RACERS - 1);

    assert_eq!(
        store
            .consume_code(&hash("code-1"), NOW + 2, NOW + 7_200)
            .await
            .unwrap(),
        reused
    );
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.expires_at, NOW + 7_200, "redemption extends the grant");

    // The grant's expiry is only ever raised.
    let c2 = code("code-2", "grant-2", "client-1", "sub-1", NOW + 60);
    store.insert_code(&c2, NOW + 9_000).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("code-2"), NOW, NOW + 100)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store
            .get_grant("grant-2")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        NOW + 9_000
    );
}

async fn expired_unknown_and_revoked_codes_are_invalid(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    store
        .insert_code(&code("expired", "grant-e", "client-1", "sub-1", NOW), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .consume_code(&hash("expired"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .consume_code(&hash("unknown"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    store
        .insert_code(
            &code("revoked", "grant-r", "client-1", "sub-1", NOW + 60),
            NOW + 60,
        )
        .await
        .unwrap();
    store.revoke_grant("grant-r", NOW).await.unwrap();
    assert_eq!(
        store
            .consume_code(&hash("revoked"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // A code whose user was disabled, or is gone, is invalid and stays unconsumed.
    let mut disabled = user("sub-d", "dee");
    disabled.disabled = true;
    store.insert_user(&disabled).await.unwrap();
    for (tag, sub) in [("of-disabled", "sub-d"), ("of-nobody", "sub-gone")] {
        let grant_id = format!("grant-{tag}");
        store
            .insert_code(&code(tag, &grant_id, "client-1", sub, NOW + 60), NOW + 60)
            .await
            .unwrap();
        let redemption = store.consume_code(&hash(tag), NOW, NOW + 60).await;
        assert_eq!(redemption.unwrap(), CodeRedemption::Invalid, "{tag}");
    }
    disabled.disabled = false;
    store.update_user(&disabled).await.unwrap();
    assert!(matches!(
        store
            .consume_code(&hash("of-disabled"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    let duplicate = store
        .insert_code(
            &code("other", "grant-r", "client-1", "sub-1", NOW + 60),
            NOW + 60,
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict("grant_id"))),
        "{duplicate:?}"
    );
}

async fn a_refresh_token_rotates_exactly_once_among_racing_requests(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let old = refresh("rt-0", "grant-1", "client-1", "sub-1");
    store.insert_refresh_token(&old).await.unwrap();
    assert_eq!(
        store.get_refresh_token(&hash("rt-0"), NOW).await.unwrap(),
        Some(old.clone())
    );

    let results = race(&store, |s, i| async move {
        let new = refresh(&format!("rt-1-{i}"), "grant-1", "client-1", "sub-1");
        let outcome = s
            .rotate_refresh_token(&hash("rt-0"), &new, NOW + 10)
            .await?;
        Ok((i, outcome))
    })
    .await;
    let winners: Vec<_> = results
        .iter()
        .filter_map(|(i, r)| match r {
            Rotation::Rotated(record) => Some((*i, record.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(winners[0].1, old);
    let reused = Rotation::Reused {
        grant_id: "grant-1".to_owned(),
    };
    assert_eq!(
        results.iter().filter(|(_, r)| *r == reused).count(),
        RACERS - 1
    );

    // Only the winner's new token was stored.
    let winner = format!("rt-1-{}", winners[0].0);
    for i in 0..RACERS {
        let tag = format!("rt-1-{i}");
        let found = store
            .get_refresh_token(&hash(&tag), NOW + 10)
            .await
            .unwrap();
        assert_eq!(found.is_some(), tag == winner, "{tag}");
    }
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-0"), NOW + 10)
            .await
            .unwrap(),
        None
    );
    let late = refresh("rt-late", "grant-1", "client-1", "sub-1");
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt-0"), &late, NOW + 20)
            .await
            .unwrap(),
        reused
    );

    // The new token rotates in its turn.
    let next = refresh("rt-2", "grant-1", "client-1", "sub-1");
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(&winner), &next, NOW + 30)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

async fn expired_and_revoked_refresh_tokens_do_not_rotate(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let token = refresh("rt", "grant-1", "client-1", "sub-1");
    store.insert_refresh_token(&token).await.unwrap();
    let new = refresh("rt-new", "grant-1", "client-1", "sub-1");

    // Idle lifetime over, then absolute lifetime over.
    let at_idle = token.idle_expires_at;
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt"), &new, at_idle)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt"), at_idle).await.unwrap(),
        None
    );
    let mut long_idle = refresh("rt-long-idle", "grant-1", "client-1", "sub-1");
    long_idle.idle_expires_at = NOW + 1_000_000;
    store.insert_refresh_token(&long_idle).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt-long-idle"), &new, long_idle.expires_at)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("unknown"), &new, NOW)
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt-new"), NOW).await.unwrap(),
        None,
        "nothing inserted"
    );

    // A token whose family has no grant row is dead.
    store
        .insert_refresh_token(&refresh("rt-orphan", "grant-gone", "client-1", "sub-1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-orphan"), NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(&hash("rt-orphan"), &new, NOW)
            .await
            .unwrap(),
        Rotation::Invalid
    );

    // After the family is revoked, neither the current nor an old token rotates.
    let rotated = store
        .rotate_refresh_token(&hash("rt"), &new, NOW + 1)
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)));
    store.revoke_grant("grant-1", NOW + 2).await.unwrap();
    let newer = refresh("rt-newer", "grant-1", "client-1", "sub-1");
    for old in ["rt", "rt-new"] {
        let outcome = store
            .rotate_refresh_token(&hash(old), &newer, NOW + 3)
            .await
            .unwrap();
        assert!(
            matches!(&outcome, Rotation::Invalid)
                || outcome
                    == Rotation::Reused {
                        grant_id: "grant-1".to_owned()
                    },
            "{old}: {outcome:?}"
        );
        assert_eq!(
            store.get_refresh_token(&hash(old), NOW + 3).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-newer"), NOW + 3)
            .await
            .unwrap(),
        None
    );
}

async fn revoking_a_grant_revokes_its_access_and_refresh_tokens(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt", "grant-1", "client-1", "sub-1"))
        .await
        .unwrap();
    assert!(
        !store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-missing"))
            .await
            .unwrap()
    );

    store.revoke_grant("grant-1", NOW + 5).await.unwrap();
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert_eq!(
        store.get_refresh_token(&hash("rt"), NOW).await.unwrap(),
        None
    );
    let g = store.get_grant("grant-1").await.unwrap().unwrap();
    assert_eq!(g.revoked_at, Some(NOW + 5));

    // Idempotent: the first revocation time stays.
    store.revoke_grant("grant-1", NOW + 9).await.unwrap();
    assert_eq!(
        store
            .get_grant("grant-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 5)
    );
    store.revoke_grant("grant-missing", NOW).await.unwrap();
}

async fn revoked_access_tokens_are_remembered(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-1", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", NOW + 3_600)
        .await
        .unwrap();
    store
        .revoke_access_token("jti-1", NOW + 3_600)
        .await
        .unwrap();
    assert!(store.is_access_token_revoked("jti-1", None).await.unwrap());
    assert!(
        store
            .is_access_token_revoked("jti-1", Some("grant-1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("jti-2", Some("grant-1"))
            .await
            .unwrap()
    );

    // A second revocation with an earlier expiry does not shorten how long it is remembered.
    store.revoke_access_token("jti-1", NOW + 10).await.unwrap();
    store.purge_expired(NOW + 100, 100).await.unwrap();
    assert!(store.is_access_token_revoked("jti-1", None).await.unwrap());
    store.purge_expired(NOW + 3_600, 100).await.unwrap();
    assert!(!store.is_access_token_revoked("jti-1", None).await.unwrap());
}

async fn grants_are_revoked_per_user_and_client(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("g-a1", "client-a", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-a2", "client-a", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-b", "client-b", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g-other", "client-a", "sub-2", NOW + 86_400))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt-a1", "g-a1", "client-a", "sub-1"))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("rt-b", "g-b", "client-b", "sub-1"))
        .await
        .unwrap();

    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", Some("client-a"), NOW)
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-a1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt-a1"), NOW).await.unwrap(),
        None
    );
    assert!(
        store
            .get_refresh_token(&hash("rt-b"), NOW)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", None, NOW)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .is_access_token_revoked("j", Some("g-b"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_refresh_token(&hash("rt-b"), NOW).await.unwrap(),
        None
    );
    assert!(
        !store
            .is_access_token_revoked("j", Some("g-other"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .revoke_grants_for_user("sub-1", None, NOW)
            .await
            .unwrap(),
        0
    );
}

async fn consents_are_saved_replaced_listed_and_deleted(store: Arc<dyn Store>) {
    let consent = |client_id: &str, scope: &str, at: i64| ConsentRecord {
        user_sub: "sub-1".to_owned(),
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        updated_at: at,
    };
    assert_eq!(store.get_consent("sub-1", "client-b").await.unwrap(), None);
    store
        .save_consent(&consent("client-b", "openid", NOW))
        .await
        .unwrap();
    store
        .save_consent(&consent("client-a", "openid email", NOW))
        .await
        .unwrap();
    store
        .save_consent(&consent("client-b", "openid profile", NOW + 5))
        .await
        .unwrap();
    assert_eq!(
        store.get_consent("sub-1", "client-b").await.unwrap(),
        Some(consent("client-b", "openid profile", NOW + 5))
    );
    assert_eq!(
        store.list_consents("sub-1").await.unwrap(),
        vec![
            consent("client-a", "openid email", NOW),
            consent("client-b", "openid profile", NOW + 5)
        ]
    );
    assert!(store.list_consents("sub-2").await.unwrap().is_empty());
    assert!(store.delete_consent("sub-1", "client-a").await.unwrap());
    assert!(!store.delete_consent("sub-1", "client-a").await.unwrap());
    assert_eq!(store.list_consents("sub-1").await.unwrap().len(), 1);
}

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

async fn purge_removes_only_expired_rows_in_batches(store: Arc<dyn Store>) {
    store.insert_user(&user("sub-1", "one")).await.unwrap();
    // Each kind gets one expired row (expires_at == now counts as expired) and one live one.
    for (tag, exp) in [("old", NOW), ("new", NOW + 1)] {
        store
            .insert_session(&session(tag, "sub-1", exp))
            .await
            .unwrap();
        assert!(store.finish_interaction(tag, exp).await.unwrap());
        store
            .insert_code(&code(tag, &format!("g-code-{tag}"), "c", "sub-1", exp), exp)
            .await
            .unwrap();
        store
            .revoke_access_token(&format!("jti-{tag}"), exp)
            .await
            .unwrap();
    }
    store
        .insert_grant(&grant("g-rt", "c", "sub-1", NOW))
        .await
        .unwrap();
    let mut idle = refresh("rt-idle", "g-rt", "c", "sub-1");
    idle.idle_expires_at = NOW;
    let mut absolute = refresh("rt-abs", "g-rt", "c", "sub-1");
    absolute.expires_at = NOW;
    let live = refresh("rt-live", "g-rt", "c", "sub-1");
    for t in [&idle, &absolute, &live] {
        store.insert_refresh_token(t).await.unwrap();
    }

    // 1 code, 1 session, 1 finished interaction, 2 refresh tokens, 1 grant (g-code-old), 1 jti.
    // g-rt expired too, but a live refresh token still belongs to it.
    assert_eq!(store.purge_expired(NOW, 100).await.unwrap(), 7);
    assert_eq!(store.purge_expired(NOW, 100).await.unwrap(), 0);

    assert!(
        store
            .get_session(&hash("new"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !store.finish_interaction("new", NOW + 1).await.unwrap(),
        "a live finished mark stays"
    );
    assert!(
        store.finish_interaction("old", NOW + 1).await.unwrap(),
        "an expired one is gone"
    );
    assert!(store.get_grant("g-code-new").await.unwrap().is_some());
    assert!(store.get_grant("g-code-old").await.unwrap().is_none());
    assert!(
        store
            .is_access_token_revoked("jti-new", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked("jti-old", None)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_refresh_token(&hash("rt-live"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.get_grant("g-rt").await.unwrap().is_some());
    assert!(matches!(
        store
            .consume_code(&hash("new"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    // Batches: at most `batch` rows of each kind per call.
    for i in 0..5 {
        store
            .insert_session(&session(&format!("batch-{i}"), "sub-1", NOW))
            .await
            .unwrap();
    }
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 2);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 2);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW, 2).await.unwrap(), 0);
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
            .consume_code(&hash("code-client-1"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-client-1"), NOW)
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
            .get_refresh_token(&hash("rt-client-2"), NOW)
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
            .consume_code(&hash("code-client-2"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
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
            .consume_code(&hash("code-sub-1"), NOW, NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .get_refresh_token(&hash("rt-sub-1"), NOW)
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
            .get_refresh_token(&hash("rt-sub-2"), NOW)
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

// Error mapping, which needs a broken database rather than the traits alone.

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    let options = ConnectOptions {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(2),
    };
    // Nothing listens on port 1.
    let result = crate::store::postgres::PgStore::connect(
        "postgres://postgres@127.0.0.1:1/postgres",
        &options,
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn undecodable_json_is_corrupt_and_not_quoted() {
    use sqlx::Connection;
    let path = crate::store::testing::fresh_sqlite_path();
    let store = crate::store::sqlite::SqliteStore::connect(
        &path,
        &crate::store::testing::connect_options(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store.insert_client(&client("client-1")).await.unwrap();
    store.insert_user(&user("sub-1", "alice")).await.unwrap();

    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE client SET metadata = '{\"redirect_uris\": \"secret-value\"}'")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE app_user SET claims = '{\"email\": 42, \"x\": \"secret-value\"}'")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    for result in [
        store.get_client("client-1").await.map(|_| ()),
        store.get_user("sub-1").await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt(message)) => {
                assert!(!message.contains("secret-value"), "{message}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

async fn throttle_counts_attempts_atomically_and_locks(store: Arc<dyn Store>) {
    let rule = ThrottleRule {
        free: 5,
        window: 60,
        max_delay: 60,
        lockout_after: 8,
        lockout: 300,
    };
    let key = "login:account:alice";
    // Racing attempts on a fresh key: the five free ones and the sixth (which locks the key
    // for a second) are counted, once each, in order; every other one is refused unwritten.
    let outcomes = race(&store, move |s, _| async move {
        s.count_attempt(key, &rule, NOW).await
    })
    .await;
    let mut counted: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            AttemptCount::Counted { attempts, .. } => Some(*attempts),
            AttemptCount::Refused { .. } => None,
        })
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        vec![1, 2, 3, 4, 5, 6],
        "exactly the rule's attempts"
    );
    assert!(outcomes.iter().all(|o| match o {
        AttemptCount::Counted {
            attempts,
            locked_until,
        } => *locked_until == rule.lock_after(*attempts, NOW),
        AttemptCount::Refused { locked_until } => *locked_until == NOW + 1,
    }));
    // The back-off doubles, then the lockout.
    let mut at = NOW + 1;
    for (n, lock) in [(7, 2), (8, 300)] {
        assert_eq!(
            store.count_attempt(key, &rule, at).await.unwrap(),
            AttemptCount::Counted {
                attempts: n,
                locked_until: at + lock
            }
        );
        assert_eq!(
            store
                .count_attempt(key, &rule, at + lock - 1)
                .await
                .unwrap(),
            AttemptCount::Refused {
                locked_until: at + lock
            },
            "locked until {}",
            at + lock
        );
        at += lock;
    }
    // Once the lockout and the window have passed, counting starts over.
    assert_eq!(
        store.count_attempt(key, &rule, at + 60).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        }
    );

    // A success clears the account and gives the address back its one attempt, lifting a
    // back-off that the remaining count no longer justifies.
    let address = "login:ip:192.0.2.1";
    for n in 1..=6 {
        assert!(matches!(
            store.count_attempt(address, &rule, NOW).await.unwrap(),
            AttemptCount::Counted { attempts, .. } if attempts == n
        ));
    }
    store
        .settle_success(Some(key), Some((address, &rule)))
        .await
        .unwrap();
    assert_eq!(
        store.count_attempt(address, &rule, NOW).await.unwrap(),
        AttemptCount::Counted {
            attempts: 6,
            locked_until: NOW + 1
        },
        "the address keeps its other five attempts; its lock was lifted"
    );
    assert_eq!(
        store.count_attempt(key, &rule, at + 61).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        },
        "the account starts over"
    );
    store
        .settle_success(None, Some((address, &rule)))
        .await
        .unwrap();
    store
        .settle_success(Some("never-seen"), None)
        .await
        .unwrap();

    // Purge keeps locked and live rows, drops dead ones.
    store.purge_expired(NOW + 50, 100).await.unwrap();
    assert!(matches!(
        store.count_attempt(address, &rule, NOW + 50).await.unwrap(),
        AttemptCount::Counted { attempts: 6, .. }
    ));
    store.purge_expired(at + 1000, 100).await.unwrap();
    assert_eq!(
        store.count_attempt(key, &rule, at + 1000).await.unwrap(),
        AttemptCount::Counted {
            attempts: 1,
            locked_until: 0
        }
    );
}

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

async fn rotated_refresh_tokens_name_their_grant(store: Arc<dyn Store>) {
    store
        .insert_grant(&grant("grant-r", "client-1", "sub-1", NOW + 86_400))
        .await
        .unwrap();
    let old = refresh("rt-a", "grant-r", "client-1", "sub-1");
    store.insert_refresh_token(&old).await.unwrap();
    assert_eq!(
        store.rotated_token_grant(&hash("rt-a")).await.unwrap(),
        None,
        "current, not rotated"
    );
    let new = refresh("rt-b", "grant-r", "client-1", "sub-1");
    store
        .rotate_refresh_token(&hash("rt-a"), &new, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotated_token_grant(&hash("rt-a"))
            .await
            .unwrap()
            .as_deref(),
        Some("grant-r")
    );
    assert_eq!(
        store.rotated_token_grant(&hash("unknown")).await.unwrap(),
        None
    );
}
