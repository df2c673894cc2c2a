//! Faults: the database going away under load and coming back, and a connection pool run dry
//! by slow statements. Nodes must fail fast (503 with an RFC-shaped body or page, within the
//! configured `LATCHKEY_DATABASE_TIMEOUT_MS` plus a margin), say so on `/readyz`, never panic,
//! recover by themselves once the database is back, and lose nothing they acknowledged.
//!
//! The outage test stops and starts a private Postgres instance of its own (initdb + pg_ctl
//! in a temporary directory), never the shared server the rest of the suite uses. It needs the
//! PostgreSQL server programs (`initdb`, `pg_ctl`; Debian's `postgresql` package) and fails
//! with a message saying so when they are missing. Run as root, it runs them as the
//! `postgres` user (Postgres refuses to run as root).
//!
//! SIGTERM draining is tested in `lifecycle.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::cluster::{
    Agent, Client, Cluster, REDIRECT_URI, SCOPE, browser_flow, code_form, token_request,
};
use crate::helpers::{Backend, fresh_database};

/// `LATCHKEY_DATABASE_TIMEOUT_MS` of the outage test's nodes.
const OUTAGE_TIMEOUT_MS: u64 = 1000;
/// What a request may take on top of the configured timeout while the database is down:
/// scheduling slack on a loaded two-core machine running the rest of the suite beside this
/// test. (Measured alone: at most about 300 ms over the timeout.)
const MARGIN_MS: u64 = 1500;
/// A request without an answer after this long is taken as hung: the test fails, with that
/// message, instead of waiting for ever.
const HUNG: Duration = Duration::from_secs(10);

/// A Postgres server of this test's own, in a temporary directory, on a free loopback port.
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server programs as the `postgres` user (the tests run as root).
    as_postgres: bool,
}

/// The directory holding `initdb` and `pg_ctl`: `LATCHKEY_TEST_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the directory of `initdb` on PATH.
fn server_bin_dir() -> PathBuf {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("LATCHKEY_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            has_programs(&dir),
            "LATCHKEY_TEST_PG_BINDIR={} holds no initdb and pg_ctl",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_programs(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_programs(dir))
    {
        return dir;
    }
    panic!(
        "the fault tests need the PostgreSQL server programs initdb and pg_ctl, to run a \
         Postgres of their own that they can stop and start: install them (Debian: apt-get \
         install postgresql) or set LATCHKEY_TEST_PG_BINDIR to the directory holding them. \
         They were looked for in /usr/lib/postgresql/*/bin and on PATH."
    )
}

fn output_of(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl PrivatePostgres {
    /// initdb into a new temporary directory and start the server.
    pub async fn start() -> Arc<PrivatePostgres> {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .unwrap()
    }

    fn start_blocking() -> Arc<PrivatePostgres> {
        let bin = server_bin_dir();
        let as_postgres = output_of(Command::new("id").arg("-u")) == "0";
        let dir = std::env::temp_dir().join(format!(
            "latchkey-pg-{}-{}",
            std::process::id(),
            latchkey::crypto::random_token(6).to_lowercase()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let uid = output_of(Command::new("id").args(["-u", "postgres"]));
            let gid = output_of(Command::new("id").args(["-g", "postgres"]));
            let (Ok(uid), Ok(gid)) = (uid.parse::<u32>(), gid.parse::<u32>()) else {
                panic!(
                    "the fault tests run as root, so they run Postgres as the user `postgres`, \
                     which does not exist here: create it (Debian's postgresql package does) \
                     or run the tests as an ordinary user"
                );
            };
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres {
            dir,
            bin,
            port,
            as_postgres,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        pg.pg_ctl_start();
        Arc::new(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs one of the server programs (as `postgres` when we are root); panics with its
    /// output when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // Output to a file, not a pipe: pg_ctl's server would inherit a pipe and keep it open.
        let log_path = self.dir.join(format!("{program}.out"));
        let log = std::fs::File::create(&log_path).unwrap();
        let status = command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            status.success(),
            "{program} {args:?} failed ({status}):\n{}\nserver log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &self.dir.join("postgres.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Starts the stopped server again (same data, same port).
    pub async fn start_again(self: &Arc<Self>) {
        let pg = self.clone();
        tokio::task::spawn_blocking(move || pg.pg_ctl_start())
            .await
            .unwrap();
    }

    /// `pg_ctl stop -m fast`: sessions are ended, in-flight transactions rolled back, and
    /// the server shuts down cleanly; waits until it is down.
    pub async fn stop(self: &Arc<Self>) {
        let pg = self.clone();
        tokio::task::spawn_blocking(move || {
            pg.run("pg_ctl", &["-D", &pg.data(), "-m", "fast", "-w", "stop"])
        })
        .await
        .unwrap();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        } else {
            Command::new(&path)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One answer seen by the load or a probe.
#[derive(Debug, Clone)]
struct Seen {
    what: String,
    status: u16,
    millis: u64,
    location: Option<String>,
    content_type: String,
    body: String,
}

async fn seen(what: &str, started: Instant, response: reqwest::Response) -> Seen {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.text().await.unwrap_or_default();
    Seen {
        what: what.to_owned(),
        status,
        millis: started.elapsed().as_millis() as u64,
        location,
        content_type,
        body,
    }
}

/// A 503 in the shape its endpoint family promises: JSON `temporarily_unavailable` from the
/// APIs, an HTML error page naming the code from the pages.
fn assert_unavailable(s: &Seen) {
    assert_eq!(s.status, 503, "{s:?}");
    if s.content_type.starts_with("application/json") {
        let body: Value = serde_json::from_str(&s.body).unwrap_or_else(|_| panic!("{s:?}"));
        assert_eq!(body["error"], "temporarily_unavailable", "{s:?}");
        assert!(body["error_description"].is_string(), "{s:?}");
    } else if s.content_type.starts_with("text/html") {
        assert!(s.body.contains("temporarily_unavailable"), "{s:?}");
    } else {
        assert!(s.what == "readyz", "unexpected body type: {s:?}");
    }
}

/// A refresh family as the client knows it: the last refresh and access tokens it was given.
#[derive(Debug, Clone)]
struct Family {
    refresh: String,
    access: String,
}

/// Refreshes `family` over and over, round the nodes, until `stop`: every answer is recorded,
/// and only a 200 moves the family on (the client keeps what was acknowledged).
async fn refresh_load(
    http: reqwest::Client,
    bases: Vec<String>,
    client: Arc<Client>,
    mut family: Family,
    stop: Arc<AtomicBool>,
) -> (Family, Vec<Seen>) {
    let mut log = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let base = &bases[i % bases.len()];
        i += 1;
        let started = Instant::now();
        let r = http
            .post(format!("{base}/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", family.refresh.as_str()),
            ])
            .timeout(HUNG)
            .send()
            .await
            .expect("the node answers (no hang, no connection reset, no crash)");
        let s = seen("refresh", started, r).await;
        if s.status == 200 {
            let body: Value = serde_json::from_str(&s.body).unwrap();
            family = Family {
                refresh: body["refresh_token"].as_str().unwrap().to_owned(),
                access: body["access_token"].as_str().unwrap().to_owned(),
            };
        }
        log.push(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (family, log)
}

/// Every endpoint once on `base`, concurrently; what each answered and how fast.
async fn probe(http: &reqwest::Client, base: &str, client: &Client, family: &Family) -> Vec<Seen> {
    let authorize_query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "s"),
    ])
    .unwrap();
    let timed = |what: &'static str, request: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let r = request
            .timeout(HUNG)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer while Postgres was down: {e}"));
        seen(what, started, r).await
    };
    let basic = |r: reqwest::RequestBuilder| r.basic_auth(&client.id, Some(&client.secret));
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
        timed("readyz", http.get(format!("{base}/readyz"))),
        timed(
            "token code",
            basic(http.post(format!("{base}/token"))).form(&[
                ("grant_type", "authorization_code"),
                ("code", "no-such-code"),
                ("redirect_uri", REDIRECT_URI),
            ])
        ),
        timed(
            "token refresh",
            basic(http.post(format!("{base}/token"))).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "no-such-refresh-token"),
            ])
        ),
        timed(
            "token client_credentials",
            basic(http.post(format!("{base}/token"))).form(&[("grant_type", "client_credentials")])
        ),
        timed(
            "authorize",
            http.get(format!("{base}/authorize?{authorize_query}"))
                .header("cookie", "latchkey_session=no-such-session")
        ),
        timed(
            "introspect",
            basic(http.post(format!("{base}/introspect")))
                .form(&[("token", family.access.as_str())])
        ),
        timed(
            "userinfo",
            http.get(format!("{base}/userinfo"))
                .bearer_auth(&family.access)
        ),
        timed("healthz", http.get(format!("{base}/healthz"))),
        timed("jwks", http.get(format!("{base}/jwks"))),
    );
    vec![a, b, c, d, e, f, g, h, i]
}

async fn all_ready(cluster: &Cluster) -> bool {
    for node in &cluster.nodes {
        match cluster
            .http
            .get(format!("{}/readyz", node.base))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => {}
            _ => return false,
        }
    }
    true
}

/// Postgres stopped under load, then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_fails_fast_and_every_node_recovers() {
    const FAMILIES: usize = 4;
    let pg = PrivatePostgres::start().await;
    let timeout = OUTAGE_TIMEOUT_MS.to_string();
    let cluster = Cluster::start_on(
        &pg.url(),
        2,
        &[("LATCHKEY_DATABASE_TIMEOUT_MS", timeout.as_str())],
    )
    .await;
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
    cluster.create_user(0, "alice").await;
    let client = Arc::new(cluster.create_client(1).await);

    // Acknowledged before the outage: refresh families (code exchanges that returned 200), a
    // code (the 303 that carried it), and a browser session with its consent.
    let mut agent = Agent::default();
    let mut families = Vec::new();
    for k in 0..FAMILIES {
        let authorized = browser_flow(&mut agent, &[bases[k % 2].as_str()], &client).await;
        let (status, body) = cluster.token(k + 1, &client, &code_form(&authorized)).await;
        assert_eq!(status, 200, "{body}");
        families.push(Family {
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
        });
    }
    let pending_code = browser_flow(&mut agent, &[bases[0].as_str()], &client).await;

    // Load: each family refreshed continuously, round the nodes.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = families
        .iter()
        .map(|family| {
            tokio::spawn(refresh_load(
                cluster.http.clone(),
                bases.clone(),
                client.clone(),
                family.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // The outage.
    let stopping = Instant::now();
    pg.stop().await;
    let down = Instant::now();
    eprintln!(
        "postgres stopped (pg_ctl stop -m fast took {} ms)",
        (down - stopping).as_millis()
    );
    // Every endpoint on every node, twice: right after the stop and once the nodes have had
    // time to notice (their caches dropped, their pools emptied).
    let mut probes = Vec::new();
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        for base in &bases {
            probes.extend(probe(&cluster.http, base, &client, &families[0]).await);
        }
    }
    let outage = down.elapsed();
    pg.start_again().await;
    let up = Instant::now();
    let recovered = {
        let mut took = None;
        while up.elapsed() < Duration::from_secs(15) {
            if all_ready(&cluster).await {
                took = Some(up.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        took.expect("every node is ready again within 15 s of Postgres starting, without a restart")
    };
    // Load goes on for a moment after recovery, then stops.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut after = Vec::new();
    let mut load_seen = Vec::new();
    for task in load {
        let (family, log) = task.await.unwrap();
        after.push(family);
        load_seen.extend(log);
    }

    // While Postgres was down: what needs the database answered 503, in its family's shape,
    // fast; what does not (liveness, JWKS) answered 200.
    let bound = OUTAGE_TIMEOUT_MS + MARGIN_MS;
    let mut report = std::collections::BTreeMap::<String, (u64, Vec<u16>)>::new();
    for s in &probes {
        let entry = report.entry(s.what.clone()).or_default();
        entry.0 = entry.0.max(s.millis);
        entry.1.push(s.status);
        assert!(
            s.millis <= bound,
            "{} took {} ms while Postgres was down (bound {bound} ms): {s:?}",
            s.what,
            s.millis
        );
        match s.what.as_str() {
            "healthz" | "jwks" => assert_eq!(s.status, 200, "{s:?}"),
            // The client may still be cached for a moment after the database went away;
            // then client_credentials, which needs nothing else, still issues tokens.
            "token client_credentials" => {
                if s.status != 200 {
                    assert_unavailable(s)
                }
            }
            // A pipeline that has validated the client may return the error to it instead of
            // showing a page (RFC 6749 §4.1.2.1 temporarily_unavailable).
            "authorize" if s.status == 303 => {
                let location = s.location.as_deref().unwrap_or_default();
                assert!(location.starts_with(REDIRECT_URI), "{s:?}");
                assert!(location.contains("error=temporarily_unavailable"), "{s:?}");
            }
            _ => assert_unavailable(s),
        }
    }
    for (what, (max, statuses)) in &report {
        eprintln!("outage probe {what:26} max {max:5} ms statuses {statuses:?}");
    }
    // The load: 200 before and after, 503 during; never anything else, never slow.
    let mut unavailable = 0;
    let mut max_millis = 0;
    for s in &load_seen {
        max_millis = max_millis.max(s.millis);
        assert!(
            s.millis <= bound,
            "a refresh took {} ms (bound {bound} ms): {s:?}",
            s.millis
        );
        match s.status {
            200 => {}
            503 => {
                assert_unavailable(s);
                unavailable += 1;
            }
            _ => panic!("the load saw {s:?}"),
        }
    }
    eprintln!(
        "outage {} ms; load: {} refreshes, {unavailable} answered 503, slowest {max_millis} ms; \
         all nodes ready {} ms after Postgres started",
        outage.as_millis(),
        load_seen.len(),
        recovered.as_millis()
    );
    assert!(unavailable > 0, "the load ran into the outage");

    // Nothing acknowledged was lost: every family's last refresh token works, on either
    // node; its last access token is active; the code issued before the outage redeems; the
    // session and consent from before the outage still hold.
    for (k, family) in after.iter().enumerate() {
        assert!(cluster.is_active(k, &client, &family.access).await);
        let (status, body) = cluster
            .token(
                k + 1,
                &client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &family.refresh),
                ],
            )
            .await;
        assert_eq!(
            status, 200,
            "family {k}: the last acknowledged refresh token: {body}"
        );
    }
    let (status, body) = cluster.token(1, &client, &code_form(&pending_code)).await;
    assert_eq!(status, 200, "the code issued before the outage: {body}");
    for base in &bases {
        // Session and consent in the database: no login page, no consent page.
        let again = browser_flow(&mut agent, &[base.as_str()], &client).await;
        let (status, body) = token_request(&cluster.http, base, &client, &code_form(&again)).await;
        assert_eq!(status, 200, "{body}");
        // A new browser logs in and consents on the recovered node.
        let fresh = browser_flow(&mut Agent::default(), &[base.as_str()], &client).await;
        let (status, body) = token_request(&cluster.http, base, &client, &code_form(&fresh)).await;
        assert_eq!(status, 200, "{body}");
    }
    cluster.assert_no_panic();
    drop(cluster);
    drop(pg);
}

/// A pool of two connections, both stuck behind a lock: requests get 503 within the timeout
/// instead of queueing, endpoints that need no connection still answer at once, and the node
/// is itself again as soon as the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_instead_of_queueing() {
    const TIMEOUT_MS: u64 = 500;
    const BURST: usize = 12;
    use sqlx::{Connection, Executor};
    let database = fresh_database(Backend::Postgres).await;
    let timeout = TIMEOUT_MS.to_string();
    let cluster = Cluster::start_on(
        &database,
        1,
        &[
            ("LATCHKEY_DATABASE_MAX_CONNECTIONS", "2"),
            ("LATCHKEY_DATABASE_TIMEOUT_MS", timeout.as_str()),
        ],
    )
    .await;
    let base = cluster.nodes[0].base.clone();
    cluster.create_user(0, "alice").await;
    let client = Arc::new(cluster.create_client(0).await);
    let authorized = browser_flow(&mut Agent::default(), &[base.as_str()], &client).await;
    let (status, tokens) = cluster.token(0, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Another session takes the refresh-token tables (a token without dots is looked up in
    // the legacy one first): every statement of the node that touches them waits on the
    // lock, holding its connection.
    let mut locker = sqlx::PgConnection::connect(&database).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE refresh_family, legacy_refresh_token IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked_at = Instant::now();

    let burst: Vec<_> = (0..BURST)
        .map(|k| {
            let (http, base, client) = (cluster.http.clone(), base.clone(), client.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let r = http
                    .post(format!("{base}/token"))
                    .basic_auth(&client.id, Some(&client.secret))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &format!("not-a-refresh-token-{k}")),
                    ])
                    .timeout(HUNG)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("a request got no answer while the pool was exhausted: {e}")
                    });
                seen("refresh", started, r).await
            })
        })
        .collect();
    // Meanwhile what needs no database connection answers at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for path in ["/healthz", "/jwks"] {
        let started = Instant::now();
        let r = cluster
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} during pool exhaustion");
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{path} was slow"
        );
    }
    let mut answers = Vec::new();
    for request in burst {
        answers.push(request.await.unwrap());
    }
    let burst_took = locked_at.elapsed();
    // Release the lock: the node serves normally again, with no restart.
    locker.execute("ROLLBACK").await.unwrap();
    locker.close().await.unwrap();

    // Waiting for a connection is bounded by the timeout, and so (statement_timeout) is a
    // statement stuck on the lock: a request that got a connection after waiting for one can
    // take both, and no more.
    let bound = 2 * TIMEOUT_MS + 700;
    // Every answer is a 503: those that found the pool empty, and those whose statement held
    // a connection until Postgres cancelled it (statement_timeout, SQLSTATE 57014, which
    // `store::sql::is_transient` counts as "try again"), never a 500.
    let mut unavailable = 0;
    for s in &answers {
        assert!(
            s.millis <= bound,
            "a request queued for {} ms (bound {bound} ms): {s:?}",
            s.millis
        );
        assert_eq!(
            s.status, 503,
            "unexpected answer while the pool was exhausted: {s:?}"
        );
        assert_unavailable(s);
        unavailable += 1;
    }
    let slowest = answers.iter().map(|s| s.millis).max().unwrap_or(0);
    eprintln!(
        "pool exhaustion: {BURST} requests in {} ms; {unavailable} × 503; slowest {slowest} ms",
        burst_took.as_millis()
    );
    assert!(unavailable > 0, "some requests found the pool empty");

    let (status, body) = cluster
        .token(
            0,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(
        status, 200,
        "the node works again once the lock is gone: {body}"
    );
    let r = cluster
        .http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cluster.assert_no_panic();
}
