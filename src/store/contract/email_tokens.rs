//! Contract: links sent by mail (`email_tokens.rs`): one outstanding link per user and
//! purpose however many are issued at once, redeemed at most once under a race, dead after
//! expiry; users found by address in any case; the compare-and-swap updates a redeemed link
//! makes.

use super::*;
use crate::store::EmailPurpose::{EmailVerification, PasswordReset};

contract_tests!(
    racing_issues_leave_one_link_per_user_and_purpose,
    racing_redemptions_have_one_winner_and_expired_links_none,
    users_are_found_by_address_in_any_case,
    claims_swaps_hold_only_while_unchanged,
);

async fn racing_issues_leave_one_link_per_user_and_purpose(store: Arc<dyn Store>) {
    let issued = futures_util::future::join_all((0..FAMILY_RACERS).map(|i| {
        let store = store.clone();
        async move {
            store
                .issue_email_token(
                    "sub-1",
                    PasswordReset,
                    &hash(&format!("t{i}")),
                    "b",
                    NOW,
                    NOW + 60,
                )
                .await
        }
    }))
    .await;
    assert!(issued.iter().all(Result::is_ok), "{issued:?}");
    let live: Vec<usize> = futures_util::future::join_all((0..FAMILY_RACERS).map(|i| {
        let store = store.clone();
        async move {
            store
                .peek_email_token(&hash(&format!("t{i}")), PasswordReset, NOW)
                .await
                .unwrap()
                .map(|_| i)
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(
        live.len(),
        1,
        "exactly the last issued link is live: {live:?}"
    );
    // Another purpose is a link of its own.
    store
        .issue_email_token(
            "sub-1",
            EmailVerification,
            &hash("v"),
            "a@example.test",
            NOW,
            NOW + 60,
        )
        .await
        .unwrap();
    let link = store
        .peek_email_token(&hash("v"), EmailVerification, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.bound_to, "a@example.test");
    assert_eq!(
        store
            .peek_email_token(&hash("v"), PasswordReset, NOW)
            .await
            .unwrap(),
        None,
        "a link is for its purpose only"
    );
    store
        .drop_email_token("sub-1", EmailVerification)
        .await
        .unwrap();
    assert_eq!(
        store
            .peek_email_token(&hash("v"), EmailVerification, NOW)
            .await
            .unwrap(),
        None
    );
}

async fn racing_redemptions_have_one_winner_and_expired_links_none(store: Arc<dyn Store>) {
    store
        .issue_email_token("sub-1", PasswordReset, &hash("t"), "bound", NOW, NOW + 60)
        .await
        .unwrap();
    let wins = futures_util::future::join_all((0..FAMILY_RACERS).map(|_| {
        let store = store.clone();
        async move {
            store
                .redeem_email_token(&hash("t"), PasswordReset, NOW)
                .await
                .unwrap()
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    assert_eq!(wins.len(), 1);
    assert_eq!(wins[0].user_sub, "sub-1");
    assert_eq!(wins[0].bound_to, "bound");

    store
        .issue_email_token("sub-2", PasswordReset, &hash("old"), "bound", NOW, NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        store
            .peek_email_token(&hash("old"), PasswordReset, NOW + 60)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .redeem_email_token(&hash("old"), PasswordReset, NOW + 60)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .expired_backlog(Expiring::EmailTokens, NOW + 60, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .purge_kind(Expiring::EmailTokens, NOW + 60, 10)
            .await
            .unwrap(),
        1
    );
}

async fn users_are_found_by_address_in_any_case(store: Arc<dyn Store>) {
    for (sub, name, address) in [
        ("sub-a", "ann", Some("Ann@Example.test")),
        ("sub-b", "ben", Some("shared@example.test")),
        ("sub-c", "cy", Some("shared@example.test")),
        ("sub-d", "dee", None),
    ] {
        let mut record = user(sub, name);
        record.claims.email = address.map(str::to_owned);
        store.insert_user(&record).await.unwrap();
    }
    assert_eq!(
        store
            .find_users_by_email("ann@example.TEST", 2)
            .await
            .unwrap(),
        vec!["sub-a".to_owned()]
    );
    assert_eq!(
        store
            .find_users_by_email("shared@example.test", 2)
            .await
            .unwrap(),
        vec!["sub-b".to_owned(), "sub-c".to_owned()]
    );
    assert!(
        store
            .find_users_by_email("nobody@example.test", 2)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn claims_swaps_hold_only_while_unchanged(store: Arc<dyn Store>) {
    let mut record = user("sub-1", "ann");
    record.claims.email = Some("ann@example.test".into());
    store.insert_user(&record).await.unwrap();
    let read = store.get_user("sub-1").await.unwrap().unwrap();
    let mut claims = read.claims.clone();
    claims.email_verified = Some(true);
    assert!(
        !store
            .swap_claims(
                "sub-1",
                read.updated_at,
                "other@example.test",
                &claims,
                NOW + 2
            )
            .await
            .unwrap(),
        "not for another address"
    );
    assert!(
        !store
            .swap_claims(
                "sub-1",
                read.updated_at - 1,
                "ann@example.test",
                &claims,
                NOW + 2
            )
            .await
            .unwrap(),
        "not after a change"
    );
    assert!(
        store
            .swap_claims(
                "sub-1",
                read.updated_at,
                "ann@example.test",
                &claims,
                NOW + 2
            )
            .await
            .unwrap()
    );
    let after = store.get_user("sub-1").await.unwrap().unwrap();
    assert_eq!(after.claims.email_verified, Some(true));
}
