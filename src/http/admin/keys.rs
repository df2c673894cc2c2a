//! `/admin/keys`: the published signing keys, and rotation by hand.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, json_body, json_response};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::keys;
use crate::protocol::ErrorCode;
use crate::protocol::admin::{KeyListResponse, KeyRotation, parse_key_rotation};
use crate::protocol::error::ErrorBody;

#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    responses((status = 200, description = "The published keys and their states", body = KeyListResponse))
)]
/// `GET /admin/keys`: every published key with its state (`next`, `active`, `retired`) and
/// times.
pub async fn list(_: AdminAuth, State(app): State<App>) -> Response {
    json_response(StatusCode::OK, &keys::list(&app))
}

#[utoipa::path(
    post,
    path = "/keys/rotate",
    tag = "keys",
    request_body(content = Option<KeyRotation>, content_type = "application/json",
        description = "Optional: without a body the new keys are published ahead"),
    responses(
        (status = 200, description = "The published keys, the new ones included", body = KeyListResponse),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
    )
)]
/// `POST /admin/keys/rotate`: a new key per algorithm, `next` for the publish-ahead window
/// before it signs (or signing at once with `{"now": true}`); the old ones stay in JWKS
/// until the tokens they signed have expired. Answers the new key list.
pub async fn rotate(
    _: AdminAuth,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let rotation = if body.iter().all(u8::is_ascii_whitespace) {
        KeyRotation::default()
    } else {
        parse_key_rotation(json_body(&headers, &body, ErrorCode::InvalidRequest)?)?
    };
    Ok(json_response(
        StatusCode::OK,
        &keys::rotate(&app, rotation).await?,
    ))
}
