//! `POST /par` (RFC 9126): a client pushes its authorization request and gets a `request_uri`
//! to send the browser with.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ClientRequest;
use super::token::no_store;
use crate::app::App;
use crate::authorize::par;
use crate::client_auth;
use crate::http::dpop;
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;

#[derive(Serialize)]
struct Answer {
    request_uri: String,
    expires_in: i64,
}

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    let proof = match dpop::proof(request.headers()) {
        Ok(proof) => proof,
        Err(e) => return TokenEndpointError::from(e).into_response(),
    };
    let mut response = respond(&app, &request, proof).await;
    // A client using DPoP gets the current server nonce with every answer (RFC 9449 §8).
    if proof.is_some() {
        dpop::add_nonce(&app, &mut response);
    }
    response
}

async fn respond(app: &App, request: &ClientRequest, proof: Option<&str>) -> Response {
    let client = match client_auth::authenticate(
        app,
        request.authorization(),
        &request.params,
        request.ip,
        paths::PAR,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let proof = match par::check_proof(app, proof).await {
        Ok(proof) => proof,
        Err(e) => return TokenEndpointError::from(e).into_response(),
    };
    match par::push(app, &client, &request.params, proof.as_ref()).await {
        Ok(pushed) => no_store(
            (
                StatusCode::CREATED,
                Json(Answer {
                    request_uri: pushed.request_uri,
                    expires_in: pushed.expires_in,
                }),
            )
                .into_response(),
        ),
        Err(e) => TokenEndpointError::from(e).into_response(),
    }
}
