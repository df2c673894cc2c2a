//! `POST /revoke` (RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::token::no_store;
use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::form::form_params;
use crate::protocol::error::TokenEndpointError;
use crate::token::revocation;

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
    match revocation::revoke(&app, authorization, &params, ip).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}
