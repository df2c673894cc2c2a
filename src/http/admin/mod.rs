//! The admin API under `/admin`: clients, users, upstream identity providers and signing
//! keys, as JSON.
//!
//! Every handler takes `AdminAuth` first, so no handler runs (and no body is read) before the
//! bearer token is checked; the fallback takes it too, so an unauthenticated caller cannot
//! even learn which admin paths exist. The router cannot hold a `from_fn_with_state` layer
//! because it is built without the state, hence an extractor rather than a middleware.
//!
//! Handlers only translate: they read the JSON body themselves (so that every malformed
//! request gets a JSON error, never axum's plain-text rejections), call `manage`, and render.

pub mod clients;
pub mod events;
pub mod initial_tokens;
pub mod keys;
pub mod upstreams;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use crate::app::App;
use crate::http::client_ip::client_ip;
use crate::http::error::AdminError;
use crate::manage::Page;
use crate::protocol::{ErrorCode, OAuthError};

pub fn router() -> Router<App> {
    Router::new()
        .route("/clients", post(clients::create).get(clients::list))
        .route(
            "/clients/{client_id}",
            get(clients::show)
                .put(clients::replace)
                .delete(clients::delete),
        )
        .route("/clients/{client_id}/secret", post(clients::rotate_secret))
        .route(
            "/clients/{client_id}/logout-deliveries",
            get(clients::logout_deliveries),
        )
        .route("/users", post(users::create).get(users::list))
        .route(
            "/users/{sub}",
            get(users::show).patch(users::patch).delete(users::delete),
        )
        .route("/users/{sub}/totp", post(users::provision_totp))
        .route("/users/{sub}/factors/{id}", delete(users::delete_factor))
        .route("/users/{sub}/sessions", delete(users::end_sessions))
        .route("/upstreams", post(upstreams::create).get(upstreams::list))
        .route(
            "/upstreams/{id}",
            get(upstreams::show)
                .put(upstreams::replace)
                .delete(upstreams::delete),
        )
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/events", get(events::list))
        .route("/initial-access-tokens", post(initial_tokens::create))
        .fallback(no_such_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Proof that the request carried `Authorization: Bearer <LATCHKEY_ADMIN_TOKEN>`.
pub struct AdminAuth(());

impl FromRequestParts<App> for AdminAuth {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let presented = bearer_token(&parts.headers);
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let ip = client_ip(&app.config, peer, &parts.headers);
        crate::manage::access::authenticate(app, presented, ip, parts.uri.path()).await?;
        Ok(AdminAuth(()))
    }
}

/// The token of an `Authorization: Bearer` header; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A known path with the wrong method: authenticated first like everything else, so that the
/// `Allow` list cannot tell an unauthenticated caller which admin paths exist.
async fn method_not_allowed(_: AdminAuth) -> Response {
    let body = r#"{"error":"invalid_request","error_description":"method not allowed on this admin endpoint"}"#;
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn no_such_endpoint(_: AdminAuth) -> AdminError {
    AdminError(OAuthError::new(
        ErrorCode::NotFound,
        "no such admin endpoint",
    ))
}

/// A JSON answer. `no-store` because some carry a client secret, and none should sit in a
/// cache anyway.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => AdminError(OAuthError::server_error(e)).into_response(),
    }
}

/// 201 with `Location` naming the new resource.
pub(crate) fn created(location: &str, body: &impl Serialize) -> Response {
    let mut response = json_response(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// True when the body is declared as JSON: `application/json` or any `application/*+json`
/// (such as `application/merge-patch+json` for PATCH), parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(media) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let media = media.trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The body of a JSON request, or `code` (the error each resource uses for bad input) when
/// it is not declared as JSON.
pub(crate) fn json_body<'a>(
    headers: &HeaderMap,
    body: &'a Bytes,
    code: ErrorCode,
) -> Result<&'a [u8], AdminError> {
    if is_json(headers) {
        Ok(body)
    } else {
        Err(AdminError(OAuthError::new(
            code,
            "the body must be JSON, sent with Content-Type: application/json",
        )))
    }
}

/// A path segment. It can only fail to decode (invalid percent-encoding or UTF-8), and no
/// such id exists, so that is a 404 in the admin API's JSON shape.
pub(crate) fn path_id(
    path: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<String, AdminError> {
    path.map(|p| p.0)
        .map_err(|_| AdminError(OAuthError::new(ErrorCode::NotFound, "no such resource")))
}

/// `?after=CURSOR&limit=N` of a list request. Other parameters are ignored.
fn page(query: Option<&str>) -> Result<Page, AdminError> {
    let mut after = None;
    let mut limit = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "after" => after = Some(value.into_owned()),
            "limit" => {
                limit = Some(value.parse::<u32>().map_err(|_| {
                    OAuthError::invalid_request("limit must be a positive whole number")
                })?)
            }
            _ => {}
        }
    }
    Ok(Page::new(after, limit)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_and_compared() {
        let h = |v| headers(header::AUTHORIZATION, v);
        assert_eq!(bearer_token(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&h("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&h("Basic abc")), None);
        assert_eq!(bearer_token(&h("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        assert!(crate::manage::access::token_matches(
            "secret-token-123",
            "secret-token-123"
        ));
        assert!(!crate::manage::access::token_matches(
            "secret-token-123",
            "secret-token-12"
        ));
        assert!(!crate::manage::access::token_matches("", ""));
    }

    #[test]
    fn json_content_types() {
        let h = |v| headers(header::CONTENT_TYPE, v);
        assert!(is_json(&h("application/json")));
        assert!(is_json(&h("Application/JSON; charset=utf-8")));
        assert!(is_json(&h("application/merge-patch+json")));
        assert!(!is_json(&h("text/plain")));
        assert!(!is_json(&h("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn list_queries() {
        assert_eq!(
            page(None).ok().unwrap().limit,
            crate::manage::DEFAULT_PAGE_SIZE
        );
        let p = page(Some("after=abc&limit=2&x=y")).ok().unwrap();
        assert_eq!((p.after.as_deref(), p.limit), (Some("abc"), 2));
        assert!(page(Some("limit=-1")).is_err());
        assert!(page(Some("limit=1000")).is_err());
    }
}
