//! `POST /device_authorization` (RFC 8628 §3.1): a device asks for a device code and a user
//! code, authenticated as at the token endpoint (a public client sends its `client_id`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::ClientRequest;
use super::token::no_store;
use crate::app::App;
use crate::authorize::device;
use crate::client_auth;
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    let client = match client_auth::authenticate(
        &app,
        request.authorization(),
        &request.params,
        request.ip,
        paths::DEVICE_AUTHORIZATION,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match device::start(&app, &client, &request.params).await {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => TokenEndpointError::from(e).into_response(),
    }
}
