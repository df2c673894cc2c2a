//! `POST /admin/initial-access-tokens`: a token that lets clients register themselves at the
//! registration endpoint (RFC 7591 §3), `{"expires_in", "max_uses"}` → 201
//! `{"token", "expires_at", "max_uses"}`, the token shown this once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{AdminAuth, json_body, json_response};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::registration;
use crate::protocol::admin::InitialAccessTokenResponse;
use crate::protocol::error::ErrorBody;
use crate::protocol::{ErrorCode, OAuthError};

/// What the token may do: live `expires_in` seconds, register `max_uses` clients.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialAccessTokenRequest {
    expires_in: i64,
    #[serde(default = "one")]
    max_uses: i64,
}

fn one() -> i64 {
    1
}

#[utoipa::path(
    post,
    path = "/initial-access-tokens",
    tag = "registration",
    request_body(content = InitialAccessTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The token, shown this once", body = InitialAccessTokenResponse),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
    )
)]
pub async fn create(
    _: AdminAuth,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let body = json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    let request: InitialAccessTokenRequest = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_request("expected {\"expires_in\": SECONDS, \"max_uses\": N}")
    })?;
    let token =
        registration::create_initial_token(&app, request.expires_in, request.max_uses).await?;
    Ok(json_response(StatusCode::CREATED, &token))
}
