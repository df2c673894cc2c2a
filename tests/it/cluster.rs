//! Three `latchkey serve` processes over one Postgres database, as a load balancer would see
//! them: every node has the same issuer, and no step of a flow needs to come back to the node
//! that started it. Shows that nodes are stateless (sessions, pending logins, codes, consents,
//! refresh-token families, revocations and signing keys live in the database), that the
//! single-use rules hold when the racing requests land on different nodes, and that key and
//! client changes reach every node within the documented bound (`app::CHANGE_POLL_INTERVAL`).
//!
//! The race scenarios are `cluster::race_*`; `tests/cluster/race_20x.sh` runs them 20 times in
//! a row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::cluster::{
    Agent, Authorized, Client, Cluster, ISSUER, PROPAGATION_BOUND, REDIRECT_URI, browser_flow,
    code_form,
};

/// A cluster of three with a user and a client, and a code obtained through all three nodes.
async fn cluster_with_code() -> (Cluster, Client, Authorized) {
    cluster_with_code_and(&[]).await
}

/// `cluster_with_code` with extra settings on every node.
async fn cluster_with_code_and(extra_env: &[(&str, &str)]) -> (Cluster, Client, Authorized) {
    let database_url = crate::helpers::fresh_database(crate::helpers::Backend::Postgres).await;
    let cluster = Cluster::start_on(&database_url, 3, extra_env).await;
    cluster.create_user(0, "alice").await;
    let client = cluster.create_client(1).await;
    let bases: Vec<&str> = cluster.nodes.iter().map(|n| n.base.as_str()).collect();
    let authorized = browser_flow(&mut Agent::default(), &bases, &client).await;
    (cluster, client, authorized)
}

/// Verifies a JWT Latchkey issued against node `i`'s JWKS (signature, `iss`, `aud`); its claims.
async fn verify_with_jwks(cluster: &Cluster, i: usize, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().expect("kid");
    let jwks = cluster.jwks(i).await;
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("node {i}'s JWKS does not publish kid {kid}"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("node {i}'s JWKS does not verify the token: {e}"))
        .claims
}

/// Polls `check` until it holds or `bound` has passed; how long it took.
async fn within(bound: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_flow_with_every_step_on_another_node() {
    let cluster = Cluster::start(3).await;
    cluster.create_user(0, "alice").await;
    let client = cluster.create_client(1).await;
    let bases: Vec<&str> = cluster.nodes.iter().map(|n| n.base.as_str()).collect();
    // authorize on 0, login page on 1, login POST on 2, consent page on 0, consent POST on 1.
    let mut agent = Agent::default();
    let authorized = browser_flow(&mut agent, &bases, &client).await;
    assert!(
        agent.cookies.contains_key("latchkey_session"),
        "the login set a session cookie: {:?}",
        agent.cookies
    );

    // Code exchange on node 2.
    let (status, tokens) = cluster.token(2, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "code exchange on node 2: {tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    // Tokens from node 2 verify against every node's JWKS.
    for i in 0..3 {
        let claims = verify_with_jwks(&cluster, i, &access, &client.id).await;
        assert_eq!(claims["client_id"], client.id.as_str());
        let claims = verify_with_jwks(&cluster, i, id_token, &client.id).await;
        assert_eq!(claims["nonce"], "cluster-nonce");
    }

    // Refresh on node 0.
    let (status, refreshed) = cluster
        .token(
            0,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "refresh on node 0: {refreshed}");
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), refresh);

    // Userinfo on node 1.
    let r = cluster
        .http
        .get(cluster.url(1, "/userinfo"))
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let userinfo: Value = r.json().await.unwrap();
    let claims = verify_with_jwks(&cluster, 1, id_token, &client.id).await;
    assert_eq!(userinfo["sub"], claims["sub"]);
    assert_eq!(userinfo["email"], "alice@example.test");

    // The session made on node 2 is honoured by the others: a second authorization on node 1
    // goes straight back to the client (consent is remembered too).
    let second = browser_flow(&mut agent, &[bases[1]], &client).await;
    let (status, body) = cluster.token(0, &client, &code_form(&second)).await;
    assert_eq!(status, 200, "{body}");

    // Every node introspects every token the same way.
    for i in 0..3 {
        assert!(cluster.is_active(i, &client, &access).await, "node {i}");
        assert!(cluster.is_active(i, &client, new_access).await, "node {i}");
    }
    cluster.assert_no_panic();
}

/// 100 concurrent redemptions of one code, spread over three nodes: exactly one gets tokens;
/// the others get `invalid_grant`, and their reuse revokes what the winner got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_one_code_redeemed_on_every_node_at_once() {
    const RACERS: usize = 100;
    let (cluster, client, authorized) = cluster_with_code().await;
    let cluster = Arc::new(cluster);
    let client = Arc::new(client);
    let authorized = Arc::new(authorized);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (cluster, client, authorized, barrier) = (
                cluster.clone(),
                client.clone(),
                authorized.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                cluster.token(i, &client, &code_form(&authorized)).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            200 => winners.push(body),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("a racer got {other}: {body}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one redemption succeeds: {winners:?}"
    );
    let winner = &winners[0];
    // The losers presented a used code: the grant is revoked, on every node.
    let access = winner["access_token"].as_str().unwrap();
    for i in 0..3 {
        assert!(
            !cluster.is_active(i, &client, access).await,
            "node {i} still accepts the access token of a replayed code"
        );
    }
    let (status, body) = cluster
        .token(
            1,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", winner["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    cluster.assert_no_panic();
}

/// 50 concurrent refreshes with one refresh token over three nodes: exactly one rotates it.
/// The others present a rotated-out token, which is reuse: the whole family is revoked, so
/// afterwards every token of the family (the old refresh token, the winner's new one, and the
/// access tokens) is dead on every node. That is the defined behaviour (RFC 9700 §4.14.2)
/// without the reuse grace, which is off here (with it, the racers are retries: `races.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_one_refresh_token_rotated_on_every_node_at_once() {
    const RACERS: usize = 50;
    let (cluster, client, authorized) =
        cluster_with_code_and(&[("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", "0")]).await;
    let (status, tokens) = cluster.token(0, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "{tokens}");
    let first_access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = Arc::new(tokens["refresh_token"].as_str().unwrap().to_owned());
    let cluster = Arc::new(cluster);
    let client = Arc::new(client);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (cluster, client, refresh, barrier) = (
                cluster.clone(),
                client.clone(),
                refresh.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                cluster
                    .token(
                        i,
                        &client,
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            200 => winners.push(body),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("a racer got {other}: {body}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one rotation succeeds: {winners:?}"
    );
    let winner = &winners[0];
    let new_refresh = winner["refresh_token"].as_str().unwrap();
    let new_access = winner["access_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh.as_str());
    // The family is consistent: nothing of it works anywhere any more.
    for i in 0..3 {
        for presented in [refresh.as_str(), new_refresh] {
            let (status, body) = cluster
                .token(
                    i,
                    &client,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", presented),
                    ],
                )
                .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "node {i}: {body}"
            );
        }
        assert!(!cluster.is_active(i, &client, new_access).await, "node {i}");
        assert!(
            !cluster.is_active(i, &client, &first_access).await,
            "node {i}"
        );
    }
    cluster.assert_no_panic();
}

/// A key rotation through node A: node C publishes the new key within the bound, and tokens
/// node A signs with it verify against node C's JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_through_node_a_verifies_through_node_c() {
    let cluster = Cluster::start(3).await;
    let client = cluster.create_client(0).await;
    let (a, c) = (0, 2);
    let kids = |set: &JwkSet| -> Vec<String> {
        set.keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let before = kids(&cluster.jwks(c).await);
    let (status, body) = cluster
        .admin(a, reqwest::Method::POST, "/admin/keys/rotate", None)
        .await;
    assert!((200..300).contains(&status), "rotate: {status} {body}");
    let rotated_at = Instant::now();
    let after_a = kids(&cluster.jwks(a).await);
    let new_kids: Vec<String> = after_a
        .iter()
        .filter(|k| !before.contains(k))
        .cloned()
        .collect();
    assert!(
        !new_kids.is_empty(),
        "node A publishes the new keys at once"
    );
    let reached = within(PROPAGATION_BOUND, async || {
        let at_c = kids(&cluster.jwks(c).await);
        new_kids.iter().all(|k| at_c.contains(k))
    })
    .await
    .expect("node C publishes the new keys within the bound");
    eprintln!(
        "key rotation reached node C after {} ms (measured from the rotate response)",
        reached.as_millis()
    );
    // A token node A signs now uses a new key, and node C's JWKS verifies it.
    let (status, body) = cluster
        .token(
            a,
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert!(new_kids.contains(&kid), "node A signs with the new key");
    verify_with_jwks(&cluster, c, token, &client.id).await;
    // The retired key stays published (tokens it signed are still valid).
    let at_c = kids(&cluster.jwks(c).await);
    assert!(before.iter().all(|k| at_c.contains(k)));
    // And node C itself signs with the new key once it has reloaded.
    assert!(
        within(PROPAGATION_BOUND, async || {
            let (_, body) = cluster
                .token(c, &client, &[("grant_type", "client_credentials")])
                .await;
            let token = body["access_token"].as_str().unwrap_or_default();
            jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|h| h.kid)
                .is_some_and(|k| new_kids.contains(&k))
        })
        .await
        .is_some(),
        "node C signs with the new key"
    );
    assert!(rotated_at.elapsed() < Duration::from_secs(30));
    cluster.assert_no_panic();
}

/// A client deleted through node B is refused by node C (which had it cached) within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deleted_through_node_b_is_refused_by_node_c() {
    let cluster = Cluster::start(3).await;
    let client = cluster.create_client(0).await;
    let (b, c) = (1, 2);
    // Node C caches the client on first use.
    let (status, body) = cluster
        .token(c, &client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = cluster
        .admin(
            b,
            reqwest::Method::DELETE,
            &format!("/admin/clients/{}", client.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let took = within(PROPAGATION_BOUND, async || {
        let (status, _) = cluster
            .token(c, &client, &[("grant_type", "client_credentials")])
            .await;
        status == 401
    })
    .await
    .expect("node C refuses the deleted client within the bound");
    eprintln!(
        "client deletion reached node C after {} ms",
        took.as_millis()
    );
    // Its authorization requests get the error page, never a redirect, on every node.
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
    ])
    .unwrap();
    for i in 0..3 {
        let step = Agent::default()
            .get(&cluster.node(i).base, &format!("/authorize?{query}"))
            .await;
        assert_eq!(step.status, 400, "node {i}: {}", step.body);
        assert!(step.location.is_none());
    }
    cluster.assert_no_panic();
}
