//! The OAuth 2.0 endpoints: authorization, token, revocation, introspection.

pub mod authorize;
pub mod device;
pub mod introspection;
pub mod par;
pub mod registration;
pub mod revocation;
pub mod token;

use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::form::form_params;
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;
use crate::protocol::form::Params;

/// The authorization endpoint: browsers navigate to it; it never answers cross-origin reads
/// (RFC 9700 §2.6: no CORS at the authorization endpoint).
pub fn authorization_router() -> Router<App> {
    Router::new().route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
}

/// The endpoints clients call directly (browser apps too, cross-origin).
/// The token endpoint, which decides per grant whether it runs to completion (`token::post`).
pub fn token_endpoint_router() -> Router<App> {
    Router::new().route(paths::TOKEN, post(token::post))
}

pub fn token_router() -> Router<App> {
    Router::new()
        .route(paths::REVOCATION, post(revocation::post))
        .route(paths::INTROSPECTION, post(introspection::post))
        .route(paths::PAR, post(par::post))
        .route(paths::DEVICE_AUTHORIZATION, post(device::post))
        .route(paths::REGISTRATION, post(registration::register))
        .route(
            "/register/{client_id}",
            get(registration::read)
                .put(registration::replace)
                .delete(registration::delete),
        )
}

/// A request of a client to the token, revocation or introspection endpoint: its form (by the
/// rules of `protocol::form`; anything else is answered as a token-endpoint error), its
/// `Authorization` header and its address.
pub struct ClientRequest {
    pub params: Params,
    pub ip: Option<IpAddr>,
    headers: HeaderMap,
}

impl ClientRequest {
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Authorization` header, when it is text.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
    }
}

impl FromRequest<App> for ClientRequest {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, app).await;
        // The headers move out (no copy); the body extractor needs none of them.
        let headers = std::mem::take(&mut parts.headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(IntoResponse::into_response)?;
        let params = form_params(&headers, &body)
            .map_err(|e| TokenEndpointError::from(e).into_response())?;
        Ok(ClientRequest {
            params,
            ip,
            headers,
        })
    }
}
