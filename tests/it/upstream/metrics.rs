//! Metrics per upstream, on the real binary (the metrics recorder is process-wide): an upstream
//! login that created a user and one refused for a wrong `nonce` are counted under their
//! upstream's id and outcome in `latchkey_upstream_logins_total`.

use reqwest::Method;
use serde_json::json;

use super::{FakeUpstream, Twist, UPSTREAM_SECRET};
use crate::both_backends;
use crate::helpers::{Backend, ServerProcess, fresh_database, pkce_pair, query_of};

both_backends!(upstream_logins_are_counted_per_upstream_and_outcome);

async fn upstream_logins_are_counted_per_upstream_and_outcome(backend: Backend) {
    let database = fresh_database(backend).await;
    let node = ServerProcess::start(
        &database,
        &[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")],
    )
    .await;
    let (status, client) = node
        .admin(
            Method::POST,
            "/admin/clients",
            Some(&json!({
                "client_name": "Metrics app",
                "redirect_uris": ["https://app.example.test/callback"],
                "grant_types": ["authorization_code"],
                "scope": "openid",
            })),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let good = FakeUpstream::start(Twist::None).await;
    let bad = FakeUpstream::start(Twist::WrongNonce).await;
    for (id, upstream) in [("corp", &good), ("shady", &bad)] {
        let body = json!({
            "id": id, "display_name": id, "kind": "oidc", "issuer": upstream.base,
            "client_id": "latchkey", "client_secret": UPSTREAM_SECRET, "create_users": true,
        });
        let (status, answer) = node
            .admin(Method::POST, "/admin/upstreams", Some(&body))
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    // One browser per login: authorize with `upstream=ID`, through the upstream, back.
    for id in ["corp", "shady"] {
        let http = crate::helpers::no_redirect_client(true);
        let (_, challenge) = pkce_pair();
        let authorize = http
            .get(format!("{}/authorize", node.base))
            .query(&[
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", "https://app.example.test/callback"),
                ("scope", "openid"),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("upstream", id),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(authorize.status(), 303);
        let to_upstream = authorize.headers()["location"].to_str().unwrap().to_owned();
        let at_upstream = http.get(&to_upstream).send().await.unwrap();
        assert_eq!(at_upstream.status(), 303);
        let back = at_upstream.headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer = http.get(&back).send().await.unwrap();
        let status = answer.status().as_u16();
        assert!(status == 200 || status == 303, "{id}: {status}");
        if id == "shady" {
            let location = answer.headers()["location"].to_str().unwrap().to_owned();
            assert_eq!(query_of(&location)["error"], "access_denied", "{location}");
        }
    }
    let text = node
        .http
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |upstream: &str, outcome: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("latchkey_upstream_logins_total{")
                    && l.contains(&format!("upstream=\"{upstream}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(count("corp", "created").as_deref(), Some("1"), "{text}");
    assert_eq!(count("shady", "denied").as_deref(), Some("1"), "{text}");
    assert_eq!(count("corp", "denied"), None, "{text}");
}
