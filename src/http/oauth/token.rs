//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::form::form_params;
use crate::protocol::error::TokenEndpointError;
use crate::token;

pub async fn post(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return TokenEndpointError::from(e).into_response(),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match token::token_request(&app, authorization, &params, ip).await {
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => e.into_response(),
    }
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
