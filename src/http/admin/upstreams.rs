//! `/admin/upstreams`: register, list, read, replace and delete upstream identity providers.
//! Bad input is `invalid_request`; a taken id `conflict` (409). No answer carries the
//! client secret.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, PageQuery, created, json_body, json_response, no_content, page, path_id};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::upstreams;
use crate::protocol::ErrorCode;
use crate::protocol::admin::ListResponse;
use crate::protocol::error::ErrorBody;
use crate::protocol::upstream::{UpstreamResponse, UpstreamWrite, parse_upstream};

#[utoipa::path(
    post,
    path = "/upstreams",
    tag = "upstreams",
    request_body(content = UpstreamWrite, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; register `redirect_uri` at the upstream",
            body = UpstreamResponse,
            headers(("Location" = String, description = "The new upstream's URL"))),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 409, description = "`conflict`: the id is taken", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/upstreams",
    tag = "upstreams",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of upstreams", body = ListResponse<UpstreamResponse>),
        (status = 400, description = "`invalid_request`: a bad `limit`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream's id")),
    responses(
        (status = 200, description = "The upstream", body = UpstreamResponse),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    put,
    path = "/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream's id")),
    request_body(content = UpstreamWrite, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = UpstreamResponse),
        (status = 400, description = "`invalid_request` (also when the body's `id` is not the path's)",
            body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/upstreams/{id}",
    tag = "upstreams",
    params(("id" = String, Path, description = "The upstream's id")),
    responses(
        (status = 204, description = "Deleted, with the identities linked through it"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
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
