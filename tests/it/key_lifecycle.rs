//! Signing keys rotating by themselves (`LATCHKEY_KEY_ROTATION_INTERVAL`): three `latchkey
//! serve` processes over one database, with an interval of a few seconds. Every node shows
//! the three states over time: a `next` key published in JWKS before anything is signed with
//! it, then signing, while the key it replaced stays `retired` and published; and of three
//! nodes noticing the same due rotation, exactly one inserts the successor. A rotation by
//! hand goes through the same states, unless it asks to sign `now`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::cluster::{Client, Cluster, PROPAGATION_BOUND};
use crate::helpers::{Backend, fresh_database};

both_backends!(
    keys_rotate_by_themselves_on_three_nodes_through_next_active_and_retired,
    a_rotation_by_hand_is_next_on_three_nodes_before_it_signs_unless_now,
);

const INTERVAL: i64 = 8;
const PUBLISH_AHEAD: i64 = 3;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Node `i`'s `GET /admin/keys` entries for `alg`.
async fn keys_of(cluster: &Cluster, i: usize, alg: &str) -> Vec<Value> {
    let (status, body) = cluster.admin(i, Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200, "{body}");
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .cloned()
        .collect()
}

fn kid_in_state(keys: &[Value], state: &str) -> Option<String> {
    keys.iter()
        .find(|k| k["state"] == state)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
}

async fn jwks_kids(cluster: &Cluster, i: usize) -> Vec<String> {
    cluster
        .jwks(i)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// The kid of an access token node `i` signs now (ES256, the default access-token algorithm).
async fn signing_kid(cluster: &Cluster, i: usize, client: &Client) -> String {
    let (status, body) = cluster
        .token(i, client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
async fn wait_for<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = check().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn keys_rotate_by_themselves_on_three_nodes_through_next_active_and_retired(
    backend: Backend,
) {
    let database = fresh_database(backend).await;
    let interval = INTERVAL.to_string();
    let ahead = PUBLISH_AHEAD.to_string();
    let cluster = Cluster::start_on(
        &database,
        3,
        &[
            ("LATCHKEY_KEY_ROTATION_INTERVAL", &interval),
            ("LATCHKEY_KEY_PUBLISH_AHEAD", &ahead),
        ],
    )
    .await;
    let client = cluster.create_client(0).await;

    // JWKS is never cached longer than the publish-ahead window.
    let r = cluster
        .http
        .get(cluster.url(1, "/jwks"))
        .send()
        .await
        .unwrap();
    let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
    let max_age: i64 = cache
        .rsplit("max-age=")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{cache}"));
    assert!(max_age < PUBLISH_AHEAD, "{cache}");

    // 1. `next`: published on every node before it signs anything.
    let (first, next) = wait_for(Duration::from_secs(INTERVAL as u64 + 10), async || {
        let keys = keys_of(&cluster, 0, "ES256").await;
        Some((kid_in_state(&keys, "active")?, kid_in_state(&keys, "next")?))
    })
    .await
    .expect("a next key is scheduled within the interval");
    let activates_at = keys_of(&cluster, 0, "ES256")
        .await
        .iter()
        .find(|k| k["kid"] == next.as_str())
        .unwrap()["activates_at"]
        .as_i64()
        .unwrap();
    for i in 0..3 {
        let published = wait_for(PROPAGATION_BOUND, async || {
            jwks_kids(&cluster, i).await.contains(&next).then_some(())
        })
        .await;
        assert!(published.is_some(), "node {i} publishes the next key");
        // Nothing is signed with it yet (checked only while its start is safely ahead).
        let kid = signing_kid(&cluster, i, &client).await;
        if now() < activates_at - 1 {
            assert_eq!(kid, first, "node {i} still signs with the active key");
        }
    }

    // 2. `active` and `retired`: at its start every node signs with the new key, and the old
    // one stays published for the tokens it signed.
    for i in 0..3 {
        let switched = wait_for(Duration::from_secs(PUBLISH_AHEAD as u64 + 5), async || {
            (signing_kid(&cluster, i, &client).await == next).then_some(())
        })
        .await;
        assert!(switched.is_some(), "node {i} signs with the new key");
        assert!(now() >= activates_at, "not before its start");
        let keys = keys_of(&cluster, i, "ES256").await;
        let state = |kid: &str| {
            keys.iter()
                .find(|k| k["kid"] == kid)
                .map(|k| k["state"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            state(&next).as_deref(),
            Some("active"),
            "node {i}: {keys:?}"
        );
        assert_eq!(
            state(&first).as_deref(),
            Some("retired"),
            "node {i}: {keys:?}"
        );
        assert!(jwks_kids(&cluster, i).await.contains(&first), "node {i}");
    }

    // 3. Exactly once per interval: every algorithm's keys start one interval (or more)
    // apart, whichever node inserted them.
    let (_, body) = cluster.admin(2, Method::GET, "/admin/keys", None).await;
    let mut starts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for k in body["keys"].as_array().unwrap() {
        starts
            .entry(k["alg"].as_str().unwrap().to_owned())
            .or_default()
            .push(k["activates_at"].as_i64().unwrap());
    }
    assert_eq!(starts.len(), 3, "{body}");
    for (alg, mut at) in starts {
        at.sort();
        assert!(at.len() >= 2, "{alg}: {body}");
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] >= INTERVAL,
                "{alg}: two keys in one interval: {body}"
            );
        }
    }
    let (_, events) = cluster
        .admin(0, Method::GET, "/admin/events?kind=keys_scheduled", None)
        .await;
    let scheduled = events["items"].as_array().map_or(0, Vec::len);
    assert!(scheduled >= 1, "{events}");
    cluster.assert_no_panic();
}

/// `POST /admin/keys/rotate` without `now`, with automatic rotation off: the new key is
/// `next` on all three nodes (published in JWKS, signing nothing) for the publish-ahead
/// window, then every node signs with it and the old key is `retired` and still published.
/// Six rotations racing through the three nodes leave one pending key per algorithm. With
/// `{"now": true}` the new key signs at once.
async fn a_rotation_by_hand_is_next_on_three_nodes_before_it_signs_unless_now(backend: Backend) {
    const AHEAD: i64 = 4;
    let database = fresh_database(backend).await;
    let ahead = AHEAD.to_string();
    let cluster = Cluster::start_on(
        &database,
        3,
        &[
            ("LATCHKEY_KEY_ROTATION_INTERVAL", "0"),
            ("LATCHKEY_KEY_PUBLISH_AHEAD", &ahead),
        ],
    )
    .await;
    let client = cluster.create_client(0).await;
    let first = kid_in_state(&keys_of(&cluster, 0, "ES256").await, "active").unwrap();

    let rotate = |i: usize| cluster.admin(i, Method::POST, "/admin/keys/rotate", None);
    let answers = tokio::join!(
        rotate(0),
        rotate(1),
        rotate(2),
        rotate(0),
        rotate(1),
        rotate(2)
    );
    for (status, body) in [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5,
    ] {
        assert_eq!(status, 200, "{body}");
    }
    // The store serialised them: the last one's keys are the only pending ones, and every
    // node (each reloads when the key version moves) comes to publish that same one.
    let (next, activates_at) = wait_for(PROPAGATION_BOUND, async || {
        let mut seen = Vec::new();
        for i in 0..3 {
            let keys = keys_of(&cluster, i, "ES256").await;
            assert!(
                keys.len() <= 2,
                "node {i}: one active and one next key: {keys:?}"
            );
            let next = kid_in_state(&keys, "next")?;
            jwks_kids(&cluster, i).await.contains(&next).then_some(())?;
            let starts =
                keys.iter().find(|k| k["kid"] == next.as_str())?["activates_at"].as_i64()?;
            seen.push((next, starts));
        }
        seen.windows(2)
            .all(|w| w[0] == w[1])
            .then(|| seen[0].clone())
    })
    .await
    .expect("all three nodes publish the same next key");

    // 1. `next` on every node: nothing is signed with it yet (checked only while its start
    // is safely ahead).
    for i in 0..3 {
        let kid = signing_kid(&cluster, i, &client).await;
        if now() < activates_at - 1 {
            assert_eq!(kid, first, "node {i} still signs with the active key");
        }
    }

    // 2. At its start every node signs with it; the old key is retired and still published.
    for i in 0..3 {
        let switched = wait_for(Duration::from_secs(AHEAD as u64 + 5), async || {
            (signing_kid(&cluster, i, &client).await == next).then_some(())
        })
        .await;
        assert!(switched.is_some(), "node {i} signs with the new key");
        assert!(now() >= activates_at, "not before its start");
        let keys = keys_of(&cluster, i, "ES256").await;
        assert_eq!(
            kid_in_state(&keys, "active"),
            Some(next.clone()),
            "node {i}"
        );
        assert_eq!(
            kid_in_state(&keys, "retired"),
            Some(first.clone()),
            "node {i}"
        );
        assert!(jwks_kids(&cluster, i).await.contains(&first), "node {i}");
    }

    // 3. `now`: the node that rotated signs with the new key at once, the others follow.
    let (status, body) = cluster
        .admin(
            1,
            Method::POST,
            "/admin/keys/rotate",
            Some(&serde_json::json!({"now": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let keys = keys_of(&cluster, 1, "ES256").await;
    let urgent = kid_in_state(&keys, "active").unwrap();
    assert_ne!(urgent, next);
    assert_eq!(kid_in_state(&keys, "next"), None, "{keys:?}");
    assert_eq!(signing_kid(&cluster, 1, &client).await, urgent);
    for i in [0, 2] {
        let switched = wait_for(PROPAGATION_BOUND, async || {
            (signing_kid(&cluster, i, &client).await == urgent).then_some(())
        })
        .await;
        assert!(switched.is_some(), "node {i} signs with the urgent key");
    }
    cluster.assert_no_panic();
}
