//! Connections that stall or pile up (issue 12, slowloris): a request head must arrive in
//! time, idle keep-alive connections close, a TLS handshake cannot be held open, and the
//! number of open connections is capped per address and in total — without ever cutting a
//! request in progress or an admitted connection. Raw sockets (hyper's client for HTTP/2),
//! so that the test controls every byte and every pause; the timeouts are set short so that
//! each test takes a few seconds.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, ServerProcess, TEST_MASTER_KEY, TestApp, fresh_database,
    no_redirect_client, self_signed_certificate, settings, spawn_app_with,
};

both_backends!(
    a_request_head_that_arrives_too_slowly_is_closed,
    a_connection_that_sends_nothing_is_closed,
    an_idle_connection_is_closed_but_a_slow_request_is_not_cut,
    past_the_per_address_cap_new_connections_are_refused_and_admitted_ones_still_answer,
    a_trusted_proxy_is_held_only_to_the_total_cap,
    past_the_total_cap_new_connections_are_refused_and_admitted_ones_still_answer,
    a_tls_handshake_cannot_be_held_open,
    an_idle_http2_connection_is_closed_even_while_the_client_pings,
    under_a_small_descriptor_limit_new_clients_are_refused_not_locked_out,
);

/// Longer than any timeout these tests configure, plus scheduling slack on a loaded machine:
/// a connection still open after this was not going to be closed.
const PATIENCE: Duration = Duration::from_secs(5);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn server_addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection to the server from `source` (any 127/8 address is the local host).
async fn connect_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server_addr(app)).await.unwrap()
}

#[derive(Debug, PartialEq, Eq)]
enum Exchange {
    /// The status of a complete response.
    Answered(u16),
    /// The server closed (or reset) the connection without a complete response.
    Closed,
    Hung,
}

/// Sends `request` and reads one response (its head, then `Content-Length` bytes).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8]) -> Exchange {
    if stream.write_all(request).await.is_err() {
        return Exchange::Closed;
    }
    tokio::time::timeout(PATIENCE, read_response(stream))
        .await
        .unwrap_or(Exchange::Hung)
}

async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> Exchange {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return Exchange::Answered(status);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Exchange::Closed,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Waits for the server to close the connection, having sent nothing; the time from `since`
/// until then.
async fn closed_after<S: AsyncRead + Unpin>(stream: &mut S, since: Instant) -> Duration {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
        Err(_) => panic!("the connection is still open after {PATIENCE:?}"),
        Ok(Ok(n)) => assert_eq!(n, 0, "the server sent something before closing"),
        Ok(Err(_)) => {} // reset: closed too
    }
    since.elapsed()
}

fn assert_not_before(took: Duration, min_ms: u64, what: &str) {
    assert!(
        took >= Duration::from_millis(min_ms),
        "{what} closed after {took:?}, before its timeout"
    );
}

async fn a_request_head_that_arrives_too_slowly_is_closed(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_HEADER_READ_TIMEOUT_MS", "500")]),
    )
    .await;
    let stream = connect_from(&app, "127.0.0.1").await;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    // Slowloris: one byte every 50 ms, so that the connection never goes quiet, and never
    // the blank line that ends the head. Only a deadline for the whole head stops it.
    let dribble = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let took = closed_after(&mut reader, started).await;
    assert_not_before(took, 400, "a head sent byte by byte");
    dribble.abort();

    // A head that arrives in time is answered as always.
    let mut stream = connect_from(&app, "127.0.0.1").await;
    assert_eq!(
        exchange(&mut stream, HEALTHZ).await,
        Exchange::Answered(200)
    );
}

async fn a_connection_that_sends_nothing_is_closed(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_HEADER_READ_TIMEOUT_MS", "500")]),
    )
    .await;
    let mut stream = connect_from(&app, "127.0.0.1").await;
    let took = closed_after(&mut stream, Instant::now()).await;
    assert_not_before(took, 400, "a silent connection");
}

async fn an_idle_connection_is_closed_but_a_slow_request_is_not_cut(backend: Backend) {
    // The head timeout is long here, so that only the idle timeout can close anything.
    let app = spawn_app_with(
        backend,
        settings(&[
            ("LATCHKEY_IDLE_TIMEOUT_MS", "1000"),
            ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "30000"),
        ]),
    )
    .await;

    // Keep-alive works within the idle timeout; then the idle connection is closed.
    let mut idle = connect_from(&app, "127.0.0.1").await;
    assert_eq!(exchange(&mut idle, HEALTHZ).await, Exchange::Answered(200));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(exchange(&mut idle, HEALTHZ).await, Exchange::Answered(200));
    let answered = Instant::now();

    // A handler waiting on the database for longer than the idle timeout (the client table
    // is locked by another session for 2.5 s) is not cut off: it answers when the lock goes.
    let lock = hold_client_table(&app, Duration::from_millis(2500)).await;
    let slow_handler = {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        let body = r#"{"redirect_uris": ["https://app.example.test/cb"], "scope": "openid"}"#;
        let request = format!(
            "POST /admin/clients HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = exchange(&mut stream, request.as_bytes()).await;
            (outcome, started.elapsed())
        })
    };
    // A client that sends its body slowly (80 ms a byte, 2.3 s in all) has a request in
    // progress too, and gets its answer.
    let slow_upload = {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        tokio::spawn(async move {
            let body = b"grant_type=client_credentials";
            let head = format!(
                "POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            for byte in body {
                tokio::time::sleep(Duration::from_millis(80)).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return Exchange::Closed;
                }
            }
            tokio::time::timeout(PATIENCE, read_response(&mut stream))
                .await
                .unwrap_or(Exchange::Hung)
        })
    };

    let took = closed_after(&mut idle, answered).await;
    assert_not_before(took, 800, "an idle keep-alive connection");
    let (outcome, took) = slow_handler.await.unwrap();
    lock.await.unwrap();
    assert_eq!(
        outcome,
        Exchange::Answered(201),
        "the slow handler's answer"
    );
    assert!(
        took >= Duration::from_millis(2000),
        "the request waited for the lock ({took:?}), so it was slower than the idle timeout"
    );
    // No client credentials: 401, but an answer, not a closed connection.
    assert_eq!(slow_upload.await.unwrap(), Exchange::Answered(401));
}

/// Takes the write lock on the client table from another database session for `hold`, so
/// that a request registering a client waits that long. Resolves once the lock is held;
/// the returned task ends when it is released.
async fn hold_client_table(app: &TestApp, hold: Duration) -> tokio::task::JoinHandle<()> {
    use sqlx::{Connection, Executor};
    match app.backend {
        Backend::Postgres => {
            let mut locker = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            locker.execute("BEGIN").await.unwrap();
            locker
                .execute("LOCK TABLE client IN EXCLUSIVE MODE")
                .await
                .unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                locker.execute("ROLLBACK").await.unwrap();
            })
        }
        Backend::Sqlite => {
            // SQLite has one write lock for the whole file; the server's writers queue for it
            // (busy timeout) behind this transaction.
            let mut locker = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            locker.execute("BEGIN IMMEDIATE").await.unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                locker.execute("ROLLBACK").await.unwrap();
            })
        }
    }
}

/// A connection past a cap is accepted and closed at once: a request on it gets no answer.
async fn assert_refused(app: &TestApp, source: &str) {
    let mut stream = connect_from(app, source).await;
    assert_eq!(
        exchange(&mut stream, HEALTHZ).await,
        Exchange::Closed,
        "a connection from {source} past the cap"
    );
}

/// Opens `n` connections from `source`, each answered (and so admitted).
async fn open_answered(app: &TestApp, source: &str, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut stream = connect_from(app, source).await;
        assert_eq!(
            exchange(&mut stream, HEALTHZ).await,
            Exchange::Answered(200)
        );
        streams.push(stream);
    }
    streams
}

/// After a connection closes, its place is given back (as soon as the server has seen the
/// close): a new connection from `source` is answered within a second.
async fn assert_admitted_again(app: &TestApp, source: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let mut stream = connect_from(app, source).await;
        match exchange(&mut stream, HEALTHZ).await {
            Exchange::Answered(200) => return,
            other if Instant::now() > deadline => {
                panic!("no connection from {source} admitted after one closed: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn past_the_per_address_cap_new_connections_are_refused_and_admitted_ones_still_answer(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_MAX_CONNECTIONS_PER_IP", "3")]),
    )
    .await;
    let mut admitted = open_answered(&app, "127.0.0.1", 3).await;
    assert_refused(&app, "127.0.0.1").await;
    // Another address is not affected.
    open_answered(&app, "127.0.0.2", 1).await;
    // The admitted connections keep working.
    for stream in &mut admitted {
        assert_eq!(exchange(stream, HEALTHZ).await, Exchange::Answered(200));
    }
    drop(admitted.pop());
    assert_admitted_again(&app, "127.0.0.1").await;
}

async fn a_trusted_proxy_is_held_only_to_the_total_cap(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[
            ("LATCHKEY_MAX_CONNECTIONS_PER_IP", "1"),
            ("LATCHKEY_MAX_CONNECTIONS", "5"),
            ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.3"),
        ]),
    )
    .await;
    let _proxy = open_answered(&app, "127.0.0.3", 4).await;
    let _client = open_answered(&app, "127.0.0.4", 1).await;
    // The total is reached: the proxy is refused too.
    assert_refused(&app, "127.0.0.3").await;
}

async fn past_the_total_cap_new_connections_are_refused_and_admitted_ones_still_answer(
    backend: Backend,
) {
    let app = spawn_app_with(backend, settings(&[("LATCHKEY_MAX_CONNECTIONS", "4")])).await;
    let mut admitted = open_answered(&app, "127.0.0.1", 2).await;
    admitted.extend(open_answered(&app, "127.0.0.2", 2).await);
    assert_refused(&app, "127.0.0.5").await;
    assert_refused(&app, "127.0.0.1").await;
    for stream in &mut admitted {
        assert_eq!(exchange(stream, HEALTHZ).await, Exchange::Answered(200));
    }
    drop(admitted.pop());
    assert_admitted_again(&app, "127.0.0.5").await;
}

async fn a_tls_handshake_cannot_be_held_open(backend: Backend) {
    let certificate = self_signed_certificate();
    let (cert, key) = (&certificate.cert, &certificate.key);
    let app = spawn_app_with(
        backend,
        settings(&[
            ("LATCHKEY_TLS_CERT", &cert.display().to_string()),
            ("LATCHKEY_TLS_KEY", &key.display().to_string()),
            ("LATCHKEY_TLS_HANDSHAKE_TIMEOUT_MS", "500"),
            ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "1500"),
        ]),
    )
    .await;

    // A client that connects and never says hello.
    let mut silent = connect_from(&app, "127.0.0.1").await;
    let took = closed_after(&mut silent, Instant::now()).await;
    assert_not_before(took, 400, "a connection without a TLS handshake");

    // One that starts a ClientHello (a record header announcing 200 bytes) and stalls.
    let mut stalled = connect_from(&app, "127.0.0.1").await;
    let started = Instant::now();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .await
        .unwrap();
    let took = closed_after(&mut stalled, started).await;
    assert_not_before(took, 400, "a half-sent ClientHello");

    // After a finished handshake, the request head has its own deadline; a request in time
    // is answered. (rustls' blocking client: the test then needs no TLS crate of its own.)
    let addr = server_addr(&app);
    let root = certificate.der.clone();
    let (answer, silent_after_handshake) = tokio::task::spawn_blocking(move || {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).unwrap();
        let config = Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let connect = || {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).unwrap();
            }
            tls
        };
        let mut tls = connect();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        let mut tls = connect();
        let handshake_done = Instant::now();
        let mut byte = [0u8; 1];
        let read = tls.read(&mut byte);
        (
            answer,
            (read.map_err(|e| e.kind()), handshake_done.elapsed()),
        )
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (read, took) = silent_after_handshake;
    assert!(
        took < PATIENCE,
        "a connection silent after its handshake is still open: {read:?}"
    );
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "nothing but a close: {read:?}"
    );
    assert_not_before(took, 1400, "a connection silent after its handshake");
}

async fn an_idle_http2_connection_is_closed_even_while_the_client_pings(backend: Backend) {
    use axum::body::Body;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

    let app = spawn_app_with(
        backend,
        settings(&[
            ("LATCHKEY_IDLE_TIMEOUT_MS", "1000"),
            ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "30000"),
        ]),
    )
    .await;
    // HTTP/2 with prior knowledge, as a proxy speaking h2c to its upstream does. The client
    // pings every 200 ms while idle: PINGs and window updates are not requests, and must not
    // keep the connection open (nor count as the start of a request head).
    let tcp = connect_from(&app, "127.0.0.1").await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(200))
        .keep_alive_while_idle(true)
        .handshake::<_, Body>(TokioIo::new(tcp))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for _ in 0..2 {
        let request = hyper::Request::get(format!("{}/healthz", app.base))
            .body(Body::empty())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        axum::body::to_bytes(Body::new(response.into_body()), 1024)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answered = Instant::now();
    let ended = tokio::time::timeout(PATIENCE, connection).await;
    let took = answered.elapsed();
    assert!(
        ended.is_ok(),
        "the idle HTTP/2 connection is still open after {PATIENCE:?}"
    );
    assert_not_before(took, 600, "an idle HTTP/2 connection");
}

/// The finding behind these caps: with the default descriptor limit of many systems (1024)
/// connections exhausted the descriptors, after which new clients waited unanswered in the
/// listen backlog and the database pool could not open connections. Here the binary runs
/// under `ulimit -n 300` with the default caps: it lowers its total cap to fit (300 less
/// 112 kept for the database pool and the process = 188), so that past it new connections
/// are refused at once while the admitted ones, and the database behind them, keep working.
async fn under_a_small_descriptor_limit_new_clients_are_refused_not_locked_out(backend: Backend) {
    let database = fresh_database(backend).await;
    let node = start_with_descriptor_limit(&database, 300).await;
    let addr: SocketAddr = node.base.trim_start_matches("http://").parse().unwrap();
    let mut admitted = Vec::new();
    let mut refused = 0;
    // More than the descriptor limit: the old server ran out of descriptors and left the
    // rest waiting in the backlog.
    for _ in 0..320 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        match exchange(&mut stream, HEALTHZ).await {
            Exchange::Answered(200) => admitted.push(stream),
            Exchange::Closed => refused += 1,
            other => panic!("a new client got {other:?}; log: {}", node.log()),
        }
    }
    assert_eq!(
        admitted.len(),
        188,
        "{refused} refused; log: {}",
        node.log()
    );
    assert!(
        node.log().contains("enforcing a lower cap"),
        "the lowered cap is logged: {}",
        node.log()
    );
    // The admitted connections still get answers that need the database.
    for stream in admitted.iter_mut().step_by(10) {
        let ready = b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n";
        assert_eq!(exchange(stream, ready).await, Exchange::Answered(200));
    }
    admitted.truncate(150);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        match exchange(&mut stream, HEALTHZ).await {
            Exchange::Answered(200) => break,
            other if Instant::now() > deadline => {
                panic!("no new client admitted after some left: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `latchkey serve` as a child process whose descriptor limit (soft and hard) is `limit`,
/// ready to serve.
async fn start_with_descriptor_limit(database_url: &str, limit: u32) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = latchkey::store::testing::fresh_sqlite_path()
        .parent()
        .unwrap()
        .join(format!("fd-limit-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" serve"))
        .arg(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("LATCHKEY_ISSUER", &base)
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_DATABASE_URL", database_url)
        .env("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY)
        .current_dir(&dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let node = ServerProcess {
        base,
        log_path,
        child,
        http: no_redirect_client(false),
    };
    // Probed over a connection that closes after the answer, so that the test starts with
    // no connection open.
    let probe = b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for _ in 0..400 {
        if let Ok(mut stream) = TcpStream::connect(node.base.trim_start_matches("http://")).await
            && exchange(&mut stream, probe).await == Exchange::Answered(200)
        {
            // Until the server has seen the close, the probe holds its place under the cap.
            let _ = stream.read(&mut [0u8; 1]).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            return node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node did not become ready; log: {}", node.log());
}
