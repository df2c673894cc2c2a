//! `GET|POST /userinfo` (OpenID Connect Core §5.3) with RFC 6750 bearer tokens: in the
//! `Authorization` header, or in a form body, never both.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::error::BearerError;
use crate::http::form::{form_params, is_form};
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::token::access::active_access_token;

pub async fn get(State(app): State<App>, headers: HeaderMap) -> Response {
    respond(&app, bearer_from_header(&headers), None).await
}

pub async fn post(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let from_body = if is_form(&headers) && !body.is_empty() {
        match form_params(&headers, &body) {
            Ok(p) => p.get("access_token").map(str::to_owned),
            Err(e) => return bearer_error(e, false),
        }
    } else {
        None
    };
    respond(&app, bearer_from_header(&headers), from_body).await
}

/// `Some(Ok(token))` for `Authorization: Bearer <token>`, `Some(Err(()))` for another or a
/// malformed scheme, `None` without the header.
fn bearer_from_header(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(text) = value.to_str() else {
        return Some(Err(()));
    };
    match text.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Some(Ok(token.trim().to_owned()))
        }
        _ => Some(Err(())),
    }
}

fn bearer_error(error: OAuthError, token_sent: bool) -> Response {
    BearerError { error, token_sent }.into_response()
}

async fn respond(app: &App, header: Option<Result<String, ()>>, body: Option<String>) -> Response {
    let token = match (header, body) {
        (Some(_), Some(_)) => {
            return bearer_error(
                OAuthError::invalid_request("send the access token in one place only"),
                true,
            );
        }
        (Some(Err(())), None) => {
            return bearer_error(
                OAuthError::invalid_request("the Authorization header must use the Bearer scheme"),
                true,
            );
        }
        (Some(Ok(t)), None) | (None, Some(t)) => t,
        (None, None) => {
            return bearer_error(
                OAuthError::new(ErrorCode::InvalidToken, "an access token is required"),
                false,
            );
        }
    };
    let invalid = || {
        bearer_error(
            OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token is invalid, expired or revoked",
            ),
            true,
        )
    };
    let claims = match active_access_token(app, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => return invalid(),
        Err(e) => return bearer_error(e, true),
    };
    let scope = Scope::parse_lenient(&claims.scope);
    if !scope.contains("openid") {
        return bearer_error(
            OAuthError::new(
                ErrorCode::InsufficientScope,
                "userinfo needs the openid scope",
            ),
            true,
        );
    }
    let user = match app.store.get_user(&claims.sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return invalid(),
        Err(e) => return bearer_error(e.into(), true),
    };
    let mut body = user.claims.for_scopes(&scope);
    body.insert("sub".into(), serde_json::Value::String(user.sub));
    if scope.contains("profile") {
        body.insert(
            "updated_at".into(),
            serde_json::Value::from(user.updated_at),
        );
        body.entry("preferred_username")
            .or_insert_with(|| serde_json::Value::String(user.username.clone()));
    }
    let mut response = Json(serde_json::Value::Object(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
