//! Prometheus metrics at `GET /metrics`: requests by endpoint and status, latency histograms,
//! and the counters the protocol core bumps (tokens issued by grant, failed logins, reuse
//! detections), housekeeping's (rows purged per table, purge throughput, expired rows still
//! present: `telemetry::purged`, `purge_pass`, `purge_backlog`), plus database pool usage
//! read at scrape time.
//!
//! The recorder is process-global (the `metrics` facade), installed once; several `App`s in
//! one test process share it.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;

/// Request latency buckets, in seconds: from half a millisecond (a cached discovery answer)
/// to five seconds (the database timeout).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// CPU per argon2id hash, in seconds: about 15-25 ms with the default parameters.
const HASH_CPU_BUCKETS: [f64; 8] = [0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder (once) and returns its handle.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    &LATENCY_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("latchkey_password_hash_cpu_seconds".to_owned()),
                    &HASH_CPU_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Route patterns as `&'static str`, so that labelling a request allocates nothing. The set
/// is bounded by the route table (raw paths never get here).
static ROUTE_LABELS: OnceLock<RwLock<HashMap<String, &'static str>>> = OnceLock::new();

fn route_label(pattern: &str) -> &'static str {
    let labels = ROUTE_LABELS.get_or_init(Default::default);
    if let Some(label) = labels
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(pattern)
    {
        return label;
    }
    let mut labels = labels.write().unwrap_or_else(|p| p.into_inner());
    labels
        .entry(pattern.to_owned())
        .or_insert_with(|| Box::leak(pattern.to_owned().into_boxed_str()))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every routed request by its route pattern (never the raw
/// path, which would let clients create unbounded label values).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| route_label(p.as_str()));
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_str().to_owned();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("latchkey_http_requests_total", "endpoint" => endpoint, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("latchkey_http_request_duration_seconds", "endpoint" => endpoint)
        .record(elapsed);
    response
}

/// The request counter `track` bumps, for answers given ahead of it (`http::documents`).
pub fn request_counter(
    endpoint: &'static str,
    method: &'static str,
    status: &'static str,
) -> metrics::Counter {
    metrics::counter!("latchkey_http_requests_total", "endpoint" => endpoint, "method" => method, "status" => status)
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(State(app): State<App>) -> Response {
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    let pool = app.store.pool_stats();
    metrics::gauge!("latchkey_db_pool_connections").set(f64::from(pool.size));
    metrics::gauge!("latchkey_db_pool_idle_connections").set(pool.idle as f64);
    metrics::gauge!("latchkey_db_pool_max_connections")
        .set(f64::from(app.config.database_max_connections));
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
