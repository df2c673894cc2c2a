//! The process as operators run it: graceful shutdown on SIGTERM, `/metrics`, the
//! readiness probe, and the permissions of the files it creates.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, PASSWORD, ServerProcess, TEST_MASTER_KEY, admin_call, fresh_database,
    no_redirect_client,
};

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
    // Sixteen people, one login each: one account logging in sixteen times at once would
    // meet its own throttle, which counts every login in flight.
    for i in 0..16 {
        let user = json!({"username": format!("alice{i}"), "password": PASSWORD});
        let (status, _) = node.admin(Method::POST, "/admin/users", Some(&user)).await;
        assert_eq!(status, 201);
    }
    let metadata = json!({"grant_types": ["password"], "scope": "openid"});
    let (_, reg) = node
        .admin(Method::POST, "/admin/clients", Some(&metadata))
        .await;
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
        .enumerate()
        .map(|(i, http)| {
            let (base, id, secret) = (base.clone(), id.clone(), secret.clone());
            tokio::spawn(async move {
                let username = format!("alice{i}");
                http.post(format!("{base}/token"))
                    .basic_auth(id, Some(secret))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", username.as_str()),
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
    let metadata = json!({"grant_types": ["client_credentials"], "scope": "api.read"});
    let (_, reg) = node
        .admin(Method::POST, "/admin/clients", Some(&metadata))
        .await;
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
    let user = json!({"username": "metrics-user", "password": "correct horse battery"});
    let (status, _) = node.admin(Method::POST, "/admin/users", Some(&user)).await;
    assert_eq!(status, 201);
    // The static documents are answered ahead of the metrics middleware and counted there.
    for path in ["/jwks", "/jwks", "/.well-known/openid-configuration"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Housekeeping's first pass runs at start-up; its series appear once it is done.
    // The first housekeeping pass runs shortly after the start; on a loaded machine (CI with
    // other suites beside it) it has been seen to take more than ten seconds.
    let mut text = String::new();
    for _ in 0..600 {
        let r = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        text = r.text().await.unwrap();
        if text.contains("latchkey_housekeeping_backlog_rows{table=\"audit_event\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
        "latchkey_housekeeping_purged_rows_total{table=\"refresh_family\"} 0",
        "latchkey_housekeeping_purged_rows_total{table=\"used_value\"} 0",
        "latchkey_housekeeping_backlog_rows{table=\"refresh_family\"} 0",
        "latchkey_housekeeping_backlog_rows{table=\"audit_event\"} 0",
        "latchkey_housekeeping_purge_rows_per_second 0",
        "latchkey_housekeeping_pass_duration_seconds_count 1",
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

/// `latchkey serve` started by `sh` under umask 022 (the usual default, which leaves new
/// files readable by everyone), in `dir`, with only `env` set; killed when dropped.
struct UmaskedNode {
    base: String,
    child: std::process::Child,
    log_path: std::path::PathBuf,
}

impl UmaskedNode {
    async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> UmaskedNode {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$0\" serve")
            .arg(env!("CARGO_BIN_EXE_latchkey"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LATCHKEY_ISSUER", &base)
            .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LATCHKEY_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = UmaskedNode {
            base,
            child,
            log_path,
        };
        let http = no_redirect_client(false);
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{}/readyz", node.base)).send().await
                && r.status() == 200
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node did not become ready; log: {}", node.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A write through the admin API, so that SQLite has written its WAL.
    async fn create_user(&self, username: &str) {
        let user = json!({"username": username, "password": PASSWORD});
        let http = no_redirect_client(false);
        let (status, _) =
            admin_call(&http, &self.base, Method::POST, "/admin/users", Some(&user)).await;
        assert_eq!(status, 201);
    }
}

impl Drop for UmaskedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch_dir() -> std::path::PathBuf {
    // A new random directory per call.
    let path = latchkey::store::testing::fresh_sqlite_path();
    let dir = path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The embedded default (no database URL, no master key): `data/` is created 0700, and the
/// master key, the database and its WAL and shared-memory files are 0600, though the umask
/// would let everyone read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_database_and_its_files_are_readable_by_their_owner_only() {
    let dir = scratch_dir();
    let node = UmaskedNode::start(&dir, &[]).await;
    node.create_user("alice").await;
    let data = dir.join("data");
    assert_eq!(mode(&data), 0o700, "data/");
    for file in [
        "master.key",
        "latchkey.db",
        "latchkey.db-wal",
        "latchkey.db-shm",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}; log: {}", node.log());
    }
    drop(node);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database named by URL in a directory that does not exist yet gets the same treatment;
/// one that exists with permissions for others (an older Latchkey's, say), and its leftover
/// WAL and shared-memory files, are restricted to their owner, with a warning in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_created_private_and_existing_ones_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir();
    let fresh = dir.join("new").join("state").join("db.sqlite");
    let url = format!("sqlite://{}", fresh.display());
    let node = UmaskedNode::start(
        &dir,
        &[
            ("LATCHKEY_DATABASE_URL", &url),
            ("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY),
        ],
    )
    .await;
    node.create_user("alice").await;
    assert_eq!(mode(&dir.join("new")), 0o700);
    assert_eq!(mode(&dir.join("new").join("state")), 0o700);
    for file in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] {
        assert_eq!(mode(&fresh.with_file_name(file)), 0o600, "{file}");
    }
    drop(node);

    // An existing database, shared with everyone as a permissive umask once left it.
    let old = dir.join("old.db");
    let url = format!("sqlite://{}", old.display());
    let first = UmaskedNode::start(
        &dir,
        &[
            ("LATCHKEY_DATABASE_URL", &url),
            ("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY),
        ],
    )
    .await;
    first.create_user("alice").await;
    drop(first);
    for file in ["old.db", "old.db-wal", "old.db-shm"] {
        let path = dir.join(file);
        if !path.exists() {
            std::fs::write(&path, b"").unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let node = UmaskedNode::start(
        &dir,
        &[
            ("LATCHKEY_DATABASE_URL", &url),
            ("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY),
        ],
    )
    .await;
    node.create_user("bob").await;
    for file in ["old.db", "old.db-wal", "old.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let log = node.log();
    assert!(
        log.contains("readable by group or others") && log.contains("old.db"),
        "{log}"
    );
    drop(node);
    std::fs::remove_dir_all(&dir).unwrap();
}
