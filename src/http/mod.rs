//! HTTP: one route table built from per-audience routers (`oauth`, `oidc`, `ui`, `admin`,
//! health), wrapped in the layers every response needs (security headers, body limit,
//! timeout, tracing). Handlers only translate between HTTP and the protocol core.

pub mod admin;
pub mod client_ip;
pub mod cookies;
mod documents;
pub mod dpop;
pub mod error;
pub mod form;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod ui;
pub mod webauthn;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::protocol::discovery::paths;

/// Request bodies larger than this are refused with 413 before any handler reads them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer than this is answered with 503 (the database is the usual
/// cause, and its own timeout is shorter).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Content-Security-Policy for every response: scripts and styles only from our own files
/// under `/static` (never inline, never `eval`), requests from scripts only to our own
/// origin (the passkey script's JSON endpoints), no framing (the consent button cannot be
/// clickjacked). Images from our own files, the QR code's data URI, and the origin of a
/// brand logo given by URL (`ui::chrome::img_sources`).
fn content_security_policy(img_src: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src {img_src}; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The header that carries a request's id, in and out.
const REQUEST_ID: &str = "x-request-id";
/// The longest request id kept from a request; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The headers every response carries (unless its handler set them itself).
fn security_header_list(config: &crate::config::Config) -> Vec<(HeaderName, HeaderValue)> {
    let csp = content_security_policy(&ui::chrome::img_sources(config));
    let mut list = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            // The logo origin comes from a URL the url crate serialized: always a valid
            // header value; the fallback keeps the strict policy without it.
            HeaderValue::from_str(&csp).unwrap_or_else(|_| {
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
                )
            }),
        ),
    ];
    if config.issuer_is_https {
        list.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    list
}

/// `security_header_list` as a header map, for answers built outside the layer stack.
fn security_headers(config: &crate::config::Config) -> axum::http::HeaderMap {
    security_header_list(config).into_iter().collect()
}

/// The whole application.
pub fn router(app: App) -> Router {
    // Installed here so that every router (binary and tests) records into it.
    let _ = metrics::handle();
    // Browser-based clients (SPAs) call discovery, JWKS, token, revocation, introspection
    // and userinfo from their own origin; no credentials are allowed, so cookies never ride
    // along. The authorization endpoint, pages and the admin API get no CORS at all.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, dpop::DPOP])
        // A browser client reads the DPoP nonce and the resource's challenge (RFC 9449 §8).
        .expose_headers([dpop::DPOP_NONCE, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600));
    // Everything that writes to the database runs to completion even when the client hangs
    // up: axum drops a handler's future on disconnect, and a write dropped half-way (an open
    // transaction, a consumed code not yet answered) is worse than finishing it.
    let writes = oauth::authorization_router()
        // The JSON 405 is set before the CORS layer so that it wraps it too: a preflight
        // (OPTIONS) reaches the method-not-allowed fallback and must still get CORS headers.
        .merge(
            oauth::token_router()
                .method_not_allowed_fallback(method_not_allowed)
                .layer(cors.clone()),
        )
        .route(paths::LOGIN, get(ui::login::show).post(ui::login::submit))
        .route(
            paths::CONSENT,
            get(ui::consent::show).post(ui::consent::submit),
        )
        .route(
            paths::END_SESSION,
            get(ui::logout::show).post(ui::logout::submit),
        )
        .route(paths::PASSWORD, post(ui::password::submit))
        .route(
            paths::PASSWORD_FORGOT,
            get(ui::email_links::forgot_show).post(ui::email_links::forgot_submit),
        )
        .route(
            paths::PASSWORD_RESET,
            get(ui::email_links::reset_show).post(ui::email_links::reset_submit),
        )
        .route(paths::EMAIL_VERIFY, get(ui::email_links::verify))
        .route(
            paths::SIGNUP,
            get(ui::signup::show).post(ui::signup::submit),
        )
        .route(
            paths::EMAIL_PENDING,
            get(ui::email_links::pending_show).post(ui::email_links::pending_resend),
        )
        .route(
            paths::DEVICE,
            get(ui::device::show).post(ui::device::submit),
        )
        .route("/upstream/{id}/callback", get(ui::upstream::callback))
        .route(paths::ACCOUNT, get(ui::account::show))
        .route(paths::ACCOUNT_LOGIN, post(ui::account::login))
        .route(paths::ACCOUNT_CONSENTS, post(ui::account::withdraw))
        .route(
            paths::ACCOUNT_IDENTITIES_LINK,
            post(ui::account::identities::link),
        )
        .route(
            paths::ACCOUNT_IDENTITIES_UNLINK,
            post(ui::account::identities::unlink),
        )
        .route(
            paths::ACCOUNT_PASSKEYS_REMOVE,
            post(ui::account::remove_passkey),
        )
        .route(paths::ACCOUNT_PASSWORD, post(ui::account::password::change))
        .route(paths::ACCOUNT_PROFILE, post(ui::account::profile::save))
        .route(paths::ACCOUNT_EMAIL, post(ui::account::email::change))
        .route(
            paths::ACCOUNT_SESSIONS_END,
            post(ui::account::sessions::end_one),
        )
        .route(
            paths::ACCOUNT_SESSIONS_END_OTHERS,
            post(ui::account::sessions::end_others),
        )
        .route(
            paths::WEBAUTHN_REGISTER_OPTIONS,
            post(webauthn::register_options),
        )
        .route(paths::WEBAUTHN_REGISTER, post(webauthn::register))
        .route(paths::WEBAUTHN_LOGIN_OPTIONS, post(webauthn::login_options))
        .route(paths::WEBAUTHN_LOGIN, post(webauthn::login))
        .route(
            paths::LOGIN_OTP,
            get(ui::second_factor::show).post(ui::second_factor::submit),
        )
        .route(paths::LOGIN_RESUME, post(ui::second_factor::resume))
        .route(
            paths::ACCOUNT_TOTP,
            get(ui::factors::show).post(ui::factors::submit),
        )
        .route(paths::ACCOUNT_OTP, post(ui::factors::account_otp))
        .route(paths::ACCOUNT_RECOVERY_CODES, post(ui::factors::regenerate))
        .route(paths::ACCOUNT_FACTORS_REMOVE, post(ui::factors::remove))
        .route(paths::LANGUAGE, get(ui::chrome::switch))
        // Inside `run_to_completion`, which moves the request to a task of its own: the
        // page scope is a task-local and must be set on that task.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            ui::chrome::scope,
        ))
        .nest("/admin", admin::router())
        .route_layer(axum::middleware::from_fn(run_to_completion));
    let brand = &app.pages.brand;
    // A logo file, when the brand has one, is served under its content-hashed name.
    let logo = match &brand.logo_file {
        Some((path, _, _)) => Router::new().route(path, get(brand_logo)),
        None => Router::new(),
    };
    let request_id = HeaderName::from_static(REQUEST_ID);
    let router = Router::new()
        .merge(writes)
        .merge(
            oauth::token_endpoint_router()
                .method_not_allowed_fallback(method_not_allowed)
                .layer(cors.clone()),
        )
        .merge(
            oidc::router()
                .method_not_allowed_fallback(method_not_allowed)
                .layer(cors),
        )
        .route("/static/latchkey.css", get(stylesheet))
        .route("/static/form_post.js", get(form_post_script))
        .route("/static/passkeys.js", get(passkeys_script))
        .route("/static/show-password.js", get(show_password_script))
        .route(&brand.css_path, get(brand_stylesheet))
        .merge(logo)
        .route("/metrics", get(metrics::render))
        .merge(health::router())
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app.clone())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // A last resort against requests that take too long. The database answers 503 well
        // before this (its own timeout), so what is left is a client that stalls while
        // sending its body: 408, the client's problem, not the server's.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    // Outermost: every request gets an id (kept when a load balancer set a well-formed one,
    // see `request_id`), echoed in the response and recorded on the request's log span.
    // Spans carry the path only: query strings can hold hints and tokens, which must never
    // reach a log.
    // axum sets `Allow` as the innermost router finishes a response, after its layers ran;
    // wrapping the whole router as the fallback of an outer one lets a layer see it.
    // The security headers are set by `finish_response` too: one step for all of them, not
    // one layer each (every layer is cloned and dropped again for every request).
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::map_response_with_state(
            Arc::new(security_headers(&app.config)),
            finish_response,
        ))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(axum::middleware::map_request(assign_request_id))
        // Before all of it: the static documents, which need none of it (see `documents`).
        .layer(documents::StaticDocumentsLayer::new(app))
}

/// Runs the rest of the request on its own task, so that dropping this future (the client
/// went away) does not cancel the handler halfway through its writes. The task learns that
/// its client left (`accounts::password::CLIENT`): work queued only for the answer, a
/// password hash, is then skipped.
async fn run_to_completion(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    to_completion(next.run(request)).await
}

/// `answer` on its own task (see `run_to_completion`), for a handler that decides per request
/// whether it needs that.
pub(crate) async fn to_completion(
    answer: impl Future<Output = axum::response::Response> + Send + 'static,
) -> axum::response::Response {
    use crate::accounts::password::{CLIENT, ClientPresence};
    /// Marks the client gone when the request's future is dropped before it answered.
    struct LeaveOnDrop(Option<ClientPresence>);
    impl Drop for LeaveOnDrop {
        fn drop(&mut self) {
            if let Some(client) = self.0.take() {
                client.leave();
            }
        }
    }
    let client = ClientPresence::default();
    let mut on_drop = LeaveOnDrop(Some(client.clone()));
    let answer = tokio::spawn(CLIENT.scope(client, answer)).await;
    on_drop.0 = None;
    match answer {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "request handler panicked");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Gives the request the id it is known by from here on: the one it came with when that is
/// usable, else a new one (`request_id`). Every later layer (the log span, the echo in the
/// response) reads the header this sets.
async fn assign_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let id = request_id(&request);
    // `insert` replaces every value the request carried under this name.
    request
        .headers_mut()
        .insert(HeaderName::from_static(REQUEST_ID), id);
    request
}

/// Request ids: 96 random bits, base64url. They need to be unique, not secret, so the
/// thread-local generator serves (no system call per request).
fn random_request_id() -> HeaderValue {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut id = [0u8; 16];
    // 12 bytes are exactly 16 base64 characters, all of them valid in a header value.
    let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(bytes, &mut id);
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The id a request arrived with (a load balancer's), or a new one; also used for answers
/// built outside the layer stack (`documents`).
///
/// Anyone can send `X-Request-Id`, and it goes into every log line of the request and back
/// in the response. So it is kept only when there is exactly one, of 1 to
/// `MAX_REQUEST_ID_LEN` characters from `[A-Za-z0-9._:-]` (what load balancers generate:
/// UUIDs, hex, `Root=1-…` without `=`, dotted trace ids). Anything else (quotes or spaces
/// that could forge fields in a text log line, bytes that are not UTF-8, megabyte-long
/// values) is replaced by a fresh id, not quoted or truncated: a partial id would only
/// mislead whoever correlates logs with it.
fn request_id<B>(request: &axum::http::Request<B>) -> HeaderValue {
    let mut values = request.headers().get_all(REQUEST_ID).iter();
    match (values.next(), values.next()) {
        (Some(id), None) if usable_request_id(id.as_bytes()) => id.clone(),
        _ => random_request_id(),
    }
}

fn usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/latchkey.css"),
    )
}

async fn form_post_script() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/form_post.js"),
    )
}

async fn show_password_script() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/show-password.js"),
    )
}

async fn brand_stylesheet(
    axum::extract::State(app): axum::extract::State<App>,
) -> axum::response::Response {
    app.pages.brand.css_response()
}

async fn brand_logo(
    axum::extract::State(app): axum::extract::State<App>,
) -> axum::response::Response {
    app.pages.brand.logo_response()
}

async fn passkeys_script() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/passkeys.js"),
    )
}

/// The last touches every routed answer gets.
///
/// The security headers (`security_header_list`), unless the answer set one itself.
///
/// axum adds `Allow` to every answer of a method-not-allowed fallback, including the 401 an
/// unauthenticated caller gets from the admin API's; only a real 405 may list methods, so a
/// stranger cannot map the admin paths.
///
/// A body over `MAX_BODY_BYTES` is refused by the body-limit layer, or by the extractor that
/// hits the limit while reading, each with a plain-text 413; callers get the same JSON error
/// shape as for any other bad request instead. The rest of such a body is never read, so the
/// connection cannot carry another request: `Connection: close` tells the client so, instead
/// of letting it reuse a connection the server is about to close.
async fn finish_response(
    State(security): State<Arc<axum::http::HeaderMap>>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    // A handler that set one of these itself (a page with its own policy) keeps its value.
    for (name, value) in security.iter() {
        if !response.headers().contains_key(name) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let status = response.status();
    if status != axum::http::StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().remove(header::ALLOW);
    }
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let error = crate::protocol::OAuthError::invalid_request(format!(
            "the request body is larger than {} KiB",
            MAX_BODY_BYTES / 1024
        ));
        *response.body_mut() = axum::body::Body::from(error::json_body(&error));
    }
    response
}

async fn method_not_allowed() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"invalid_request","error_description":"this method is not allowed here"}"#,
    )
}

async fn not_found() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not_found","error_description":"no such endpoint"}"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(values: &[&[u8]]) -> HeaderValue {
        let mut request = axum::http::Request::new(());
        for v in values {
            request
                .headers_mut()
                .append(REQUEST_ID, HeaderValue::from_bytes(v).unwrap());
        }
        request_id(&request)
    }

    #[test]
    fn only_well_formed_request_ids_are_kept() {
        for kept in [
            &b"a"[..],
            b"0f8fad5b-d9cb-469f-a165-70867728950e",
            b"lb-7:node_2.req-42",
            &[b'x'; 128],
        ] {
            assert_eq!(id_of(&[kept]).as_bytes(), kept);
        }
        for replaced in [
            &b""[..],
            &[b'x'; 129],
            b"abc\" level=error msg=\"forged",
            b"a b",
            b"a\tb",
            b"Root=1-abc",
            b"a/b",
            b"\xff\xfe",
            "\u{e9}t\u{e9}".as_bytes(),
        ] {
            let id = id_of(&[replaced]);
            assert_ne!(id.as_bytes(), replaced);
            assert_eq!(id.len(), 16, "a fresh id");
        }
        // Two ids: which one would the logs mean? Neither.
        assert_eq!(id_of(&[b"one", b"two"]).len(), 16);
        assert_ne!(id_of(&[]), id_of(&[]), "fresh ids differ");
    }
}
