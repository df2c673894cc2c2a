//! Several `latchkey serve` processes over one Postgres database, as a load balancer would see
//! them (`Cluster`), and a browser behind that load balancer (`Agent`) that carries its cookies
//! from node to node itself. Used by the cluster and fault tests.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};

use super::{
    Backend, PASSWORD, ServerProcess, admin_call, fresh_database, hidden_field, no_redirect_client,
    pkce_pair, query_of,
};

/// The issuer every node shares: the address a load balancer would answer on. Nodes never
/// call it; tests talk to each node's own address.
pub const ISSUER: &str = "http://localhost:8443";

/// How long a change made through one node may take to reach another: the poll interval
/// (500 ms) plus one poll's round trip, with room for a loaded CI machine.
pub const PROPAGATION_BOUND: Duration = Duration::from_secs(3);

/// Scope of the flows here: `offline_access` so that the code exchange starts a refresh family.
pub const SCOPE: &str = "openid profile email offline_access";

pub const REDIRECT_URI: &str = "https://app.example.test/callback";

/// A cluster: nodes over one database, and one HTTP client that keeps no cookies (cookies are
/// carried by `Agent` by hand, because a browser behind a load balancer sends the same
/// cookies whichever node answers, while reqwest's jar keys them by host and port).
pub struct Cluster {
    pub nodes: Vec<ServerProcess>,
    pub http: reqwest::Client,
}

impl Cluster {
    /// `n` nodes over a fresh Postgres database on the shared test server.
    pub async fn start(n: usize) -> Cluster {
        let database_url = fresh_database(Backend::Postgres).await;
        Self::start_on(&database_url, n, &[]).await
    }

    /// `n` nodes over `database_url`, each with `extra_env` on top of the shared issuer.
    pub async fn start_on(database_url: &str, n: usize, extra_env: &[(&str, &str)]) -> Cluster {
        let mut env: Vec<(&str, &str)> = vec![
            ("LATCHKEY_ISSUER", ISSUER),
            // Three nodes' pools together stay well below the shared server's connection limit.
            ("LATCHKEY_DATABASE_MAX_CONNECTIONS", "8"),
        ];
        env.extend_from_slice(extra_env);
        // The first node applies the migrations and generates the signing keys; the others
        // then start in parallel over the ready schema.
        let first = ServerProcess::start(database_url, &env).await;
        let others =
            futures_join_all((1..n).map(|_| ServerProcess::start(database_url, &env))).await;
        let mut nodes = vec![first];
        nodes.extend(others);
        Cluster {
            nodes,
            http: no_redirect_client(false),
        }
    }

    /// The node for step `i`: steps go round the nodes.
    pub fn node(&self, i: usize) -> &ServerProcess {
        &self.nodes[i % self.nodes.len()]
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("{}{}", self.node(i).base, path)
    }

    /// `admin_call` through node `i`.
    pub async fn admin(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        admin_call(&self.http, &self.node(i).base, method, path, body).await
    }

    /// Creates the user `alice` with `PASSWORD` through node `i`.
    pub async fn create_user(&self, i: usize, username: &str) -> Value {
        let (status, body) = self
            .admin(
                i,
                reqwest::Method::POST,
                "/admin/users",
                Some(&json!({
                    "username": username,
                    "password": PASSWORD,
                    "email": format!("{username}@example.test"),
                    "email_verified": true,
                    "name": format!("{username} Example"),
                })),
            )
            .await;
        assert_eq!(status, 201, "user creation: {body}");
        body
    }

    /// Registers a confidential web client (code, refresh and client_credentials grants)
    /// through node `i`.
    pub async fn create_client(&self, i: usize) -> Client {
        let (status, body) = self
            .admin(
                i,
                reqwest::Method::POST,
                "/admin/clients",
                Some(&json!({
                    "client_name": "Cluster Test App",
                    "redirect_uris": [REDIRECT_URI],
                    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "scope": "openid profile email offline_access api.read",
                })),
            )
            .await;
        assert_eq!(status, 201, "client registration: {body}");
        Client {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// POST /token on node `i` with the client's Basic credentials; (status, body).
    pub async fn token(&self, i: usize, client: &Client, form: &[(&str, &str)]) -> (u16, Value) {
        token_request(&self.http, &self.node(i).base, client, form).await
    }

    /// POST /introspect on node `i`; the `active` member.
    pub async fn is_active(&self, i: usize, client: &Client, token: &str) -> bool {
        let r = self
            .http
            .post(self.url(i, "/introspect"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "introspection on node {i}");
        let body: Value = r.json().await.unwrap();
        body["active"]
            .as_bool()
            .expect("introspection has `active`")
    }

    /// Node `i`'s JWKS.
    pub async fn jwks(&self, i: usize) -> JwkSet {
        let r = self.http.get(self.url(i, "/jwks")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Fails the test when any node's log shows a panic.
    pub fn assert_no_panic(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let log = node.log();
            assert!(
                !log.contains("panicked"),
                "node {i} panicked; its log:\n{log}"
            );
        }
    }
}

/// Runs futures concurrently and collects their outputs in order (tokio has no join_all).
pub async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

pub struct Client {
    pub id: String,
    pub secret: String,
}

pub async fn token_request(
    http: &reqwest::Client,
    base: &str,
    client: &Client,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One answer of a browser step.
pub struct Step {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A browser behind a load balancer: it keeps its cookies itself and sends them to whichever
/// node a step goes to.
pub struct Agent {
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            http: no_redirect_client(false),
            cookies: BTreeMap::new(),
        }
    }
}

impl Agent {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Step {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let r = request.send().await.unwrap();
        for set in r.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = set.to_ascii_lowercase().contains("max-age=0");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Step {
            status,
            location,
            body: r.text().await.unwrap(),
        }
    }

    /// GET `path_or_url` (a path, like a relative Location, is sent to `base`).
    pub async fn get(&mut self, base: &str, path: &str) -> Step {
        let request = self.http.get(format!("{base}{path}"));
        self.send(request).await
    }

    pub async fn post_form(&mut self, base: &str, path: &str, form: &[(&str, &str)]) -> Step {
        let request = self.http.post(format!("{base}{path}")).form(form);
        self.send(request).await
    }
}

/// The path and query of a Location, whether absolute (our issuer) or relative.
fn local_path(location: &str) -> String {
    match location.strip_prefix(ISSUER) {
        Some(rest) => rest.to_owned(),
        None => {
            assert!(location.starts_with('/'), "unexpected redirect {location}");
            location.to_owned()
        }
    }
}

/// What the browser flow hands back: the code, and the PKCE verifier for it.
pub struct Authorized {
    pub code: String,
    pub verifier: String,
}

/// The browser part of the code flow (authorize → login → consent → code), step `k` on
/// `bases[k % bases.len()]`, with PKCE. Logs in when the agent has no session and consents
/// when asked.
pub async fn browser_flow(agent: &mut Agent, bases: &[&str], client: &Client) -> Authorized {
    let mut hop = 0;
    let mut next = || {
        let base = bases[hop % bases.len()].to_owned();
        hop += 1;
        base
    };
    let (verifier, challenge) = pkce_pair();
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "cluster-state"),
        ("nonce", "cluster-nonce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let step = agent.get(&next(), &format!("/authorize?{query}")).await;
    assert_eq!(step.status, 303, "authorize: {}", step.body);
    let mut location = step.location.unwrap();
    if !location.starts_with(REDIRECT_URI) && local_path(&location).starts_with("/login") {
        let page = agent.get(&next(), &local_path(&location)).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let interaction = hidden_field(&page.body, "interaction").expect("interaction field");
        let csrf = hidden_field(&page.body, "csrf_token").expect("csrf field");
        let step = agent
            .post_form(
                &next(),
                "/login",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(step.status, 303, "login: {}", step.body);
        location = step.location.unwrap();
    }
    if !location.starts_with(REDIRECT_URI) && local_path(&location).starts_with("/consent") {
        let page = agent.get(&next(), &local_path(&location)).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let interaction = hidden_field(&page.body, "interaction").expect("interaction field");
        let csrf = hidden_field(&page.body, "csrf_token").expect("csrf field");
        let step = agent
            .post_form(
                &next(),
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert_eq!(step.status, 303, "consent: {}", step.body);
        location = step.location.unwrap();
    }
    assert!(
        location.starts_with(REDIRECT_URI),
        "expected the redirect to the client, got {location}"
    );
    let query = query_of(&location);
    assert_eq!(query["state"], "cluster-state");
    assert_eq!(query["iss"], ISSUER, "RFC 9207 iss is the shared issuer");
    Authorized {
        code: query["code"].clone(),
        verifier,
    }
}

/// The token request redeeming `authorized`.
pub fn code_form(authorized: &Authorized) -> [(&str, &str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", authorized.code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", authorized.verifier.as_str()),
    ]
}
