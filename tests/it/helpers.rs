//! `spawn_app`: the real server on a random loopback port, over a fresh database (a new
//! SQLite file, or a new Postgres database), with typed helpers to drive it over HTTP.

use std::sync::Arc;

use latchkey::app::{App, BackgroundTasks};
use latchkey::clock::OffsetClock;
use latchkey::config::Config;
use serde_json::{Value, json};

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
    let database_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            latchkey::store::testing::fresh_sqlite_path().display()
        ),
        Backend::Postgres => latchkey::store::testing::fresh_postgres_url().await,
    };
    spawn_on(backend, database_url, configure).await
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
        (
            "LATCHKEY_MASTER_KEY".to_owned(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
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

    /// POST /admin/clients with the admin token; returns (status, body).
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// PATCH with the admin token; returns (status, body).
    pub async fn admin_patch(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers a client and returns the registration response (with secret when
    /// confidential). Panics unless 201.
    pub async fn create_client(&self, metadata: Value) -> Value {
        let (status, body) = self.admin_post("/admin/clients", &metadata).await;
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
            .admin_post(
                "/admin/users",
                &json!({
                    "username": username,
                    "password": PASSWORD,
                    "email": format!("{username}@example.test"),
                    "email_verified": true,
                    "name": format!("{username} Example"),
                    "given_name": username,
                    "family_name": "Example",
                    "phone_number": "+1 555 0100",
                }),
            )
            .await;
        assert_eq!(status, 201, "user creation failed: {body}");
        body
    }
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = latchkey::crypto::random_token(48);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of a hidden input in a rendered form.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&#x2b;", "+")
            .replace("&#43;", "+"),
    )
}

/// Query parameters of a URL as a map.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let parsed = url::Url::parse(url).unwrap();
    parsed.query_pairs().into_owned().collect()
}

/// A browser: keeps cookies, does not follow redirects, so every hop can be checked.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub http: reqwest::Client,
    /// The browser's cookies (cookies ignore ports, so they hold for every node on
    /// 127.0.0.1).
    pub jar: Arc<reqwest::cookie::Jar>,
}

pub struct Step {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Browser { app, http, jar }
    }

    /// The value of the cookie `name` this browser would send to the app.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = url::Url::parse(&self.app.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    async fn step(response: reqwest::Response) -> Step {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Step {
            status,
            location,
            body: response.text().await.unwrap(),
            headers,
        }
    }

    pub async fn get(&self, url: &str) -> Step {
        let url = if url.starts_with('/') {
            self.app.url(url)
        } else {
            url.to_owned()
        };
        Self::step(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Step {
        Self::step(
            self.http
                .post(self.app.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET /authorize with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Step {
        let query = serde_urlencoded::to_string(params).unwrap();
        self.get(&format!("/authorize?{query}")).await
    }

    /// Submits the login form found at `login_url`.
    pub async fn login(&self, login_url: &str, username: &str, password: &str) -> Step {
        let page = self.get(login_url).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let interaction = hidden_field(&page.body, "interaction").expect("interaction field");
        let csrf = hidden_field(&page.body, "csrf_token").expect("csrf field");
        self.post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits a login form already loaded (its page body) with these credentials.
    pub async fn login_form_post(&self, page: &str, username: &str, password: &str) -> Step {
        let interaction = hidden_field(page, "interaction").expect("interaction field");
        let csrf = hidden_field(page, "csrf_token").expect("csrf field");
        self.post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Loads the consent page at `consent_url` and answers it.
    pub async fn consent(&self, consent_url: &str, decision: &str) -> (Step, Step) {
        let page = self.get(consent_url).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let interaction = hidden_field(&page.body, "interaction").expect("interaction field");
        let csrf = hidden_field(&page.body, "csrf_token").expect("csrf field");
        let answer = self
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", decision),
                ],
            )
            .await;
        (page, answer)
    }
}

/// A registered client and what a flow needs from it.
pub struct TestClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl TestClient {
    pub fn from_registration(reg: &Value) -> Self {
        TestClient {
            client_id: reg["client_id"].as_str().unwrap().to_owned(),
            secret: reg["client_secret"].as_str().map(str::to_owned),
            redirect_uri: reg["redirect_uris"][0].as_str().unwrap().to_owned(),
        }
    }
}

impl TestApp {
    /// POST /token with Basic auth when the client has a secret, else client_id in the form.
    pub async fn token(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(self.url("/token"));
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.client_id, Some(secret)),
            None => fields.push(("client_id", &client.client_id)),
        }
        let r = request.form(&fields).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    /// Runs the whole browser flow (authorize → login → consent if asked → code) and
    /// returns the query of the final redirect to the client.
    pub async fn code_flow(
        &self,
        browser: &Browser<'_>,
        client: &TestClient,
        scope: &str,
        challenge: Option<&str>,
        extra: &[(&str, &str)],
    ) -> std::collections::HashMap<String, String> {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", scope),
            ("state", "state-123"),
            ("nonce", "nonce-456"),
        ];
        if let Some(c) = challenge {
            params.push(("code_challenge", c));
            params.push(("code_challenge_method", "S256"));
        }
        params.extend_from_slice(extra);
        let mut step = browser.authorize(&params).await;
        assert_eq!(step.status, 303, "authorize: {}", step.body);
        let mut location = step.location.clone().unwrap();
        if location.starts_with("/login") {
            step = browser.login(&location, "alice", PASSWORD).await;
            assert_eq!(step.status, 303, "login: {}", step.body);
            location = step.location.clone().unwrap();
        }
        if location.starts_with("/consent") {
            let (_, answer) = browser.consent(&location, "allow").await;
            assert_eq!(answer.status, 303, "consent: {}", answer.body);
            location = answer.location.unwrap();
        }
        assert!(
            location.starts_with(&client.redirect_uri),
            "redirected to {location}"
        );
        query_of(&location)
    }
}

/// The real `latchkey serve` binary as a child process on a free loopback port, with its log
/// written to a file; killed when dropped. For tests about the process itself (logs,
/// several nodes, signals).
pub struct ServerProcess {
    pub base: String,
    pub log_path: std::path::PathBuf,
    pub child: std::process::Child,
    pub http: reqwest::Client,
}

pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

impl ServerProcess {
    /// Starts a node over `database_url` and waits (at most 20 s) until `/readyz` answers.
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> ServerProcess {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let dir = latchkey::store::testing::fresh_sqlite_path()
            .parent()
            .unwrap()
            .join(format!("node-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .arg("serve")
            .env_clear()
            .env("LATCHKEY_ISSUER", &base)
            .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_DATABASE_URL", database_url)
            .env("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY)
            .env("LATCHKEY_LOG", "debug")
            .env("LATCHKEY_LOG_FORMAT", "json")
            .current_dir(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let node = ServerProcess {
            base,
            log_path,
            child,
            http: no_redirect_client(false),
        };
        for _ in 0..400 {
            if let Ok(r) = node.http.get(format!("{}/readyz", node.base)).send().await
                && r.status() == 200
            {
                return node;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "node did not become ready; log: {}",
            std::fs::read_to_string(&node.log_path).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most `grace`) for the process to exit; its exit status.
    pub fn terminate(&mut self, grace: std::time::Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
