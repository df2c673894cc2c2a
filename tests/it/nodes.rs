//! Several nodes over one database: what one node changes (signing keys, clients) every other
//! node sees within the documented bound (`app::CHANGE_POLL_INTERVAL`), without a restart.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestClient, fetch_json, spawn_app, spawn_node};

both_backends!(
    a_key_rotation_through_one_node_reaches_the_others,
    a_client_deleted_through_one_node_is_refused_by_the_others,
);

async fn jwks(node: &TestApp) -> Value {
    fetch_json(node.http.get(node.url("/jwks"))).await
}

fn kids_for(jwks: &Value, alg: &str) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` for up to two seconds (four poll intervals).
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..40 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn client_credentials_kid(node: &TestApp, client: &TestClient) -> String {
    let (status, body, _) = node
        .token(
            client,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn a_key_rotation_through_one_node_reaches_the_others(backend: Backend) {
    let a = spawn_app(backend).await;
    let c = spawn_node(&a).await;
    let client = TestClient::from_registration(&a.create_web_client().await);
    let before = kids_for(&jwks(&c).await, "ES256");
    assert_eq!(before.len(), 1);
    assert_eq!(client_credentials_kid(&a, &client).await, before[0]);

    let (status, _) = a
        .admin(
            Method::POST,
            "/admin/keys/rotate",
            Some(&serde_json::json!({"now": true})),
        )
        .await;
    assert!((200..300).contains(&status), "{status}");
    let new_kid = kids_for(&jwks(&a).await, "ES256")
        .into_iter()
        .find(|k| !before.contains(k))
        .expect("node A publishes the new key at once");
    assert!(
        eventually(async || kids_for(&jwks(&c).await, "ES256").len() == 2).await,
        "node C publishes old and new keys"
    );
    // New signatures on node A use the new key, and node C's JWKS verifies them.
    let kid = client_credentials_kid(&a, &client).await;
    assert_eq!(kid, new_kid);
    assert!(kids_for(&jwks(&c).await, "ES256").contains(&kid));
    // Node C signs with the new key too once it has reloaded.
    assert!(eventually(async || client_credentials_kid(&c, &client).await == new_kid).await);
}

async fn a_client_deleted_through_one_node_is_refused_by_the_others(backend: Backend) {
    let a = spawn_app(backend).await;
    let c = spawn_node(&a).await;
    let client = TestClient::from_registration(&a.create_web_client().await);
    // Node C caches the client on first use.
    client_credentials_kid(&c, &client).await;
    let path = format!("/admin/clients/{}", client.client_id);
    let (status, _) = a.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(
        eventually(async || {
            let (status, _, _) = c
                .token(&client, &[("grant_type", "client_credentials")])
                .await;
            status == 401
        })
        .await,
        "node C refuses the deleted client within the poll bound"
    );
}
