//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ClientRequest;
use crate::app::App;
use crate::http::dpop;
use crate::protocol::error::TokenEndpointError;
use crate::token;

pub async fn post(State(app): State<App>, request: ClientRequest) -> Response {
    // A grant that consumes or rotates something (a code, a refresh token, a device code)
    // runs to completion even if the client hangs up, like every other writing route
    // (`http::run_to_completion`); so does an unknown one, refused without writing anyway.
    // One that writes nothing a dropped request could leave half-done
    // (`GrantTraits::writes`: client_credentials) runs inline: its own task would cost it a
    // tenth of its CPU.
    let inline = request
        .params
        .get("grant_type")
        .and_then(token::GrantType::from_name)
        .is_some_and(|grant| !grant.traits().writes);
    if inline {
        answer(app, request).await
    } else {
        crate::http::to_completion(answer(app, request)).await
    }
}

async fn answer(app: App, request: ClientRequest) -> Response {
    let proof = match dpop::proof(request.headers()) {
        Ok(proof) => proof,
        Err(e) => return TokenEndpointError::from(e).into_response(),
    };
    let mut response = match token::token_request(
        &app,
        request.authorization(),
        &request.params,
        request.ip,
        proof,
    )
    .await
    {
        Ok(response) => no_store(Json(response).into_response()),
        Err(e) => e.into_response(),
    };
    // A client using DPoP gets the current server nonce with every answer (RFC 9449 §8), the
    // `use_dpop_nonce` error included.
    if proof.is_some() {
        dpop::add_nonce(&app, &mut response);
    }
    response
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
