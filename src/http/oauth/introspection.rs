//! `POST /introspect` (RFC 7662).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::ClientRequest;
use super::token::no_store;
use crate::app::App;
use crate::token::introspection;

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    match introspection::introspect(&app, request.authorization(), &request.params, request.ip)
        .await
    {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => e.into_response(),
    }
}
