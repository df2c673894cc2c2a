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
//!
//! Each handler carries its own OpenAPI description (`#[utoipa::path]`), and the router
//! registers it at exactly the method and path that description names (`routes!`), so the
//! document at `GET /admin/openapi.json` (`openapi.rs`) describes the routes there are.

pub mod clients;
pub mod events;
pub mod initial_tokens;
pub mod keys;
pub mod openapi;
pub mod upstreams;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use crate::app::App;
use crate::http::client_ip::client_ip;
use crate::http::error::AdminError;
use crate::manage::Page;
use crate::protocol::{ErrorCode, OAuthError};

/// Every admin route with its description: the handlers of one path in one `routes!`,
/// each registered at the method and path of its `#[utoipa::path]`. Paths are relative to
/// `/admin`. Add a route here, and only here.
fn described_routes() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(clients::create, clients::list))
        .routes(routes!(clients::show, clients::replace, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(clients::logout_deliveries))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::show, users::patch, users::delete))
        .routes(routes!(users::provision_totp))
        .routes(routes!(users::delete_factor))
        .routes(routes!(users::end_sessions))
        .routes(routes!(upstreams::create, upstreams::list))
        .routes(routes!(
            upstreams::show,
            upstreams::replace,
            upstreams::delete
        ))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate))
        .routes(routes!(events::list))
        .routes(routes!(initial_tokens::create))
        .routes(routes!(openapi::document))
}

pub fn router() -> Router<App> {
    let (router, _) = described_routes().split_for_parts();
    router
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
/// it is not declared as JSON or is JSON but not an object. Every admin write takes an
/// object; an array, string, number, `true` or `null` is refused here, once for every route,
/// before a handler's parser could read a struct from an array's positions. An empty body is
/// left to the handler (some take none). What is not JSON at all is for the handler's parser
/// to refuse, with its own message.
pub(crate) fn json_body<'a>(
    headers: &HeaderMap,
    body: &'a Bytes,
    code: ErrorCode,
) -> Result<&'a [u8], AdminError> {
    if !is_json(headers) {
        return Err(AdminError(OAuthError::new(
            code,
            "the body must be JSON, sent with Content-Type: application/json",
        )));
    }
    // JSON's insignificant whitespace (RFC 8259 §2), then an object's first character.
    match body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        None | Some(b'{') => Ok(body),
        Some(_) => Err(AdminError(OAuthError::new(
            code,
            "the body must be a JSON object",
        ))),
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

/// The query of a list request: `?after=CURSOR&limit=N`. Other parameters are ignored.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

impl PageQuery {
    fn parse(query: &str) -> Result<PageQuery, OAuthError> {
        let mut page = PageQuery::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "after" => page.after = Some(value.into_owned()),
                "limit" => {
                    page.limit = Some(value.parse::<u32>().map_err(|_| {
                        OAuthError::invalid_request("limit must be a positive whole number")
                    })?)
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

fn page(query: Option<&str>) -> Result<Page, AdminError> {
    let query = PageQuery::parse(query.unwrap_or_default())?;
    Ok(Page::new(query.after, query.limit)?)
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
