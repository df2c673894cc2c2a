//! `/admin/users`: create, list, read, partially update (including disabling and setting a
//! password) and delete users. Bad input is `invalid_request`; a taken username `conflict`
//! (409). No answer carries a password or its hash.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, created, json_body, json_response, no_content, page, path_id};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::users;
use crate::protocol::ErrorCode;
use crate::protocol::admin::{parse_user_create, parse_user_patch};

/// `POST /admin/users` → 201 with the user and its `sub`.
pub async fn create(
    _: AdminAuth,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let body = json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    let request = parse_user_create(body)?;
    let user = users::create(&app, request).await?;
    Ok(created(&format!("/admin/users/{}", user.sub), &user))
}

/// `GET /admin/users?after=&limit=`.
pub async fn list(
    _: AdminAuth,
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let page = page(query.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &users::list(&app, &page).await?,
    ))
}

/// `GET /admin/users/{sub}`.
pub async fn show(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    Ok(json_response(
        StatusCode::OK,
        &users::get(&app, &sub).await?,
    ))
}

/// `PATCH /admin/users/{sub}`: `username`, `password`, `disabled` and claims (JSON Merge
/// Patch: `null` removes a claim). Disabling or a new password ends the user's sessions.
pub async fn patch(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    let body = json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    let request = parse_user_patch(body)?;
    Ok(json_response(
        StatusCode::OK,
        &users::patch(&app, &sub, request).await?,
    ))
}

/// `DELETE /admin/users/{sub}/sessions` → 204: ends every session of the user, and their
/// clients are notified (back-channel logout).
pub async fn end_sessions(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    users::end_sessions(&app, &sub).await?;
    Ok(no_content())
}

/// `DELETE /admin/users/{sub}` → 204.
pub async fn delete(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    users::delete(&app, &sub).await?;
    Ok(no_content())
}

/// `DELETE /admin/users/{sub}/factors/{id}` → 204.
pub async fn delete_factor(
    _: AdminAuth,
    State(app): State<App>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, AdminError> {
    let Ok(Path((sub, id))) = ids else {
        return Err(AdminError(crate::protocol::OAuthError::new(
            ErrorCode::NotFound,
            "no such resource",
        )));
    };
    users::delete_factor(&app, &sub, &id).await?;
    Ok(no_content())
}

/// `POST /admin/users/{sub}/totp` → 201 `{"id", "secret", "otpauth_uri"}`, shown this once.
pub async fn provision_totp(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    let provisioned = users::provision_totp(&app, &sub).await?;
    Ok(created(
        &format!("/admin/users/{sub}/factors/{}", provisioned.id),
        &provisioned,
    ))
}
