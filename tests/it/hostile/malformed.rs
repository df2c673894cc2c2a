//! Well over a thousand malformed requests (`cases`), sent over raw TCP (`wire`) at every
//! endpoint: none may be answered with a 5xx; error bodies of the JSON endpoints are JSON with
//! an `error` member; afterwards the server is healthy and still issues tokens.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cases::case;
use super::rng::Rng;
use super::targets::{Ctx, path_of};
use super::wire::{Kind, Outcome, Request, send, show};
use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp, TestClient, hidden_field, spawn_app};

both_backends!(malformed_requests_never_cause_a_server_error,);

/// The generator's seed; every case is a function of it and its number.
const SEED: u64 = 0x6c61_7463_686b_6579;
/// Requests per run (per backend).
const CASES: usize = 2000;
/// Requests in flight at once.
const CONCURRENCY: usize = 4;

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
