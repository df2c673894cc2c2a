//! The process as operators run it: graceful shutdown on SIGTERM, `/metrics`, and the
//! readiness probe.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, ServerProcess, fresh_database};

both_backends!(
    sigterm_drains_in_flight_requests_and_exits_cleanly,
    metrics_expose_the_operational_series
);

async fn sigterm_drains_in_flight_requests_and_exits_cleanly(backend: Backend) {
    let database = fresh_database(backend).await;
    let mut node =
        ServerProcess::start(&database, &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]).await;
    let http = node.http.clone();
    let base = node.base.clone();
    http.post(format!("{base}/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let reg: serde_json::Value = http
        .post(format!("{base}/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"grant_types": ["password"], "scope": "openid"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        reg["client_id"].as_str().unwrap().to_owned(),
        reg["client_secret"].as_str().unwrap().to_owned(),
    );
    // Password grants spend an argon2id hash each, one at a time per core pair: sixteen take
    // a few hundred milliseconds, so some are in flight at SIGTERM however fast the machine.
    // Each goes over its own connection, opened (and accepted by the server) beforehand: a
    // connection still in the listen backlog when the listener closes is reset by the
    // kernel, which says nothing about draining.
    let mut clients = Vec::new();
    for _ in 0..16 {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        clients.push(client);
    }
    let requests: Vec<_> = clients
        .into_iter()
        .map(|http| {
            let (base, id, secret) = (base.clone(), id.clone(), secret.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/token"))
                    .basic_auth(id, Some(secret))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("scope", "openid"),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.is_connect())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = node.terminate(Duration::from_secs(15));
        (status, node.log())
    })
    .await
    .unwrap();
    let mut completed = 0;
    for request in requests {
        // A request the server accepted completes with its answer; one that had not yet
        // connected when the listener closed is refused at connect, never cut off mid-way.
        match request.await.unwrap() {
            Ok(status) => {
                assert_eq!(status, 200, "an in-flight request completes normally");
                completed += 1;
            }
            Err(is_connect) => assert!(is_connect, "a request was cut off after it was accepted"),
        }
    }
    assert!(completed > 0, "some requests were in flight and drained");
    let (exit, log) = status;
    let exit =
        exit.unwrap_or_else(|| panic!("the process exits within the grace period; log: {log}"));
    assert!(exit.success(), "exit status {exit:?}; log: {log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    // After shutdown nothing listens any more.
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());
}

async fn metrics_expose_the_operational_series(backend: Backend) {
    let database = fresh_database(backend).await;
    let node = ServerProcess::start(&database, &[]).await;
    let base = &node.base;
    let http = &node.http;
    let reg: serde_json::Value = http
        .post(format!("{base}/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        reg["client_id"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
    );
    for _ in 0..3 {
        let r = http
            .post(format!("{base}/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Creating a user hashes its password once: the CPU it took is accounted for.
    let r = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"username": "metrics-user", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The static documents are answered ahead of the metrics middleware and counted there.
    for path in ["/jwks", "/jwks", "/.well-known/openid-configuration"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let hash_cpu: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("latchkey_password_hash_cpu_seconds_sum "))
        .unwrap_or_else(|| panic!("no hash CPU sum:\n{text}"))
        .parse()
        .unwrap();
    assert!(hash_cpu > 0.001 && hash_cpu < 5.0, "{hash_cpu}");
    for series in [
        "latchkey_password_hash_cpu_seconds_count 1",
        "latchkey_password_hash_cpu_seconds_bucket",
        "latchkey_http_requests_total{",
        "endpoint=\"/token\"",
        "latchkey_http_requests_total{endpoint=\"/jwks\",method=\"GET\",status=\"200\"} 2",
        "latchkey_http_requests_total{endpoint=\"/.well-known/openid-configuration\",method=\"GET\",status=\"200\"}",
        "status=\"200\"",
        "latchkey_http_request_duration_seconds_bucket",
        "latchkey_tokens_issued_total{grant=\"client_credentials\"} 3",
        "latchkey_db_pool_connections",
        "latchkey_db_pool_idle_connections",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from /metrics:\n{text}"
        );
    }
    let log = node.log();
    let line = log
        .lines()
        .find(|l| l.contains("request_id"))
        .expect("log lines carry request ids");
    assert!(
        serde_json::from_str::<serde_json::Value>(line).is_ok(),
        "JSON logs: {line}"
    );
}
