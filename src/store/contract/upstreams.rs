//! Contract: Upstream identity providers and linked identities (`upstreams.rs`).

use super::*;
use crate::protocol::upstream::{LinkExisting, UpstreamKind, UpstreamSettings};

contract_tests!(
    upstreams_round_trip_and_ids_are_unique,
    an_identity_links_to_exactly_one_user,
    verified_emails_find_only_verified_users,
    the_last_way_in_is_never_unlinked,
    a_passwordless_users_last_passkey_stays,
);

fn upstream(id: &str) -> UpstreamRecord {
    UpstreamRecord {
        settings: UpstreamSettings {
            id: id.to_owned(),
            display_name: format!("Upstream {id}"),
            kind: UpstreamKind::Oidc,
            issuer: Some("https://id.example.com".to_owned()),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            subject_claim: None,
            client_id: "latchkey".to_owned(),
            scope: "openid email".to_owned(),
            claims: [("name".to_owned(), "name".to_owned())].into(),
            create_users: true,
            link_existing: LinkExisting::VerifiedEmail,
        },
        secret_sealed: hash(&format!("sealed-{id}")),
        created_at: NOW,
        updated_at: NOW,
    }
}

fn identity(upstream_id: &str, subject: &str, user_sub: &str) -> IdentityRecord {
    IdentityRecord {
        upstream_id: upstream_id.to_owned(),
        subject: subject.to_owned(),
        user_sub: user_sub.to_owned(),
        created_at: NOW,
    }
}

async fn upstreams_round_trip_and_ids_are_unique(store: Arc<dyn Store>) {
    let corp = upstream("corp");
    store.insert_upstream(&corp).await.unwrap();
    store.insert_upstream(&upstream("b-idp")).await.unwrap();
    assert_eq!(
        store.get_upstream("corp").await.unwrap(),
        Some(corp.clone())
    );
    assert_eq!(store.get_upstream("none").await.unwrap(), None);
    let taken = store.insert_upstream(&upstream("corp")).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict("upstream_id"))),
        "{taken:?}"
    );
    let ids =
        |page: Vec<UpstreamRecord>| page.into_iter().map(|u| u.settings.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_upstreams(None, 10).await.unwrap()),
        ["b-idp", "corp"]
    );
    assert_eq!(
        ids(store.list_upstreams(Some("b-idp"), 10).await.unwrap()),
        ["corp"]
    );
    let mut changed = corp.clone();
    changed.settings.display_name = "Corporate".to_owned();
    changed.secret_sealed = hash("other");
    changed.updated_at = NOW + 5;
    assert!(store.update_upstream(&changed).await.unwrap());
    assert_eq!(store.get_upstream("corp").await.unwrap(), Some(changed));
    assert!(!store.update_upstream(&upstream("none")).await.unwrap());

    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    assert!(
        store
            .link_identity(&identity("corp", "x", "sub-a"))
            .await
            .unwrap()
    );
    assert!(store.delete_upstream("corp").await.unwrap());
    assert!(!store.delete_upstream("corp").await.unwrap());
    assert_eq!(store.get_upstream("corp").await.unwrap(), None);
    assert_eq!(
        store.identity_user("corp", "x").await.unwrap(),
        None,
        "an upstream's identities go with it"
    );
}

async fn an_identity_links_to_exactly_one_user(store: Arc<dyn Store>) {
    store.insert_upstream(&upstream("corp")).await.unwrap();
    for (sub, name) in [("sub-a", "alice"), ("sub-b", "bob")] {
        store.insert_user(&user(sub, name)).await.unwrap();
    }
    // 50 racers link one identity to alternating users: exactly one wins.
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let sub = if i % 2 == 0 { "sub-a" } else { "sub-b" };
                barrier.wait().await;
                store
                    .link_identity(&identity("corp", "u-1", sub))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "one identity, one link");
    let owner = store.identity_user("corp", "u-1").await.unwrap().unwrap();
    let other = if owner == "sub-a" { "sub-b" } else { "sub-a" };
    assert!(
        store
            .link_identity(&identity("corp", "u-2", other))
            .await
            .unwrap()
    );
    assert_eq!(
        store.identities_of_user(other).await.unwrap(),
        [identity("corp", "u-2", other)]
    );
    assert_eq!(
        store.unlink_identity(other, "corp", "u-1").await.unwrap(),
        Unlinked::NotLinked,
        "only the owner unlinks"
    );
    assert_eq!(
        store
            .unlink_identity(owner.as_str(), "corp", "u-1")
            .await
            .unwrap(),
        Unlinked::Done,
        "a user with a password may unlink their only identity"
    );
    assert_eq!(store.identity_user("corp", "u-1").await.unwrap(), None);
    assert!(store.delete_user(other, NOW).await.unwrap());
    assert_eq!(
        store.identity_user("corp", "u-2").await.unwrap(),
        None,
        "a user's identities go with the user"
    );
}

async fn verified_emails_find_only_verified_users(store: Arc<dyn Store>) {
    // `user` gives alice@example.com, verified.
    store.insert_user(&user("sub-a", "alice")).await.unwrap();
    let mut unverified = user("sub-b", "bob");
    unverified.claims.email = Some("shared@example.com".to_owned());
    unverified.claims.email_verified = Some(false);
    store.insert_user(&unverified).await.unwrap();
    let mut silent = user("sub-c", "carol");
    silent.claims.email = Some("shared@example.com".to_owned());
    silent.claims.email_verified = None;
    store.insert_user(&silent).await.unwrap();
    let found = store
        .users_with_verified_email("alice@example.com", 2)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].sub, "sub-a");
    assert!(
        store
            .users_with_verified_email("shared@example.com", 2)
            .await
            .unwrap()
            .is_empty(),
        "an unverified local email is never a match"
    );
    assert!(
        store
            .users_with_verified_email("ALICE@example.com", 2)
            .await
            .unwrap()
            .is_empty(),
        "exact match only"
    );
}

async fn the_last_way_in_is_never_unlinked(store: Arc<dyn Store>) {
    store.insert_upstream(&upstream("corp")).await.unwrap();
    store.insert_upstream(&upstream("other")).await.unwrap();
    // Created through an upstream: a marker no password matches.
    let mut passwordless = user("sub-p", "pat");
    passwordless.password_hash = "!upstream".to_owned();
    store.insert_user(&passwordless).await.unwrap();
    for (up, subject) in [("corp", "p-1"), ("other", "p-2")] {
        assert!(
            store
                .link_identity(&identity(up, subject, "sub-p"))
                .await
                .unwrap()
        );
    }
    // 50 racers unlink the user's two identities, alternating: exactly one may go.
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let (up, subject) = if i % 2 == 0 {
                    ("corp", "p-1")
                } else {
                    ("other", "p-2")
                };
                barrier.wait().await;
                store.unlink_identity("sub-p", up, subject).await.unwrap()
            })
        })
        .collect();
    let mut done = 0;
    for r in racers {
        if r.await.unwrap() == Unlinked::Done {
            done += 1;
        }
    }
    assert_eq!(done, 1, "one way in always stays");
    let left = store.identities_of_user("sub-p").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        store
            .unlink_identity("sub-p", &left[0].upstream_id, &left[0].subject)
            .await
            .unwrap(),
        Unlinked::LastWayIn
    );
    assert_eq!(store.identities_of_user("sub-p").await.unwrap(), left);
    // With a password, the last identity may go.
    assert!(
        store
            .set_password("sub-p", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .unlink_identity("sub-p", &left[0].upstream_id, &left[0].subject)
            .await
            .unwrap(),
        Unlinked::Done
    );
}

/// The passkey side of the way-in rule: a user without a password or a linked upstream keeps
/// their last passkey against their own removals (racing ones included); an operator's
/// removal is not bound, and a link or a password frees it.
async fn a_passwordless_users_last_passkey_stays(store: Arc<dyn Store>) {
    store.insert_upstream(&upstream("corp")).await.unwrap();
    let mut passwordless = user("sub-k", "kim");
    passwordless.password_hash = "!upstream".to_owned();
    store.insert_user(&passwordless).await.unwrap();
    let passkey = |id: &str| PasskeyRecord {
        passkey_id: id.to_owned(),
        credential_id: id.as_bytes().to_vec(),
        user_sub: "sub-k".to_owned(),
        name: format!("key {id}"),
        credential: format!(r#"{{"cred":"{id}"}}"#),
        sign_count: 0,
        created_at: NOW,
        last_used_at: None,
    };
    for id in ["pk-1", "pk-2"] {
        assert!(store.insert_passkey(&passkey(id)).await.unwrap());
    }
    // 50 racers remove the user's two passkeys, alternating: exactly one may go.
    let barrier = Arc::new(tokio::sync::Barrier::new(FAMILY_RACERS));
    let racers: Vec<_> = (0..FAMILY_RACERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let id = if i % 2 == 0 { "pk-1" } else { "pk-2" };
                barrier.wait().await;
                store.delete_factor("sub-k", id, true).await.unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in racers {
        outcomes.push(r.await.unwrap());
    }
    let removed = outcomes
        .iter()
        .filter(|o| **o == FactorRemoval::Removed)
        .count();
    assert_eq!(removed, 1, "one way in always stays: {outcomes:?}");
    let left = store.list_passkeys("sub-k").await.unwrap();
    assert_eq!(left.len(), 1);
    let last = left[0].passkey_id.clone();
    assert_eq!(
        store.delete_factor("sub-k", &last, true).await.unwrap(),
        FactorRemoval::LastWayIn
    );
    // A linked upstream is a way in: the passkey may go, and comes back for the next check.
    assert!(
        store
            .link_identity(&identity("corp", "k-1", "sub-k"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.delete_factor("sub-k", &last, true).await.unwrap(),
        FactorRemoval::Removed
    );
    assert!(store.insert_passkey(&passkey("pk-3")).await.unwrap());
    assert_eq!(
        store.unlink_identity("sub-k", "corp", "k-1").await.unwrap(),
        Unlinked::Done,
        "the passkey is a way in"
    );
    assert_eq!(
        store.delete_factor("sub-k", "pk-3", true).await.unwrap(),
        FactorRemoval::LastWayIn
    );
    // An operator's removal is not bound (they replace a lost or stolen authenticator).
    assert_eq!(
        store.delete_factor("sub-k", "pk-3", false).await.unwrap(),
        FactorRemoval::Removed
    );
    // With a password, the last passkey may go.
    assert!(store.insert_passkey(&passkey("pk-4")).await.unwrap());
    assert!(
        store
            .set_password("sub-k", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.delete_factor("sub-k", "pk-4", true).await.unwrap(),
        FactorRemoval::Removed
    );
}
