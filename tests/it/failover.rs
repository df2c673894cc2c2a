//! A Postgres failover as one node sees it, on the shared test server: the database behind the
//! node's address turns read-only with every connection cut (what a node meets when a proxy
//! still routes it to a demoted primary, or to a standby, for the second before the proxy's
//! health check moves over), then writable again with every connection cut once more (the new
//! primary). Writes in between must answer 503 `temporarily_unavailable` with `Retry-After`
//! (SQLSTATE 25006 used to surface as a 500), the pool must recover by itself, and what was
//! acknowledged before must still hold. The whole failover, with Patroni, HAProxy and two
//! Postgres servers, is `tests/failover/run.sh`.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::helpers::cluster::{Agent, Client, Cluster, browser_flow, code_form};
use crate::helpers::{Backend, fresh_database};

/// Cuts every other connection to the current database.
async fn cut_connections(admin: &mut PgConnection) {
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
}

/// POST /token on the node: (status, Retry-After, body), failing the test on no answer.
async fn token(cluster: &Cluster, client: &Client, form: &[(&str, &str)]) -> (u16, bool, Value) {
    let response = cluster
        .http
        .post(cluster.url(0, "/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the node answers (no hang, no connection reset)");
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn assert_unavailable(what: &str, (status, retry_after, body): &(u16, bool, Value)) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    assert!(retry_after, "{what}: a 503 carries Retry-After");
}

/// Retries `form` until it answers 200 (within 10 s): every answer before that must be a 503
/// `temporarily_unavailable` (a pooled connection that was cut). Returns the 200's body.
async fn until_ok(cluster: &Cluster, client: &Client, what: &str, form: &[(&str, &str)]) -> Value {
    let started = Instant::now();
    loop {
        let answer = token(cluster, client, form).await;
        if answer.0 == 200 {
            return answer.2;
        }
        assert_unavailable(what, &answer);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the node did not recover within 10 s of the database becoming writable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_answers_503_and_the_node_recovers_on_the_new_one() {
    let database = fresh_database(Backend::Postgres).await;
    let cluster =
        Cluster::start_on(&database, 1, &[("LATCHKEY_DATABASE_TIMEOUT_MS", "1000")]).await;
    cluster.create_user(0, "alice").await;
    let client = cluster.create_client(0).await;
    let base = cluster.nodes[0].base.clone();

    // Acknowledged before: a refresh family and a code not yet redeemed.
    let mut agent = Agent::default();
    let authorized = browser_flow(&mut agent, &[base.as_str()], &client).await;
    let (status, body) = cluster.token(0, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let pending = browser_flow(&mut agent, &[base.as_str()], &client).await;

    // The demotion: every new transaction is read-only, every open connection is cut.
    let mut admin = PgConnection::connect(&database).await.unwrap();
    let name: String = sqlx::query("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            format!("ALTER DATABASE \"{name}\" SET default_transaction_read_only = on").as_str(),
        )
        .await
        .unwrap();
    cut_connections(&mut admin).await;

    // Writes answer 503 (with Retry-After), never 500, each tried a few times: the first may
    // meet a cut connection, the later ones a read-only server.
    let rotate = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    for attempt in 0..4 {
        let answer = token(&cluster, &client, &rotate).await;
        assert_unavailable(
            &format!("refresh on a read-only server, attempt {attempt}"),
            &answer,
        );
        let answer = token(&cluster, &client, &code_form(&pending)).await;
        assert_unavailable(
            &format!("code on a read-only server, attempt {attempt}"),
            &answer,
        );
    }
    // A wrong secret must be counted against the throttle before it is refused; a failure
    // that cannot be counted is not answered as if it had been (`invalid_client` would let
    // guesses through uncounted while the database cannot write).
    let wrong = Client {
        id: client.id.clone(),
        secret: "not-the-secret".to_owned(),
    };
    let answer = token(&cluster, &wrong, &[("grant_type", "client_credentials")]).await;
    assert_unavailable("a wrong secret while failures cannot be counted", &answer);
    // What needs no write still works: client_credentials (cached client) and the pages'
    // neighbours.
    let (status, _, body) = token(&cluster, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "client_credentials needs no write: {body}");

    // The new primary: writable again, the connections cut once more.
    admin
        .execute(format!("ALTER DATABASE \"{name}\" RESET default_transaction_read_only").as_str())
        .await
        .unwrap();
    cut_connections(&mut admin).await;

    // Nothing acknowledged was lost, and the failed attempts changed nothing: the refresh
    // token is still the current one and the code redeems once.
    let rotated = until_ok(&cluster, &client, "refresh after recovery", &rotate).await;
    assert!(rotated["refresh_token"].is_string(), "{rotated}");
    let redeemed = until_ok(
        &cluster,
        &client,
        "code after recovery",
        &code_form(&pending),
    )
    .await;
    assert!(redeemed["access_token"].is_string(), "{redeemed}");
    let (status, _, body) = token(&cluster, &client, &code_form(&pending)).await;
    assert_eq!(status, 400, "a code redeems once: {body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    cluster.assert_no_panic();
}
