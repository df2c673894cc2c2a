//! The registration endpoint: dynamic client registration (RFC 7591) at `POST /register`,
//! and its management (RFC 7592) at `GET|PUT|DELETE /register/{client_id}` with the
//! registration access token. JSON in and out; errors in RFC 7591 §3.2.2's shape.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::admin::{json_body, json_response, no_content};
use crate::http::client_ip::ClientIp;
use crate::http::error::RegistrationError;
use crate::manage::registration;
use crate::protocol::admin::parse_client_registration;
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError};

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn client_id(path: Result<Path<String>, PathRejection>) -> Result<String, RegistrationError> {
    path.map(|p| p.0).map_err(|_| {
        RegistrationError(OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is not valid for this client",
        ))
    })
}

/// `POST /register` → 201 with the registration, its `registration_client_uri` and
/// `registration_access_token`.
pub async fn register(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RegistrationError> {
    let body = json_body(&headers, &body, ErrorCode::InvalidClientMetadata)
        .map_err(|e| RegistrationError(e.0))?;
    let registration = parse_client_registration(body)?;
    let registered = registration::register(&app, bearer(&headers), ip, registration).await?;
    let mut response = json_response(StatusCode::CREATED, &registered);
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{}/{}",
        paths::REGISTRATION,
        registered.client.client_id
    )) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(app): State<App>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, RegistrationError> {
    let client_id = client_id(path)?;
    let current = registration::read(&app, &client_id, bearer(&headers)).await?;
    Ok(json_response(StatusCode::OK, &current))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2).
pub async fn replace(
    State(app): State<App>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, RegistrationError> {
    let client_id = client_id(path)?;
    let body = json_body(&headers, &body, ErrorCode::InvalidClientMetadata)
        .map_err(|e| RegistrationError(e.0))?;
    let registration = parse_client_registration(body)?;
    let replaced = registration::replace(&app, &client_id, bearer(&headers), registration).await?;
    Ok(json_response(StatusCode::OK, &replaced))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3) → 204.
pub async fn delete(
    State(app): State<App>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, RegistrationError> {
    let client_id = client_id(path)?;
    registration::delete(&app, &client_id, bearer(&headers)).await?;
    Ok(no_content().into_response())
}
