//! The OpenID Connect endpoints: discovery, JWKS, userinfo.

pub mod userinfo;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::protocol::discovery::paths;

use super::documents::Document;

pub fn router() -> Router<App> {
    Router::new()
        .route(paths::OPENID_CONFIGURATION, get(discovery))
        .route(paths::OAUTH_AUTHORIZATION_SERVER, get(discovery))
        .route(paths::JWKS, get(jwks))
        .route(paths::USERINFO, get(userinfo::get).post(userinfo::post))
}

fn json_bytes(body: axum::body::Bytes, cache: HeaderValue) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

// A `GET` of these documents is answered ahead of the layer stack (`http::documents`); these
// handlers serve what else reaches the routes (`HEAD`), with the same bytes and headers.

async fn discovery(State(app): State<App>) -> Response {
    let (body, cache) = Document::OpenidConfiguration.body(&app);
    json_bytes(body, cache)
}

async fn jwks(State(app): State<App>) -> Response {
    let (body, cache) = Document::Jwks.body(&app);
    json_bytes(body, cache)
}
