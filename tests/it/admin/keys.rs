//! Signing keys through the admin API: listed without private parts, rotated per algorithm,
//! the retired keys still published in JWKS.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, fetch_json, spawn_app};

both_backends!(
    signing_keys_are_listed_and_rotated,
    a_rotation_by_hand_publishes_the_new_keys_ahead_unless_asked_for_now,
);

/// Without `now`, a rotation by hand goes through the same states as an automatic one: the
/// new key is `next` (published, not signing) for the publish-ahead window, and the key it
/// replaces signs until then. A second rotation meanwhile replaces the pending key. Bodies
/// that are not `{"now": bool}` are refused and change nothing.
async fn a_rotation_by_hand_publishes_the_new_keys_ahead_unless_asked_for_now(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, before) = app.admin(Method::GET, "/admin/keys", None).await;
    let old: Vec<Value> = before["keys"].as_array().unwrap().clone();

    for bad in [json!({"now": "yes"}), json!({"later": true}), json!([true])] {
        let (status, body) = app
            .admin(Method::POST, "/admin/keys/rotate", Some(&bad))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    let (_, unchanged) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(unchanged, before, "a refused rotation changes nothing");

    for round in 0..2 {
        let (status, after) = app.admin(Method::POST, "/admin/keys/rotate", None).await;
        assert_eq!(status, 200, "{after}");
        let keys = after["keys"].as_array().unwrap();
        assert_eq!(
            keys.len(),
            6,
            "round {round}: one pending key per algorithm: {after}"
        );
        for alg in ["ES256", "EdDSA", "RS256"] {
            let of_alg: Vec<&Value> = keys.iter().filter(|k| k["alg"] == alg).collect();
            let next: Vec<&&Value> = of_alg.iter().filter(|k| k["state"] == "next").collect();
            let active: Vec<&&Value> = of_alg.iter().filter(|k| k["state"] == "active").collect();
            assert_eq!((next.len(), active.len()), (1, 1), "{alg}: {after}");
            assert!(
                old.iter().any(|k| k["kid"] == active[0]["kid"]),
                "{alg}: the old key still signs"
            );
            assert_eq!(next[0]["active"], false);
            let starts = next[0]["activates_at"].as_i64().unwrap();
            let created = next[0]["created_at"].as_i64().unwrap();
            assert!(
                (86_399..=86_401).contains(&(starts - created)),
                "{alg}: published a day (LATCHKEY_KEY_PUBLISH_AHEAD) ahead: {after}"
            );
            assert_eq!(
                active[0]["retired_at"].as_i64(),
                Some(starts),
                "{alg}: the old key stops when the new one starts"
            );
        }
    }
    // The pending keys are in JWKS, and tokens are still signed with the old ones.
    let jwks_uri = app.discovery().await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = fetch_json(app.http.get(jwks_uri)).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 6, "{jwks}");

    let (status, after) = app
        .admin(
            Method::POST,
            "/admin/keys/rotate",
            Some(&json!({"now": false})),
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        after["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "next")
            .count(),
        3
    );
}

async fn signing_keys_are_listed_and_rotated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, before) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200);
    let keys = before["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, vec!["ES256", "EdDSA", "RS256"]);
    assert!(
        keys.iter()
            .all(|k| k["active"] == true && k["state"] == "active" && k["retired_at"].is_null())
    );
    assert!(!before.to_string().contains("private"));
    let old_kids: Vec<String> = keys
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();

    let (status, after) = app
        .admin(
            Method::POST,
            "/admin/keys/rotate",
            Some(&json!({"now": true})),
        )
        .await;
    assert_eq!(status, 200, "{after}");
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 6, "{after}");
    for alg in ["ES256", "EdDSA", "RS256"] {
        let of_alg: Vec<&Value> = keys.iter().filter(|k| k["alg"] == alg).collect();
        assert_eq!(of_alg.len(), 2, "{alg}");
        let active: Vec<&&Value> = of_alg.iter().filter(|k| k["active"] == true).collect();
        assert_eq!(active.len(), 1, "{alg}");
        assert!(
            !old_kids.contains(&active[0]["kid"].as_str().unwrap().to_owned()),
            "{alg}: a new key signs"
        );
        assert_eq!(active[0]["state"], "active");
        let retired: Vec<&&Value> = of_alg.iter().filter(|k| k["active"] == false).collect();
        assert_eq!(
            retired[0]["state"], "retired",
            "{alg}: rotation by hand with `now` is at once"
        );
        let retired_at = retired[0]["retired_at"].as_i64().unwrap();
        assert_eq!(retired_at, active[0]["activates_at"].as_i64().unwrap());
        assert!(retired[0]["unpublished_at"].as_i64().unwrap() > retired_at);
    }
    let (_, listed) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(listed, after);
    // The retired keys stay in JWKS for tokens they signed.
    let jwks_uri = app.discovery().await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = fetch_json(app.http.get(jwks_uri)).await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    for kid in &old_kids {
        assert!(published.contains(&kid.as_str()), "{kid} still in JWKS");
    }
    // RSA and EC keys come before OKP keys: some libraries stop at the first key they
    // cannot parse.
    let ktys: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    let first_okp = ktys.iter().position(|k| *k == "OKP").unwrap();
    assert!(ktys[first_okp..].iter().all(|k| *k == "OKP"), "{ktys:?}");
}
