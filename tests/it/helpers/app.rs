//! `spawn_app`: the real server, in this process, on a random loopback port over a fresh
//! database (a new SQLite file or a new Postgres database), with its clock under the test's
//! control; more nodes over the same database with `spawn_node`; and the users and clients
//! most tests start from.

use std::sync::Arc;

use latchkey::app::{App, BackgroundTasks};
use latchkey::clock::OffsetClock;
use latchkey::config::Config;
use serde_json::{Value, json};

use super::TestClient;

/// Which database a test runs on. Every behavioural test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery staple";
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub struct TestApp {
    pub base: String,
    pub app: App,
    pub clock: Arc<OffsetClock>,
    pub backend: Backend,
    /// A client that does not follow redirects and keeps no cookies.
    pub http: reqwest::Client,
    pub database_url: String,
    _background: BackgroundTasks,
    _server: tokio::task::JoinHandle<()>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the server with extra `LATCHKEY_*` settings.
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Vec<(String, String)>),
) -> TestApp {
    spawn_on(backend, fresh_database(backend).await, configure).await
}

/// The `configure` argument of `spawn_app_with` that adds these settings.
pub fn settings(pairs: &[(&str, &str)]) -> impl FnOnce(&mut Vec<(String, String)>) + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |env| env.extend(pairs)
}

/// The start most flow tests share: a fresh server, the user alice (with `PASSWORD`) and the
/// confidential web client of `TestApp::create_web_client`.
pub async fn spawn_app_with_alice(backend: Backend) -> (TestApp, TestClient) {
    spawn_app_with_alice_and(backend, &[]).await
}

/// `spawn_app_with_alice` on a server with extra `LATCHKEY_*` settings.
pub async fn spawn_app_with_alice_and(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, TestClient) {
    let app = spawn_app_with(backend, settings(extra)).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    (app, client)
}

/// Starts another node over the same database as `other` (for multi-node tests).
pub async fn spawn_node(other: &TestApp) -> TestApp {
    spawn_on(other.backend, other.database_url.clone(), |_| {}).await
}

/// Starts another node over the same database as `other`, with extra settings.
pub async fn spawn_node_with(
    other: &TestApp,
    configure: impl FnOnce(&mut Vec<(String, String)>),
) -> TestApp {
    spawn_on(other.backend, other.database_url.clone(), configure).await
}

async fn spawn_on(
    backend: Backend,
    database_url: String,
    configure: impl FnOnce(&mut Vec<(String, String)>),
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("LATCHKEY_ISSUER".to_owned(), base.clone()),
        ("LATCHKEY_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
        ("LATCHKEY_DATABASE_URL".to_owned(), database_url.clone()),
        ("LATCHKEY_ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
        ("LATCHKEY_MASTER_KEY".to_owned(), TEST_MASTER_KEY.to_owned()),
    ];
    configure(&mut env);
    // /dev/null: an empty file, so config/latchkey.toml in the working tree is not read.
    let config = Config::load_from(Some(std::path::Path::new("/dev/null")), &env)
        .expect("test configuration is valid");
    let clock = Arc::new(OffsetClock::default());
    let app = App::start(config, clock.clone(), true)
        .await
        .expect("app starts");
    let background = app.spawn_background_tasks();
    let server_app = app.clone();
    let server = tokio::spawn(async move {
        let _ = latchkey::server::serve(server_app, listener, std::future::pending()).await;
    });
    TestApp {
        base,
        app,
        clock,
        backend,
        http: no_redirect_client(false),
        database_url,
        _background: background,
        _server: server,
    }
}

/// A fresh database URL for `backend`.
pub async fn fresh_database(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            latchkey::store::testing::fresh_sqlite_path().display()
        ),
        Backend::Postgres => latchkey::store::testing::fresh_postgres_url().await,
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written to a fresh directory.
pub struct SelfSigned {
    /// The certificate file (PEM), for `LATCHKEY_TLS_CERT`.
    pub cert: std::path::PathBuf,
    /// The private key file (PEM), for `LATCHKEY_TLS_KEY`.
    pub key: std::path::PathBuf,
    /// The certificate, for a client to trust.
    pub pem: String,
    pub der: rustls::pki_types::CertificateDer<'static>,
}

/// Makes a `SelfSigned` certificate in a directory of its own.
pub fn self_signed_certificate() -> SelfSigned {
    let dir = latchkey::store::testing::fresh_sqlite_path()
        .parent()
        .unwrap()
        .join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = generated.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    SelfSigned {
        cert,
        key,
        pem: cert_pem,
        der: generated.cert.der().clone(),
    }
}

/// A reqwest client that does not follow redirects; with `cookies`, it keeps a cookie jar
/// like a browser.
pub fn no_redirect_client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn discovery(&self) -> Value {
        self.http
            .get(self.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The URL discovery advertises under `key` (e.g. `revocation_endpoint`).
    pub async fn endpoint(&self, key: &str) -> String {
        self.discovery().await[key].as_str().unwrap().to_owned()
    }

    /// Registers a client and returns the registration response (with secret when
    /// confidential). Panics unless 201.
    pub async fn create_client(&self, metadata: Value) -> Value {
        let (status, body) = self
            .admin(reqwest::Method::POST, "/admin/clients", Some(&metadata))
            .await;
        assert_eq!(status, 201, "client registration failed: {body}");
        body
    }

    /// A confidential web client allowed the code and refresh grants.
    pub async fn create_web_client(&self) -> Value {
        self.create_client(json!({
            "client_name": "Test Web App",
            "redirect_uris": ["https://app.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile email phone address offline_access api.read api.write",
        }))
        .await
    }

    /// Creates a user with `PASSWORD`; returns the admin API's answer (with `sub`).
    pub async fn create_user(&self, username: &str) -> Value {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/admin/users",
                Some(&json!({
                    "username": username,
                    "password": PASSWORD,
                    "email": format!("{username}@example.test"),
                    "email_verified": true,
                    "name": format!("{username} Example"),
                    "given_name": username,
                    "family_name": "Example",
                    "phone_number": "+1 555 0100",
                })),
            )
            .await;
        assert_eq!(status, 201, "user creation failed: {body}");
        body
    }
}
