//! `/admin/upstreams`: register, list, read, replace and delete upstream identity providers.
//! Bad input is `invalid_request`; a taken id `conflict` (409). No answer carries the
//! client secret.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, created, json_body, json_response, no_content, page, path_id};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::upstreams;
use crate::protocol::ErrorCode;
use crate::protocol::upstream::parse_upstream;

/// `POST /admin/upstreams` → 201 with the upstream and its `redirect_uri`.
pub async fn create(
    _: AdminAuth,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let body = json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    let request = parse_upstream(body)?;
    let upstream = upstreams::create(&app, request).await?;
    Ok(created(
        &format!("/admin/upstreams/{}", upstream.settings.id),
        &upstream,
    ))
}

/// `GET /admin/upstreams?after=&limit=`.
pub async fn list(
    _: AdminAuth,
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let page = page(query.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &upstreams::list(&app, &page).await?,
    ))
}

/// `GET /admin/upstreams/{id}`.
pub async fn show(
    _: AdminAuth,
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let id = path_id(id)?;
    Ok(json_response(
        StatusCode::OK,
        &upstreams::get(&app, &id).await?,
    ))
}

/// `PUT /admin/upstreams/{id}`: replaces the settings; a left-out `client_secret` keeps the
/// stored one.
pub async fn replace(
    _: AdminAuth,
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let id = path_id(id)?;
    let body = json_body(&headers, &body, ErrorCode::InvalidRequest)?;
    let request = parse_upstream(body)?;
    Ok(json_response(
        StatusCode::OK,
        &upstreams::replace(&app, &id, request).await?,
    ))
}

/// `DELETE /admin/upstreams/{id}` → 204; the identities linked through it go too.
pub async fn delete(
    _: AdminAuth,
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let id = path_id(id)?;
    upstreams::delete(&app, &id).await?;
    Ok(no_content())
}
