//! `/admin/clients`: RFC 7591 registration and RFC 7592 read, replace and delete, plus
//! secret rotation. Bad input of any kind is `invalid_client_metadata` (or
//! `invalid_redirect_uri`), per RFC 7591 §3.2.2.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminAuth, PageQuery, created, json_body, json_response, no_content, page, path_id};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::clients;
use crate::protocol::ErrorCode;
use crate::protocol::admin::{
    ClientResponse, ListResponse, LogoutDeliveryList, SecretRotation, parse_client_registration,
    parse_secret_rotation,
};
use crate::protocol::client::ClientRegistration;
use crate::protocol::error::ErrorBody;

#[utoipa::path(
    post,
    path = "/clients",
    tag = "clients",
    request_body(content = ClientRegistration, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; `client_secret` is shown this once",
            body = ClientResponse,
            headers(("Location" = String, description = "The new client's URL"))),
        (status = 400, description = "`invalid_client_metadata` or `invalid_redirect_uri`", body = ErrorBody),
    )
)]
/// `POST /admin/clients` → 201 with the metadata, the id, and (confidential clients) the
/// secret, shown this once.
pub async fn create(
    _: AdminAuth,
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let body = json_body(&headers, &body, ErrorCode::InvalidClientMetadata)?;
    let registration = parse_client_registration(body)?;
    let client = clients::create(&app, registration).await?;
    Ok(created(
        &format!("/admin/clients/{}", client.client_id),
        &client,
    ))
}

#[utoipa::path(
    get,
    path = "/clients",
    tag = "clients",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of clients", body = ListResponse<ClientResponse>),
        (status = 400, description = "`invalid_request`: a bad `limit`", body = ErrorBody),
    )
)]
/// `GET /admin/clients?after=&limit=`.
pub async fn list(
    _: AdminAuth,
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let page = page(query.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &clients::list(&app, &page).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client, without its secret", body = ClientResponse),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `GET /admin/clients/{client_id}` (RFC 7592 §2.1).
pub async fn show(
    _: AdminAuth,
    State(app): State<App>,
    client_id: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let client_id = path_id(client_id)?;
    Ok(json_response(
        StatusCode::OK,
        &clients::get(&app, &client_id).await?,
    ))
}

#[utoipa::path(
    put,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body(content = ClientRegistration, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = ClientResponse),
        (status = 400, description = "`invalid_client_metadata` or `invalid_redirect_uri`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `PUT /admin/clients/{client_id}` (RFC 7592 §2.2): full replacement; never returns the
/// secret.
pub async fn replace(
    _: AdminAuth,
    State(app): State<App>,
    client_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let client_id = path_id(client_id)?;
    let body = json_body(&headers, &body, ErrorCode::InvalidClientMetadata)?;
    let registration = parse_client_registration(body)?;
    let client = clients::replace(&app, &client_id, registration).await?;
    Ok(json_response(StatusCode::OK, &client))
}

#[utoipa::path(
    delete,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted, with its tokens and consents"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `DELETE /admin/clients/{client_id}` (RFC 7592 §2.3) → 204.
pub async fn delete(
    _: AdminAuth,
    State(app): State<App>,
    client_id: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let client_id = path_id(client_id)?;
    clients::delete(&app, &client_id).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/clients/{client_id}/logout-deliveries",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The newest notifications first", body = LogoutDeliveryList),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `GET /admin/clients/{client_id}/logout-deliveries`: the newest back-channel logout
/// notifications to the client and their status.
pub async fn logout_deliveries(
    _: AdminAuth,
    State(app): State<App>,
    client_id: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let client_id = path_id(client_id)?;
    Ok(json_response(
        StatusCode::OK,
        &clients::logout_deliveries(&app, &client_id).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/clients/{client_id}/secret",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body(content = Option<SecretRotation>, content_type = "application/json",
        description = "Optional: without a body the old secret stops at once"),
    responses(
        (status = 200, description = "The new secret, shown this once", body = ClientResponse),
        (status = 400, description = "`invalid_request`: bad durations, or a client without a secret", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
/// `POST /admin/clients/{client_id}/secret` → 200 with the new secret, shown this once. An
/// optional JSON body `{"previous_secret_valid_for": SECONDS, "secret_valid_for": SECONDS}`
/// keeps the old secret working that long and limits the new one's life.
pub async fn rotate_secret(
    _: AdminAuth,
    State(app): State<App>,
    client_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let client_id = path_id(client_id)?;
    let rotation = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        parse_secret_rotation(json_body(&headers, &body, ErrorCode::InvalidRequest)?)?
    };
    Ok(json_response(
        StatusCode::OK,
        &clients::rotate_secret(&app, &client_id, rotation).await?,
    ))
}
