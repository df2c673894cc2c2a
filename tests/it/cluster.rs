//! Three `latchkey serve` processes over one Postgres database, as a load balancer would see
//! them: every node has the same issuer, and no step of a flow needs to come back to the node
//! that started it. Shows that nodes are stateless (sessions, pending logins, codes, consents,
//! refresh-token families, revocations and signing keys live in the database), that the
//! single-use rules hold when the racing requests land on different nodes, and that key and
//! client changes reach every node within the documented bound (`app::CHANGE_POLL_INTERVAL`).
//!
//! The race scenarios are `cluster::race_*`; `tests/cluster/race_20x.sh` runs them 20 times in
//! a row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, PASSWORD, ServerProcess, fresh_database, hidden_field,
    no_redirect_client, pkce_pair, query_of,
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

    /// An admin API call through node `i`; (status, JSON body or Null).
    pub async fn admin(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(i, path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates the user `alice` with `PASSWORD` through node `i`.
    pub async fn create_user(&self, i: usize, username: &str) -> Value {
        let (status, body) = self
            .admin(
                i,
                reqwest::Method::POST,
                "/admin/users",
                Some(json!({
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
                Some(json!({
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

/// A cluster of three with a user and a client, and a code obtained through all three nodes.
async fn cluster_with_code() -> (Cluster, Client, Authorized) {
    let cluster = Cluster::start(3).await;
    cluster.create_user(0, "alice").await;
    let client = cluster.create_client(1).await;
    let bases: Vec<&str> = cluster.nodes.iter().map(|n| n.base.as_str()).collect();
    let authorized = browser_flow(&mut Agent::default(), &bases, &client).await;
    (cluster, client, authorized)
}

/// Verifies a JWT Latchkey issued against node `i`'s JWKS (signature, `iss`, `aud`); its claims.
async fn verify_with_jwks(cluster: &Cluster, i: usize, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().expect("kid");
    let jwks = cluster.jwks(i).await;
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("node {i}'s JWKS does not publish kid {kid}"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("node {i}'s JWKS does not verify the token: {e}"))
        .claims
}

/// Polls `check` until it holds or `bound` has passed; how long it took.
async fn within(bound: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_flow_with_every_step_on_another_node() {
    let cluster = Cluster::start(3).await;
    cluster.create_user(0, "alice").await;
    let client = cluster.create_client(1).await;
    let bases: Vec<&str> = cluster.nodes.iter().map(|n| n.base.as_str()).collect();
    // authorize on 0, login page on 1, login POST on 2, consent page on 0, consent POST on 1.
    let mut agent = Agent::default();
    let authorized = browser_flow(&mut agent, &bases, &client).await;
    assert!(
        agent.cookies.contains_key("latchkey_session"),
        "the login set a session cookie: {:?}",
        agent.cookies
    );

    // Code exchange on node 2.
    let (status, tokens) = cluster.token(2, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "code exchange on node 2: {tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    // Tokens from node 2 verify against every node's JWKS.
    for i in 0..3 {
        let claims = verify_with_jwks(&cluster, i, &access, &client.id).await;
        assert_eq!(claims["client_id"], client.id.as_str());
        let claims = verify_with_jwks(&cluster, i, id_token, &client.id).await;
        assert_eq!(claims["nonce"], "cluster-nonce");
    }

    // Refresh on node 0.
    let (status, refreshed) = cluster
        .token(
            0,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "refresh on node 0: {refreshed}");
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), refresh);

    // Userinfo on node 1.
    let r = cluster
        .http
        .get(cluster.url(1, "/userinfo"))
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let userinfo: Value = r.json().await.unwrap();
    let claims = verify_with_jwks(&cluster, 1, id_token, &client.id).await;
    assert_eq!(userinfo["sub"], claims["sub"]);
    assert_eq!(userinfo["email"], "alice@example.test");

    // The session made on node 2 is honoured by the others: a second authorization on node 1
    // goes straight back to the client (consent is remembered too).
    let second = browser_flow(&mut agent, &[bases[1]], &client).await;
    let (status, body) = cluster.token(0, &client, &code_form(&second)).await;
    assert_eq!(status, 200, "{body}");

    // Every node introspects every token the same way.
    for i in 0..3 {
        assert!(cluster.is_active(i, &client, &access).await, "node {i}");
        assert!(cluster.is_active(i, &client, new_access).await, "node {i}");
    }
    cluster.assert_no_panic();
}

/// 100 concurrent redemptions of one code, spread over three nodes: exactly one gets tokens;
/// the others get `invalid_grant`, and their reuse revokes what the winner got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_one_code_redeemed_on_every_node_at_once() {
    const RACERS: usize = 100;
    let (cluster, client, authorized) = cluster_with_code().await;
    let cluster = Arc::new(cluster);
    let client = Arc::new(client);
    let authorized = Arc::new(authorized);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (cluster, client, authorized, barrier) = (
                cluster.clone(),
                client.clone(),
                authorized.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                cluster.token(i, &client, &code_form(&authorized)).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            200 => winners.push(body),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("a racer got {other}: {body}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one redemption succeeds: {winners:?}"
    );
    let winner = &winners[0];
    // The losers presented a used code: the grant is revoked, on every node.
    let access = winner["access_token"].as_str().unwrap();
    for i in 0..3 {
        assert!(
            !cluster.is_active(i, &client, access).await,
            "node {i} still accepts the access token of a replayed code"
        );
    }
    let (status, body) = cluster
        .token(
            1,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", winner["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    cluster.assert_no_panic();
}

/// 50 concurrent refreshes with one refresh token over three nodes: exactly one rotates it.
/// The others present a rotated-out token, which is reuse: the whole family is revoked, so
/// afterwards every token of the family (the old refresh token, the winner's new one, and the
/// access tokens) is dead on every node. That is the defined behaviour (RFC 9700 §4.14.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_one_refresh_token_rotated_on_every_node_at_once() {
    const RACERS: usize = 50;
    let (cluster, client, authorized) = cluster_with_code().await;
    let (status, tokens) = cluster.token(0, &client, &code_form(&authorized)).await;
    assert_eq!(status, 200, "{tokens}");
    let first_access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = Arc::new(tokens["refresh_token"].as_str().unwrap().to_owned());
    let cluster = Arc::new(cluster);
    let client = Arc::new(client);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (cluster, client, refresh, barrier) = (
                cluster.clone(),
                client.clone(),
                refresh.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                cluster
                    .token(
                        i,
                        &client,
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            200 => winners.push(body),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("a racer got {other}: {body}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one rotation succeeds: {winners:?}"
    );
    let winner = &winners[0];
    let new_refresh = winner["refresh_token"].as_str().unwrap();
    let new_access = winner["access_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh.as_str());
    // The family is consistent: nothing of it works anywhere any more.
    for i in 0..3 {
        for presented in [refresh.as_str(), new_refresh] {
            let (status, body) = cluster
                .token(
                    i,
                    &client,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", presented),
                    ],
                )
                .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "node {i}: {body}"
            );
        }
        assert!(!cluster.is_active(i, &client, new_access).await, "node {i}");
        assert!(
            !cluster.is_active(i, &client, &first_access).await,
            "node {i}"
        );
    }
    cluster.assert_no_panic();
}

/// A key rotation through node A: node C publishes the new key within the bound, and tokens
/// node A signs with it verify against node C's JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_through_node_a_verifies_through_node_c() {
    let cluster = Cluster::start(3).await;
    let client = cluster.create_client(0).await;
    let (a, c) = (0, 2);
    let kids = |set: &JwkSet| -> Vec<String> {
        set.keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let before = kids(&cluster.jwks(c).await);
    let (status, body) = cluster
        .admin(a, reqwest::Method::POST, "/admin/keys/rotate", None)
        .await;
    assert!((200..300).contains(&status), "rotate: {status} {body}");
    let rotated_at = Instant::now();
    let after_a = kids(&cluster.jwks(a).await);
    let new_kids: Vec<String> = after_a
        .iter()
        .filter(|k| !before.contains(k))
        .cloned()
        .collect();
    assert!(
        !new_kids.is_empty(),
        "node A publishes the new keys at once"
    );
    let reached = within(PROPAGATION_BOUND, async || {
        let at_c = kids(&cluster.jwks(c).await);
        new_kids.iter().all(|k| at_c.contains(k))
    })
    .await
    .expect("node C publishes the new keys within the bound");
    eprintln!(
        "key rotation reached node C after {} ms (measured from the rotate response)",
        reached.as_millis()
    );
    // A token node A signs now uses a new key, and node C's JWKS verifies it.
    let (status, body) = cluster
        .token(
            a,
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert!(new_kids.contains(&kid), "node A signs with the new key");
    verify_with_jwks(&cluster, c, token, &client.id).await;
    // The retired key stays published (tokens it signed are still valid).
    let at_c = kids(&cluster.jwks(c).await);
    assert!(before.iter().all(|k| at_c.contains(k)));
    // And node C itself signs with the new key once it has reloaded.
    assert!(
        within(PROPAGATION_BOUND, async || {
            let (_, body) = cluster
                .token(c, &client, &[("grant_type", "client_credentials")])
                .await;
            let token = body["access_token"].as_str().unwrap_or_default();
            jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|h| h.kid)
                .is_some_and(|k| new_kids.contains(&k))
        })
        .await
        .is_some(),
        "node C signs with the new key"
    );
    assert!(rotated_at.elapsed() < Duration::from_secs(30));
    cluster.assert_no_panic();
}

/// A client deleted through node B is refused by node C (which had it cached) within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deleted_through_node_b_is_refused_by_node_c() {
    let cluster = Cluster::start(3).await;
    let client = cluster.create_client(0).await;
    let (b, c) = (1, 2);
    // Node C caches the client on first use.
    let (status, body) = cluster
        .token(c, &client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = cluster
        .admin(
            b,
            reqwest::Method::DELETE,
            &format!("/admin/clients/{}", client.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let took = within(PROPAGATION_BOUND, async || {
        let (status, _) = cluster
            .token(c, &client, &[("grant_type", "client_credentials")])
            .await;
        status == 401
    })
    .await
    .expect("node C refuses the deleted client within the bound");
    eprintln!(
        "client deletion reached node C after {} ms",
        took.as_millis()
    );
    // Its authorization requests get the error page, never a redirect, on every node.
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
    ])
    .unwrap();
    for i in 0..3 {
        let step = Agent::default()
            .get(&cluster.node(i).base, &format!("/authorize?{query}"))
            .await;
        assert_eq!(step.status, 400, "node {i}: {}", step.body);
        assert!(step.location.is_none());
    }
    cluster.assert_no_panic();
}
