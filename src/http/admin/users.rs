//! `/admin/users`: create, list, read, partially update (including disabling and setting a
//! password) and delete users. Bad input is `invalid_request`; a taken username `conflict`
//! (409). No answer carries a password or its hash.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, PageQuery, created, json_body, json_response, no_content, page, path_id};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::users;
use crate::protocol::ErrorCode;
use crate::protocol::admin::{
    ListResponse, TotpProvisioned, UserCreate, UserPatch, UserResponse, parse_user_create,
    parse_user_patch,
};
use crate::protocol::error::ErrorBody;

#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body(content = UserCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = UserResponse,
            headers(("Location" = String, description = "The new user's URL"))),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 409, description = "`conflict`: the username is taken", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of users", body = ListResponse<UserResponse>),
        (status = 400, description = "`invalid_request`: a bad `limit`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's subject identifier")),
    responses(
        (status = 200, description = "The user and their second factors", body = UserResponse),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    patch,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's subject identifier")),
    request_body(content(
        (UserPatch = "application/merge-patch+json"),
        (UserPatch = "application/json"),
    )),
    responses(
        (status = 200, description = "Updated", body = UserResponse),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the new username is taken", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/users/{sub}/sessions",
    tag = "users",
    params(("sub" = String, Path, description = "The user's subject identifier")),
    responses(
        (status = 204, description = "Every session ended"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's subject identifier")),
    responses(
        (status = 204, description = "Deleted, with their sessions, tokens and consents"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/users/{sub}/factors/{id}",
    tag = "users",
    params(
        ("sub" = String, Path, description = "The user's subject identifier"),
        ("id" = String, Path, description = "The factor's id, as `GET /admin/users/{sub}` lists it"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/users/{sub}/totp",
    tag = "users",
    params(("sub" = String, Path, description = "The user's subject identifier")),
    responses(
        (status = 201, description = "Provisioned; the secret is shown this once", body = TotpProvisioned,
            headers(("Location" = String, description = "The new factor's URL"))),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `POST /admin/users/{sub}/totp` → 201 `{"id", "secret", "otpauth_uri"}`, shown this once.
/// It takes no body; one that is sent must be a JSON object like every admin write's.
pub async fn provision_totp(
    _: AdminAuth,
    State(app): State<App>,
    sub: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let sub = path_id(sub)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    }
    let provisioned = users::provision_totp(&app, &sub).await?;
    Ok(created(
        &format!("/admin/users/{sub}/factors/{}", provisioned.id),
        &provisioned,
    ))
}
