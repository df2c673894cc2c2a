//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ClientRequest;
use super::token::no_store;
use crate::app::App;
use crate::token::revocation;

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    match revocation::revoke(&app, request.authorization(), &request.params, request.ip).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}
