//! Hostile input: well over a thousand malformed requests of assorted shapes, sent over raw TCP
//! (so that shapes no HTTP client library would produce can be sent too) at every endpoint.
//! None may be answered with a 5xx; error bodies of the JSON endpoints are JSON with an
//! `error` member; afterwards the server is healthy and still issues tokens.
//!
//! The requests come from a small deterministic generator (SplitMix64) with a fixed seed, so a
//! failure names the case number and the request, and reproduces.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Browser, ServerProcess, TestApp, TestClient, fresh_database,
    hidden_field, spawn_app,
};

both_backends!(malformed_requests_never_cause_a_server_error,);

/// The generator's seed; every case is a function of it and its number.
const SEED: u64 = 0x6c61_7463_686b_6579;
/// Requests per run (per backend).
const CASES: usize = 2000;
/// Requests in flight at once.
const CONCURRENCY: usize = 4;

// ---------------------------------------------------------------------------------------------
// A deterministic generator

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn one<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn bytes_in(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let len = self.range(lo, hi);
        self.bytes(len)
    }

    fn word_in(&mut self, lo: usize, hi: usize) -> String {
        let len = self.range(lo, hi);
        self.word(len)
    }

    /// Printable ASCII without the characters that delimit form fields.
    fn word(&mut self, len: usize) -> String {
        const CHARS: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$'()*+,;";
        (0..len).map(|_| *self.pick(CHARS) as char).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// What is sent

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Errors are JSON with an `error` member (token, revocation, introspection, userinfo,
    /// admin API, unknown paths).
    Json,
    /// HTML pages and redirects (authorize, login, consent, logout).
    Page,
    /// Documents and probes (discovery, JWKS, health, metrics, stylesheet).
    Other,
}

/// How the body is framed on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    ContentLength,
    /// No Content-Length at all.
    None,
    Chunked,
    /// Announces more than is sent, then hangs up without waiting for an answer.
    Abandon,
}

#[derive(Clone, Debug)]
struct Request {
    label: String,
    kind: Kind,
    method: String,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Lines written verbatim after the headers.
    raw_head: Vec<u8>,
    body: Vec<u8>,
    framing: Framing,
    /// Line ending of the head (a bare LF is tolerated by some parsers).
    eol: &'static str,
    /// The request is not valid HTTP/1.1 (or exceeds the server's HTTP limits), so an answer
    /// may come from the HTTP layer, not the application, or the connection may just close.
    broken_http: bool,
    /// The connection may be closed without an answer (oversized bodies: the server answers
    /// 413 before reading them, and closing an unread socket can reset it).
    may_drop: bool,
}

impl Request {
    fn new(label: impl Into<String>, kind: Kind, method: &str, target: impl Into<Vec<u8>>) -> Self {
        Request {
            label: label.into(),
            kind,
            method: method.to_owned(),
            target: target.into(),
            headers: Vec::new(),
            raw_head: Vec::new(),
            body: Vec::new(),
            framing: Framing::ContentLength,
            eol: "\r\n",
            broken_http: false,
            may_drop: false,
        }
    }

    fn header(mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn wire(&self, host: &str) -> Vec<u8> {
        let eol = self.eol.as_bytes();
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1");
        out.extend_from_slice(eol);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        };
        if !has("host") {
            out.extend_from_slice(format!("Host: {host}").as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(b"Connection: close");
        out.extend_from_slice(eol);
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(&self.raw_head);
        let declares_length = has("content-length") || has("transfer-encoding");
        let sends_body =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        match self.framing {
            Framing::ContentLength if !declares_length && sends_body => {
                out.extend_from_slice(format!("Content-Length: {}", self.body.len()).as_bytes());
                out.extend_from_slice(eol);
            }
            Framing::Chunked if !declares_length => {
                out.extend_from_slice(b"Transfer-Encoding: chunked");
                out.extend_from_slice(eol);
            }
            Framing::Abandon => {
                out.extend_from_slice(
                    format!("Content-Length: {}", self.body.len() * 2 + 10).as_bytes(),
                );
                out.extend_from_slice(eol);
            }
            _ => {}
        }
        out.extend_from_slice(eol);
        if self.framing == Framing::Chunked && !declares_length {
            for chunk in self.body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The start of a request, printable, for failure messages.
fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(400) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > 400 {
        let _ = write!(s, "… ({} bytes)", bytes.len());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// What comes back

#[derive(Debug)]
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut body = raw[head_end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = find(rest, b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = decoded;
    } else if let Some(len) = headers.get("content-length").and_then(|v| v.parse().ok()) {
        body.truncate(len);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

enum Outcome {
    Answered(Response),
    /// Closed or reset without a parsable answer.
    Dropped(String),
    /// Nothing within the time limit.
    Hung,
    /// We hung up on purpose.
    Abandoned,
}

async fn send(addr: &str, request: &Request) -> Outcome {
    let bytes = request.wire(addr);
    let Ok(stream) = TcpStream::connect(addr).await else {
        return Outcome::Dropped("connect failed".into());
    };
    let (mut reader, mut writer) = stream.into_split();
    if request.framing == Framing::Abandon {
        let _ = writer.write_all(&bytes).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        return Outcome::Abandoned;
    }
    // Write while reading: the server may answer (413) before it has read the whole body.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        let _ = writer.flush().await;
        // Keep the write half open until the answer is read: hyper treats a half-close as a
        // client that went away.
        writer
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut raw)).await;
    drop(write.await);
    match read {
        Err(_) => Outcome::Hung,
        Ok(result) => match parse_response(&raw) {
            Some(response) => Outcome::Answered(response),
            None => Outcome::Dropped(match result {
                Ok(n) => format!("closed after {n} unparsable bytes: {}", show(&raw)),
                Err(e) => format!("{e}"),
            }),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The cases

/// What the generator knows about the server under test.
struct Ctx {
    authorize: String,
    token: String,
    revoke: String,
    introspect: String,
    userinfo: String,
    end_session: String,
    jwks: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    user_sub: String,
    access_token: String,
    interaction: String,
    csrf: String,
}

fn path_of(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    parsed.path().to_owned()
}

fn pct(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A realistic parameter list for the endpoint at `path`.
fn realistic_params(rng: &mut Rng, ctx: &Ctx, path: &str) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
    if path == ctx.authorize {
        add(
            "response_type",
            rng.one(&["code", "token", "code id_token", "", "none"]),
        );
        add(
            "client_id",
            rng.one(&[ctx.client_id.as_str(), "unknown-client", ""]),
        );
        add(
            "redirect_uri",
            rng.one(&[
                ctx.redirect_uri.as_str(),
                "https://evil.example/cb",
                "http://127.0.0.1:9/cb",
                "javascript:alert(1)",
                "",
            ]),
        );
        add(
            "scope",
            rng.one(&["openid", "openid profile email offline_access", "x y z", ""]),
        );
        add("state", &rng.word(12));
        if rng.chance(50) {
            add("code_challenge", &rng.word(43));
            add("code_challenge_method", rng.one(&["S256", "plain", "S512"]));
        }
        if rng.chance(40) {
            add(
                "prompt",
                rng.one(&["none", "login", "consent", "select_account", "none login"]),
            );
        }
        if rng.chance(30) {
            add(
                "max_age",
                rng.one(&["0", "-1", "99999999999999999999", "abc"]),
            );
        }
        if rng.chance(30) {
            add(
                "id_token_hint",
                rng.one(&[
                    "a.b.c",
                    "eyJhbGciOiJub25lIn0.e30.",
                    ctx.access_token.as_str(),
                ]),
            );
        }
        if rng.chance(20) {
            add("request", "eyJhbGciOiJub25lIn0.e30.");
        }
    } else if path == ctx.token {
        let grant = rng.one(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code",
            "",
        ]);
        add("grant_type", grant);
        match grant {
            "authorization_code" => {
                add("code", &rng.word(22));
                add("redirect_uri", &ctx.redirect_uri);
                add("code_verifier", &rng.word_in(0, 130));
            }
            "refresh_token" => {
                add("refresh_token", &rng.word(22));
                add("scope", "openid");
            }
            "password" => {
                add("username", "alice");
                add("password", &rng.word(10));
            }
            _ => add(
                "scope",
                rng.one(&["api.read", "api.read api.write", "openid", "admin"]),
            ),
        }
        if rng.chance(20) {
            add(
                "resource",
                rng.one(&["https://api.example", "not a uri", "https://x#frag"]),
            );
        }
    } else if path == ctx.revoke || path == ctx.introspect {
        let junk = rng.word(30);
        add(
            "token",
            rng.one(&[ctx.access_token.as_str(), junk.as_str(), ""]),
        );
        if rng.chance(50) {
            add(
                "token_type_hint",
                rng.one(&["access_token", "refresh_token", "id_token", "x"]),
            );
        }
    } else if path == "/login" {
        add(
            "interaction",
            rng.one(&[ctx.interaction.as_str(), "nope", ""]),
        );
        add("csrf_token", rng.one(&[ctx.csrf.as_str(), "forged", ""]));
        add("username", rng.one(&["alice", "bob", "", "alice\u{0}"]));
        add("password", &rng.word(12));
    } else if path == "/consent" {
        add(
            "interaction",
            rng.one(&[ctx.interaction.as_str(), "nope", ""]),
        );
        add("csrf_token", rng.one(&[ctx.csrf.as_str(), "forged", ""]));
        add("decision", rng.one(&["allow", "deny", "maybe", ""]));
    } else if path == ctx.end_session {
        add(
            "id_token_hint",
            rng.one(&["a.b.c", ctx.access_token.as_str(), ""]),
        );
        add(
            "post_logout_redirect_uri",
            rng.one(&["https://evil.example/", ctx.redirect_uri.as_str()]),
        );
        add("client_id", &ctx.client_id);
        add("state", &rng.word(8));
    } else if path == ctx.userinfo {
        add(
            "access_token",
            rng.one(&[ctx.access_token.as_str(), "junk"]),
        );
    } else {
        add("after", &rng.word(10));
        add("limit", rng.one(&["1", "0", "-5", "100000", "x"]));
    }
    if p.is_empty() {
        p.push(("x".into(), "y".into()));
    }
    p
}

fn encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every endpoint: (label, path, the methods it serves, kind).
fn endpoints(ctx: &Ctx) -> Vec<(String, String, Vec<&'static str>, Kind)> {
    vec![
        (
            "authorize".into(),
            ctx.authorize.clone(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        ("token".into(), ctx.token.clone(), vec!["POST"], Kind::Json),
        (
            "revoke".into(),
            ctx.revoke.clone(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "introspect".into(),
            ctx.introspect.clone(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "userinfo".into(),
            ctx.userinfo.clone(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "login".into(),
            "/login".into(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "consent".into(),
            "/consent".into(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "logout".into(),
            ctx.end_session.clone(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "discovery".into(),
            "/.well-known/openid-configuration".into(),
            vec!["GET"],
            Kind::Other,
        ),
        (
            "as-metadata".into(),
            "/.well-known/oauth-authorization-server".into(),
            vec!["GET"],
            Kind::Other,
        ),
        ("jwks".into(), ctx.jwks.clone(), vec!["GET"], Kind::Other),
        (
            "healthz".into(),
            "/healthz".into(),
            vec!["GET"],
            Kind::Other,
        ),
        ("readyz".into(), "/readyz".into(), vec!["GET"], Kind::Other),
        (
            "admin-clients".into(),
            "/admin/clients".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "admin-client".into(),
            "/admin/clients/no-such-client".into(),
            vec!["GET", "PUT", "DELETE"],
            Kind::Json,
        ),
        (
            "admin-client-secret".into(),
            "/admin/clients/no-such-client/secret".into(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "admin-users".into(),
            "/admin/users".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "admin-user".into(),
            format!("/admin/users/{}", ctx.user_sub),
            vec!["GET", "PATCH"],
            Kind::Json,
        ),
        (
            "admin-keys".into(),
            "/admin/keys".into(),
            vec!["GET"],
            Kind::Json,
        ),
        (
            "admin-events".into(),
            "/admin/events".into(),
            vec!["GET"],
            Kind::Json,
        ),
        (
            "admin-unknown".into(),
            "/admin/nope".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "unknown".into(),
            "/nope".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "unknown-deep".into(),
            "/token/extra".into(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "password-change".into(),
            "/password".into(),
            vec!["POST"],
            Kind::Page,
        ),
        ("account".into(), "/account".into(), vec!["GET"], Kind::Page),
        (
            "account-login".into(),
            "/account/login".into(),
            vec!["POST"],
            Kind::Page,
        ),
        (
            "account-consents".into(),
            "/account/consents".into(),
            vec!["POST"],
            Kind::Page,
        ),
        (
            "metrics".into(),
            "/metrics".into(),
            vec!["GET"],
            Kind::Other,
        ),
        (
            "static".into(),
            "/static/latchkey.css".into(),
            vec!["GET"],
            Kind::Other,
        ),
    ]
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(rng.word_in(0, 40)),
        4 => json!(String::from_utf8_lossy(&rng.bytes_in(0, 20))),
        5 => Value::Array(
            (0..rng.range(0, 4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "redirect_uris",
                "grant_types",
                "scope",
                "client_name",
                "token_endpoint_auth_method",
                "username",
                "password",
                "email",
                "disabled",
                "name",
                "post_logout_redirect_uris",
                "response_types",
                "id_token_signed_response_alg",
                "x",
            ];
            let mut map = serde_json::Map::new();
            for _ in 0..rng.range(0, 5) {
                let key = rng.pick(&keys).to_string();
                map.insert(key, random_json(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// A JSON body for the admin API: hostile shapes and plausible-but-wrong metadata.
fn admin_json(rng: &mut Rng) -> Vec<u8> {
    match rng.below(9) {
        0 => "[".repeat(rng.range(100, 5000)).into_bytes(),
        1 => format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        2 => br#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}"#
            .to_vec(),
        3 => br#"{"client_name":"\ud800","redirect_uris":["https://a.example/\u0000"]}"#.to_vec(),
        4 => br#"{"redirect_uris":"https://a.example/cb","grant_types":7,"scope":1e999}"#.to_vec(),
        5 => json!({
            "redirect_uris": (0..rng.range(1, 300)).map(|i| format!("https://a{i}.example/cb")).collect::<Vec<_>>(),
            "client_name": "x".repeat(rng.range(0, 5000)),
        })
        .to_string()
        .into_bytes(),
        6 => json!({
            "username": rng.word_in(0, 300),
            "password": rng.word_in(0, 2000),
            "email": rng.word(20),
            "phone_number": String::from_utf8_lossy(&rng.bytes(30)),
        })
        .to_string()
        .into_bytes(),
        7 => rng.bytes_in(0, 500),
        _ => random_json(rng, 0).to_string().into_bytes(),
    }
}

fn bad_authorization(rng: &mut Rng, ctx: &Ctx) -> Vec<Vec<u8>> {
    let one = |v: &str| vec![v.as_bytes().to_vec()];
    match rng.below(16) {
        0 => one("Basic !!!not-base64!!!"),
        1 => vec![format!("Basic {}", STANDARD.encode(rng.bytes_in(0, 60))).into_bytes()],
        2 => vec![format!("Bearer {}", rng.word(10_240)).into_bytes()],
        3 => vec![
            format!("Bearer {ADMIN_TOKEN}").into_bytes(),
            b"Bearer second".to_vec(),
        ],
        4 => vec![
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", ctx.client_id, ctx.client_secret))
            )
            .into_bytes(),
            format!("Basic {}", STANDARD.encode("other:secret")).into_bytes(),
        ],
        5 => one("Basic Og=="),
        6 => one("Basic"),
        7 => one("Bearer"),
        8 => one("Bearer "),
        9 => vec![b"Basic \xff\xfe\xfd".to_vec()],
        10 => one(&format!(
            "Basic {}",
            STANDARD.encode(format!("{}:%zz%", ctx.client_id))
        )),
        11 => one(&format!(
            "Basic {}",
            STANDARD.encode(format!("%00:{}", ctx.client_secret))
        )),
        12 => one(&format!("Bearer {}.{}", ctx.access_token, "x")),
        13 => {
            // A real token with its payload swapped.
            let mut parts: Vec<String> = ctx.access_token.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","sub":"admin","exp":99999999999}"#);
            one(&format!("Bearer {}", parts.join(".")))
        }
        14 => one(&format!("Digest {}", rng.word(40))),
        _ => one(&format!("Bearer {}", "A".repeat(rng.range(1, 60_000)))),
    }
}

fn bad_cookie(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => format!("latchkey_session={}", rng.word_in(0, 4000)).into_bytes(),
        1 => b"=;;;=;latchkey_session;latchkey_session=".to_vec(),
        2 => format!(
            "latchkey_session=a; latchkey_session=b; latchkey_interaction={}",
            rng.word(30)
        )
        .into_bytes(),
        3 => {
            let mut v = b"latchkey_interaction=".to_vec();
            v.extend(rng.bytes(40).into_iter().map(|b| b | 0x80));
            v
        }
        4 => (0..300)
            .map(|i| format!("c{i}=v{i}"))
            .collect::<Vec<_>>()
            .join("; ")
            .into_bytes(),
        5 => b"__Host-latchkey_session=%ff%00; latchkey_session=\"quoted\"".to_vec(),
        6 => format!("latchkey_session={}", "x".repeat(30_000)).into_bytes(),
        _ => b"latchkey_session=\t".to_vec(),
    }
}

/// Broken HTTP: requests a strict parser refuses, answered (if at all) by the HTTP layer.
fn broken_http(rng: &mut Rng, ctx: &Ctx, target: &str) -> Request {
    let r = |label: &str, method: &str| {
        let mut req = Request::new(label, Kind::Other, method, target.as_bytes().to_vec());
        req.broken_http = true;
        req
    };
    let body = b"grant_type=client_credentials".to_vec();
    match rng.below(16) {
        0 => {
            let mut req = r("bare LF", "POST").form(body);
            req.eol = "\n";
            req.broken_http = false;
            req
        }
        1 => {
            let mut req = r("header without colon", "GET");
            req.raw_head = b"X-No-Colon\r\n".to_vec();
            req
        }
        2 => r("control byte in header", "GET").header("X-Ctl", b"a\x01b\x7f".to_vec()),
        3 => r("space in header name", "GET").header("Bad Name", "v"),
        4 => {
            let mut req = r("NUL in target", "GET");
            req.target = format!("{target}?a=\0b").into_bytes();
            req
        }
        5 => {
            let mut req = r("space in target", "GET");
            req.target = format!("{target}?a=b c").into_bytes();
            req
        }
        6 => r("CL and TE", "POST")
            .header("Content-Length", "5")
            .header("Transfer-Encoding", "chunked")
            .form(body),
        7 => r("two content lengths", "POST")
            .header("Content-Length", "29")
            .header("Content-Length", "3")
            .form(body),
        8 => r("negative content length", "POST").header("Content-Length", "-1"),
        9 => r("bad chunk size", "POST")
            .header("Transfer-Encoding", "chunked")
            .form(b"zz\r\nabc\r\n0\r\n\r\n".to_vec()),
        10 => r("obs-fold", "GET").header("X-Fold", "a\r\n b"),
        11 => r("too many headers", "GET").body(Vec::new()).headers_n(150),
        12 => r("huge header", "GET").header("X-Huge", "h".repeat(rng.range(70_000, 500_000))),
        13 => {
            let mut req = r("absolute-form target", "POST").form(body);
            req.target = format!("http://evil.example{}", ctx.token).into_bytes();
            req.broken_http = false;
            req.kind = Kind::Json;
            req
        }
        14 => {
            let mut req = r("asterisk target", "OPTIONS");
            req.target = b"*".to_vec();
            req
        }
        _ => r("empty Host", "GET").header("Host", ""),
    }
}

impl Request {
    fn headers_n(mut self, n: usize) -> Self {
        for i in 0..n {
            self.headers
                .push((format!("X-Many-{i}").into_bytes(), b"v".to_vec()));
        }
        self
    }
}

/// Case `n`: one malformed request.
fn case(rng: &mut Rng, ctx: &Ctx) -> Request {
    let all = endpoints(ctx);
    let (name, path, methods, kind) = rng.pick(&all).clone();
    let method = *rng.pick(&methods);
    let admin = path.starts_with("/admin");
    let params = realistic_params(rng, ctx, &path);
    let shape = rng.below(20);
    let base = |label: &str, method: &str, target: String| {
        Request::new(
            format!("{name} {method}: {label}"),
            kind,
            method,
            target.into_bytes(),
        )
    };
    let mut req = match shape {
        0 => base("garbage body", method, path.clone()).form(rng.bytes_in(1, 3000)),
        1 => {
            let mut body = encode(&params).into_bytes();
            let at = rng.below(body.len() + 1);
            body.splice(at..at, rng.bytes_in(1, 8).into_iter().map(|b| b | 0x80));
            base("non-UTF-8 bytes", method, path.clone()).form(body)
        }
        2 => {
            let mut r = base("oversized body", "POST", path.clone()).form(vec![
                b'a';
                rng.range(
                    64 * 1024 + 1,
                    200_000
                )
            ]);
            if rng.chance(30) {
                r.framing = Framing::Chunked;
            }
            r.may_drop = true;
            r
        }
        3 => base("huge header", method, path.clone())
            .header("X-Filler", "f".repeat(rng.range(4_000, 60_000)))
            .form(encode(&params)),
        4 => {
            let mut dup = params.clone();
            let first = params[rng.below(params.len())].clone();
            dup.push((first.0, rng.word(5)));
            if method == "GET" {
                base(
                    "duplicated parameter",
                    "GET",
                    format!("{path}?{}", encode(&dup)),
                )
            } else {
                base("duplicated parameter", method, path.clone()).form(encode(&dup))
            }
        }
        5 => {
            let ct = *rng.pick(&[
                "text/plain",
                "application/json",
                "multipart/form-data; boundary=xyz",
                "application/x-www-form-urlencodedX",
                "application/x-www-form-urlencoded; charset=latin1; charset=utf-8",
                "application/*",
                "\u{7f}",
                "",
            ]);
            let mut r = base("wrong content type", "POST", path.clone())
                .header("Content-Type", ct)
                .body(encode(&params));
            // DEL is not a valid header byte: the HTTP layer refuses it.
            r.broken_http = ct == "\u{7f}";
            r
        }
        6 => {
            let mut r = base("empty body", "POST", path.clone());
            match rng.below(3) {
                0 => r = r.header("Content-Type", "application/x-www-form-urlencoded"),
                1 => r = r.header("Content-Type", "application/json"),
                _ => {}
            }
            if rng.chance(50) {
                r.framing = Framing::None;
            }
            r
        }
        7 => {
            if admin {
                base("form where JSON expected", method, path.clone())
                    .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
                    .form(encode(&params))
            } else {
                let obj: serde_json::Map<String, Value> =
                    params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                base("JSON where form expected", "POST", path.clone())
                    .json(Value::Object(obj).to_string())
            }
        }
        8 => {
            let broken = *rng.pick(&[
                "%", "%4", "%zz", "a=%", "=%E2%82", "%%%%", "a%3", "&&&=&=", "%C0%80",
            ]);
            let body = format!("{}&{broken}", encode(&params));
            if method == "GET" {
                base(
                    "truncated percent-encoding",
                    "GET",
                    format!("{path}?{body}"),
                )
            } else {
                base("truncated percent-encoding", method, path.clone()).form(body)
            }
        }
        9 => {
            let mut body = encode(&params);
            if rng.chance(50) {
                body.push_str("&nul=%00");
                base("NUL escaped", method, format!("{path}?x=%00")).form(body)
            } else {
                let mut raw = body.into_bytes();
                raw.extend_from_slice(b"&raw=a\0b");
                base("raw NUL", "POST", path.clone()).form(raw)
            }
        }
        10 => {
            let mut long = params.clone();
            let i = rng.below(long.len());
            long[i].1 = rng.word_in(8 * 1024, 60 * 1024);
            if method == "GET" && rng.chance(50) {
                base(
                    "very long value",
                    "GET",
                    format!("{path}?{}", encode(&long)),
                )
            } else {
                base("very long value", "POST", path.clone()).form(encode(&long))
            }
        }
        11 => {
            let m = *rng.pick(&[
                "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "get",
            ]);
            let mut r = base("weird method", m, path.clone()).form(encode(&params));
            if m == "OPTIONS" && rng.chance(50) {
                r = r
                    .header("Origin", "https://spa.example")
                    .header("Access-Control-Request-Method", "POST");
            }
            if m == "HEAD" {
                // A HEAD answer has no body to read past.
                r.body.clear();
            }
            r
        }
        12 => {
            let mut r = if method == "GET" {
                base(
                    "bad Authorization",
                    "GET",
                    format!("{path}?{}", encode(&params)),
                )
            } else {
                base("bad Authorization", method, path.clone()).form(encode(&params))
            };
            for value in bad_authorization(rng, ctx) {
                r = r.header("Authorization", value);
            }
            r
        }
        13 => {
            let mut r = if method == "GET" {
                base("bad cookie", "GET", format!("{path}?{}", encode(&params)))
            } else {
                base("bad cookie", method, path.clone()).form(encode(&params))
            };
            r = r.header("Cookie", bad_cookie(rng));
            if rng.chance(30) {
                r = r.header("Cookie", bad_cookie(rng));
            }
            r
        }
        14 => {
            // Plausible requests with real credentials and wrong details: the deep paths.
            let mut r = if method == "GET" {
                base("plausible", "GET", format!("{path}?{}", encode(&params)))
            } else if admin {
                base("plausible", method, path.clone()).json(admin_json(rng))
            } else {
                base("plausible", method, path.clone()).form(encode(&params))
            };
            if admin || rng.chance(20) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            } else if rng.chance(70) {
                r = r.header(
                    "Authorization",
                    format!(
                        "Basic {}",
                        STANDARD.encode(format!("{}:{}", ctx.client_id, ctx.client_secret))
                    ),
                );
            }
            r
        }
        15 => {
            let mut r = base("admin JSON", method, path.clone()).json(admin_json(rng));
            if rng.chance(75) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            }
            r
        }
        16 => {
            let junk = *rng.pick(&[
                "/%ff%fe",
                "/..%2F..%2Fetc%2Fpasswd",
                "//token",
                "/token/",
                "/authorize%00",
                "/admin/clients/%ff",
                "/admin/users/%2e%2e",
                "/admin/clients/a/b/c",
                "/admin/",
                "/admin",
                "/.well-known/",
                "/%2e%2e/admin/keys",
            ]);
            let target = if rng.chance(20) {
                format!("/{}", "p".repeat(rng.range(2_000, 20_000)))
            } else {
                junk.to_owned()
            };
            let mut r = Request::new("junk path", Kind::Other, method, target.into_bytes());
            if rng.chance(50) {
                r = r.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
            }
            r
        }
        17 => {
            let mut query = String::new();
            for _ in 0..rng.range(1, 100) {
                let _ = write!(query, "{}={}&", rng.word_in(0, 8), rng.word_in(0, 30));
            }
            base("random query", "GET", format!("{path}?{query}"))
        }
        18 => broken_http(rng, ctx, &path),
        _ => {
            let mut r = base("abandoned body", "POST", path.clone()).form(encode(&params));
            r.framing = Framing::Abandon;
            r
        }
    };
    // Without the admin token unless the shape put it there.
    if admin && shape != 7 && shape != 14 && shape != 15 && shape != 12 && rng.chance(30) {
        req = req.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    req
}

/// Statuses hyper answers with, without a body, before the application sees the request.
fn is_framework_status(status: u16) -> bool {
    matches!(status, 414 | 431)
}

/// What is wrong with one answer, if anything.
fn check(request: &Request, outcome: &Outcome) -> Option<String> {
    let response = match outcome {
        Outcome::Answered(r) => r,
        Outcome::Abandoned => return None,
        Outcome::Dropped(why) => {
            return (!request.may_drop && !request.broken_http)
                .then(|| format!("no answer: {why}"));
        }
        Outcome::Hung => return Some("no answer within 20 s".into()),
    };
    if response.status >= 500 {
        return Some(format!(
            "status {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ));
    }
    // Answers from the HTTP layer (unparsable requests, its limits: 414, 431) carry no
    // application body; every other error for a JSON endpoint, 405 and 413 included, is JSON
    // with an `error` member.
    let framework = request.broken_http || is_framework_status(response.status);
    if request.kind == Kind::Json
        && response.status >= 400
        && !framework
        && request.method != "HEAD"
    {
        let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
        let ok = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .is_some_and(Value::is_string);
        if !ok {
            return Some(format!(
                "status {} without a JSON error body (content-type {:?}): {}",
                response.status,
                response.headers.get("content-type"),
                String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
            ));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The test

async fn setup(app: &TestApp) -> Ctx {
    let discovery = app.discovery().await;
    let path = |key: &str| path_of(discovery[key].as_str().unwrap());
    let alice = app.create_user("alice").await;
    let reg = app.create_web_client().await;
    let client = TestClient::from_registration(&reg);
    let (status, body, _) = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    // A live interaction, so that login and consent requests reach their deeper checks.
    let browser = Browser::new(app);
    let step = browser.authorize_for(&client, "openid").await;
    let login = step.location.unwrap();
    let page = browser.get(&login).await;
    Ctx {
        authorize: path("authorization_endpoint"),
        token: path("token_endpoint"),
        revoke: path("revocation_endpoint"),
        introspect: path("introspection_endpoint"),
        userinfo: path("userinfo_endpoint"),
        end_session: path("end_session_endpoint"),
        jwks: path("jwks_uri"),
        client_id: client.client_id.clone(),
        client_secret: client.secret.clone().unwrap(),
        redirect_uri: client.redirect_uri.clone(),
        user_sub: alice["sub"].as_str().unwrap().to_owned(),
        access_token,
        interaction: hidden_field(&page.body, "interaction").unwrap(),
        csrf: hidden_field(&page.body, "csrf_token").unwrap(),
    }
}

async fn malformed_requests_never_cause_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let ctx = setup(&app).await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    let mut rng = Rng::new(SEED);
    let requests: Vec<Request> = (0..CASES).map(|_| case(&mut rng, &ctx)).collect();

    let mut failures = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    let mut framework_answers: BTreeMap<u16, String> = BTreeMap::new();
    for (batch_start, batch) in requests.chunks(CONCURRENCY).enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, request) in batch.iter().enumerate() {
            let n = batch_start * CONCURRENCY + i;
            let request = request.clone();
            let addr = addr.clone();
            tasks.spawn(async move {
                let outcome = send(&addr, &request).await;
                (n, request, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (n, request, outcome) = joined.unwrap();
            let shape = request.label.split(": ").nth(1).unwrap_or(&request.label);
            *shapes.entry(shape.chars().take(30).collect()).or_default() += 1;
            let key = match &outcome {
                Outcome::Answered(r) => r.status.to_string(),
                Outcome::Dropped(_) => "closed".into(),
                Outcome::Hung => "hung".into(),
                Outcome::Abandoned => "abandoned".into(),
            };
            *statuses.entry(key).or_default() += 1;
            if let Outcome::Answered(r) = &outcome
                && request.kind == Kind::Json
                && is_framework_status(r.status)
            {
                framework_answers.entry(r.status).or_insert_with(|| {
                    format!(
                        "{} → content-type {:?}, body {:?}",
                        request.label,
                        r.headers.get("content-type"),
                        String::from_utf8_lossy(&r.body[..r.body.len().min(60)])
                    )
                });
            }
            if let Some(problem) = check(&request, &outcome) {
                failures.push(format!(
                    "case {n} (seed {SEED:#x}) [{}]: {problem}\n    request: {}",
                    request.label,
                    show(&request.wire(&addr))
                ));
            }
        }
    }
    println!("{backend:?}: {CASES} hostile requests; answers {statuses:?}");
    println!("shapes: {shapes:?}");
    for (status, example) in &framework_answers {
        println!("framework answer {status} on a JSON endpoint, e.g. {example}");
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} hostile requests were mishandled:\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Still healthy, and still doing its job.
    for probe in ["/healthz", "/readyz"] {
        let r = app.http.get(app.url(probe)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{probe} after the hostile requests");
    }
    let fresh = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "After the storm",
            "redirect_uris": ["https://after.example/cb"],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "api.read",
        }))
        .await,
    );
    let (status, body, _) = app
        .token(
            &fresh,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(
        status, 200,
        "client_credentials after the hostile requests: {body}"
    );
    assert!(body["access_token"].is_string());
    let r = app
        .http
        .get(app.url(&ctx.userinfo))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 500);
    let keys = app.http.get(app.url(&ctx.jwks)).send().await.unwrap();
    assert_eq!(keys.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// X-Request-Id

/// One request over raw TCP with `Connection: close`; the raw answer.
async fn exchange_raw(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    raw
}

/// The values of `name` in the head of a raw answer, as bytes.
fn raw_header_values(raw: &[u8], name: &str) -> Vec<Vec<u8>> {
    let head = &raw[..find(raw, b"\r\n\r\n").unwrap_or(raw.len())];
    head.split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|b| *b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| line[colon + 1..].trim_ascii().to_vec())
        })
        .collect()
}

/// A client-chosen `X-Request-Id` goes into every log line of its request and back in the
/// answer, so only a well-formed one (one header, 1 to 128 characters of `[A-Za-z0-9._:-]`)
/// is kept. Anything else (too long, quotes and spaces that would forge fields in a text log,
/// tabs, bytes that are not UTF-8, two ids at once) is replaced by a fresh id: neither echoed
/// nor logged, for routed answers and for the pre-serialised documents alike. Control
/// characters and line breaks never get that far (hyper refuses the request head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_request_ids_are_kept_only_when_well_formed() {
    let database = fresh_database(Backend::Sqlite).await;
    let node = ServerProcess::start(&database, &[]).await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let request = |path: &str, ids: &[&[u8]]| {
        let mut out =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
        for id in ids {
            out.extend_from_slice(b"X-Request-Id: ");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    };
    let long = format!("forged-long-{}", "x".repeat(200));
    let hostile: Vec<(&str, Vec<&[u8]>)> = vec![
        ("too long", vec![long.as_bytes()]),
        (
            "quotes and spaces",
            vec![b"abc\" level=ERROR message=\"forged-quote".as_slice()],
        ),
        ("a tab", vec![b"forged\ttab".as_slice()]),
        ("not UTF-8", vec![b"forged-\xff\xfe-utf8".as_slice()]),
        ("an equals sign", vec![b"Root=forged-equals".as_slice()]),
        (
            "two ids",
            vec![b"forged-first".as_slice(), b"forged-second".as_slice()],
        ),
    ];
    let fresh = |id: &[u8]| {
        id.len() == 16
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    for path in ["/healthz", "/jwks"] {
        for (what, ids) in &hostile {
            let raw = exchange_raw(&addr, &request(path, ids)).await;
            assert!(
                raw.starts_with(b"HTTP/1.1 200"),
                "{what} at {path}: {}",
                show(&raw)
            );
            let echoed = raw_header_values(&raw, "x-request-id");
            assert_eq!(echoed.len(), 1, "{what} at {path}: {}", show(&raw));
            assert!(fresh(&echoed[0]), "{what} at {path}: {}", show(&echoed[0]));
            assert!(find(&raw, b"forged").is_none(), "{what} at {path} echoed");
        }
        // A control character never reaches Latchkey.
        let raw = exchange_raw(&addr, &request(path, &[b"forged\x01ctl"])).await;
        assert!(find(&raw, b"forged").is_none(), "{}", show(&raw));
        // A well-formed id is kept and echoed.
        let id = format!("lb-7f3a.node_2:req-42-{}", path.len());
        let raw = exchange_raw(&addr, &request(path, &[id.as_bytes()])).await;
        assert_eq!(
            raw_header_values(&raw, "x-request-id"),
            vec![id.as_bytes().to_vec()],
            "{}",
            show(&raw)
        );
        let max = "m".repeat(128);
        let raw = exchange_raw(&addr, &request(path, &[max.as_bytes()])).await;
        assert_eq!(
            raw_header_values(&raw, "x-request-id"),
            vec![max.into_bytes()]
        );
    }
    // The log holds the well-formed id (on the routed request's span) and nothing forged.
    let mut log = String::new();
    for _ in 0..50 {
        log = node.log();
        if log.contains("lb-7f3a.node_2:req-42-8") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("\"request_id\":\"lb-7f3a.node_2:req-42-8\""),
        "{log}"
    );
    assert!(!log.contains("forged"), "{log}");
}
