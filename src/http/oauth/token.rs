//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ClientRequest;
use crate::app::App;
use crate::token;

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    match token::token_request(&app, request.authorization(), &request.params, request.ip).await {
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
