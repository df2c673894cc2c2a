//! The OAuth 2.0 endpoints: authorization, token, revocation, introspection.

pub mod authorize;
pub mod introspection;
pub mod revocation;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;
use crate::protocol::discovery::paths;

/// The authorization endpoint: browsers navigate to it; it never answers cross-origin reads
/// (RFC 9700 §2.6: no CORS at the authorization endpoint).
pub fn authorization_router() -> Router<App> {
    Router::new().route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
}

/// The endpoints clients call directly (browser apps too, cross-origin).
pub fn token_router() -> Router<App> {
    Router::new()
        .route(paths::TOKEN, post(token::post))
        .route(paths::REVOCATION, post(revocation::post))
        .route(paths::INTROSPECTION, post(introspection::post))
}
