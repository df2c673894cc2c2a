//! `/admin/keys`: the published signing keys, and rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{AdminAuth, json_response};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::keys;

/// `GET /admin/keys`: `{"keys": [{kid, alg, created_at, retired_at, active}, ...]}`.
pub async fn list(_: AdminAuth, State(app): State<App>) -> Response {
    json_response(StatusCode::OK, &keys::list(&app))
}

/// `POST /admin/keys/rotate`: a new key per algorithm; the old ones stay in JWKS until the
/// tokens they signed have expired. Answers the new key list.
pub async fn rotate(_: AdminAuth, State(app): State<App>) -> Result<Response, AdminError> {
    Ok(json_response(StatusCode::OK, &keys::rotate(&app).await?))
}
