//! Signing keys through the admin API: listed without private parts, rotated per algorithm,
//! the retired keys still published in JWKS.

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, fetch_json, spawn_app};

both_backends!(signing_keys_are_listed_and_rotated,);

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

    let (status, after) = app.admin(Method::POST, "/admin/keys/rotate", None).await;
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
            "{alg}: rotation by hand is at once"
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
