//! Refusals are cheap: thousands of refused requests of each kind leave the database (almost)
//! as they found it. Throttled kinds are counted per address in one row, and recorded in the
//! audit log only at the first refusal of a window and at each power of ten after it; kinds
//! that are refused outright write nothing at all. Row counts of every table are read straight
//! from the database before and after each flood.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sqlx::Row;

use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp, TestClient, hidden_field, spawn_app};

both_backends!(floods_of_refused_requests_leave_bounded_rows);

/// Requests per flood.
const FLOOD: usize = 2000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;

/// Rows in every table of the app's database (migrations bookkeeping aside).
pub(crate) async fn row_counts(app: &TestApp) -> BTreeMap<String, i64> {
    let url = &app.database_url;
    let mut counts = BTreeMap::new();
    match app.backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for t in tables {
                let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                counts.insert(t, row.get::<i64, _>("n"));
            }
            pool.close().await;
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for t in tables {
                let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                counts.insert(t, row.get::<i64, _>("n"));
            }
            pool.close().await;
        }
    }
    counts
}

/// Sends `FLOOD` requests made by `request(i)`, `CONCURRENCY` at a time; returns how many got
/// each status.
pub(crate) async fn flood<F>(request: F) -> BTreeMap<u16, usize>
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (request, next) = (request.clone(), next.clone());
            tokio::spawn(async move {
                let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= FLOOD {
                        return seen;
                    }
                    let status = request(i).send().await.unwrap().status().as_u16();
                    *seen.entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for w in workers {
        for (status, n) in w.await.unwrap() {
            *all.entry(status).or_default() += n;
        }
    }
    all
}

/// Asserts that the flood grew each listed table by at most its bound, and every other table
/// not at all.
pub(crate) async fn assert_growth(
    app: &TestApp,
    before: &BTreeMap<String, i64>,
    what: &str,
    bounds: &[(&str, i64)],
) -> BTreeMap<String, i64> {
    let after = row_counts(app).await;
    for (table, rows) in &after {
        let grown = rows - before.get(table).copied().unwrap_or(0);
        let bound = bounds
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, b)| *b);
        assert!(
            grown <= bound,
            "{what}: {table} grew by {grown} rows (bound {bound}); before {before:?}, after {after:?}"
        );
    }
    after
}

async fn floods_of_refused_requests_leave_bounded_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let step = browser.authorize_for(&client, "openid").await;
    let login_page = browser.get(&step.location.unwrap()).await;
    let interaction = hidden_field(&login_page.body, "interaction").unwrap();
    let csrf = hidden_field(&login_page.body, "csrf_token").unwrap();
    let base = app.base.clone();
    let http = app.http.clone();
    let mut counts = row_counts(&app).await;

    // No admin token: counted per address, never a lock; events at 1, 10, 100, 1000.
    let (h, b) = (http.clone(), base.clone());
    let seen = flood(move |_| h.get(format!("{b}/admin/clients"))).await;
    assert_eq!(seen.get(&401), Some(&FLOOD), "{seen:?}");
    counts = assert_growth(
        &app,
        &counts,
        "admin without a token",
        &[("audit_event", 4), ("throttle", 1)],
    )
    .await;

    // Wrong client secrets for a real client: counted, locked, few events.
    let (h, b, id) = (http.clone(), base.clone(), client.client_id.clone());
    let seen = flood(move |_| {
        h.post(format!("{b}/token"))
            .basic_auth(&id, Some("not-the-secret"))
            .form(&[("grant_type", "client_credentials")])
    })
    .await;
    assert!(seen.get(&429).copied().unwrap_or(0) > FLOOD / 2, "{seen:?}");
    counts = assert_growth(
        &app,
        &counts,
        "wrong client secrets",
        &[("audit_event", 6), ("throttle", 2)],
    )
    .await;

    // Made-up client ids from one address at introspection: one counter per id counted
    // before the address locks, and few events.
    let (h, b) = (http.clone(), base.clone());
    let seen = flood(move |i| {
        h.post(format!("{b}/introspect"))
            .basic_auth(format!("made-up-client-{i}"), Some("x"))
            .form(&[("token", "x")])
    })
    .await;
    assert!(seen.get(&429).copied().unwrap_or(0) > FLOOD / 2, "{seen:?}");
    counts = assert_growth(
        &app,
        &counts,
        "made-up client ids",
        &[("audit_event", 6), ("throttle", 60)],
    )
    .await;

    // Login guesses, each for another made-up account, from one address: the address locks
    // after its free attempts; every refused guess writes nothing.
    let (h, b) = (browser.http.clone(), base.clone());
    let seen = flood(move |i| {
        h.post(format!("{b}/login")).form(&[
            ("interaction", interaction.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", &format!("nobody-{i}")),
            ("password", "a wrong guess"),
        ])
    })
    .await;
    assert!(seen.get(&429).copied().unwrap_or(0) > FLOOD / 2, "{seen:?}");
    counts = assert_growth(
        &app,
        &counts,
        "login guesses",
        &[("audit_event", 60), ("throttle", 60)],
    )
    .await;

    // Refused outright, never written: garbage codes, tokens and authorization requests.
    let (h, b, id, secret) = (
        http.clone(),
        base.clone(),
        client.client_id.clone(),
        client.secret.clone().unwrap(),
    );
    // The client's own lock from the flood above has to pass first.
    app.clock.advance(3600);
    let seen = flood(move |i| {
        h.post(format!("{b}/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &format!("not-a-code-{i}")),
                ("redirect_uri", "https://app.example.test/callback"),
            ])
    })
    .await;
    assert_eq!(seen.get(&400), Some(&FLOOD), "{seen:?}");
    counts = assert_growth(&app, &counts, "garbage codes", &[]).await;
    let (h, b) = (http.clone(), base.clone());
    let seen = flood(move |i| {
        h.get(format!("{b}/userinfo"))
            .bearer_auth(format!("e30.e30.not-a-token-{i}"))
    })
    .await;
    assert_eq!(seen.get(&401), Some(&FLOOD), "{seen:?}");
    counts = assert_growth(&app, &counts, "garbage access tokens", &[]).await;
    let (h, b) = (http.clone(), base.clone());
    let seen = flood(move |i| {
        h.get(format!(
            "{b}/authorize?response_type=code&client_id=made-up-{i}&scope=openid"
        ))
    })
    .await;
    assert_eq!(seen.get(&400), Some(&FLOOD), "{seen:?}");
    counts = assert_growth(&app, &counts, "unknown clients at /authorize", &[]).await;

    // Wrong admin tokens last (they lock this address out of the admin API).
    let (h, b) = (http.clone(), base.clone());
    let seen = flood(move |i| {
        h.post(format!("{b}/admin/users"))
            .bearer_auth(format!("wrong-admin-token-{i:05}"))
            .json(&json!({"username": "mallory", "password": "whatever-123"}))
    })
    .await;
    assert!(seen.get(&429).copied().unwrap_or(0) > FLOOD / 2, "{seen:?}");
    assert_growth(
        &app,
        &counts,
        "wrong admin tokens",
        &[("audit_event", 5), ("throttle", 1)],
    )
    .await;
}
