//! `GET|POST /userinfo` (OpenID Connect Core §5.3) with RFC 6750 bearer tokens (in the
//! `Authorization` header, or in a form body, never both) or DPoP-bound tokens (RFC 9449 §7:
//! `Authorization: DPoP` and a proof with `ath`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::crypto::constant_time_eq;
use crate::http::dpop;
use crate::http::error::BearerError;
use crate::http::form::{form_params, is_form};
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::token;
use crate::token::access::active_access_token;

pub async fn get(State(app): State<App>, headers: HeaderMap) -> Response {
    let mut response = respond(&app, "GET", &headers, None).await;
    nonce_for_dpop(&app, &headers, &mut response);
    response
}

pub async fn post(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let from_body = if is_form(&headers) && !body.is_empty() {
        match form_params(&headers, &body) {
            Ok(p) => p.get("access_token").map(str::to_owned),
            Err(e) => return bearer_error(e, false, false),
        }
    } else {
        None
    };
    let mut response = respond(&app, "POST", &headers, from_body).await;
    nonce_for_dpop(&app, &headers, &mut response);
    response
}

/// A client that sent a proof gets the current server nonce (RFC 9449 §8).
fn nonce_for_dpop(app: &App, headers: &HeaderMap, response: &mut Response) {
    if headers.contains_key(dpop::DPOP) {
        dpop::add_nonce(app, response);
    }
}

/// How the access token came in the `Authorization` header.
enum Scheme {
    /// RFC 6750 §2.1.
    Bearer(String),
    /// RFC 9449 §7.1: with a `DPoP` proof of the key the token is bound to.
    Dpop(String),
}

/// `Some(Ok(..))` for `Authorization: Bearer <token>` or `DPoP <token>`, `Some(Err(()))` for
/// another or a malformed scheme, `None` without the header.
fn token_from_header(headers: &HeaderMap) -> Option<Result<Scheme, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(text) = value.to_str() else {
        return Some(Err(()));
    };
    match text.trim().split_once(' ') {
        Some((scheme, token)) if !token.trim().is_empty() => {
            let token = token.trim().to_owned();
            if scheme.eq_ignore_ascii_case("bearer") {
                Some(Ok(Scheme::Bearer(token)))
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Some(Ok(Scheme::Dpop(token)))
            } else {
                Some(Err(()))
            }
        }
        _ => Some(Err(())),
    }
}

fn bearer_error(error: OAuthError, token_sent: bool, dpop: bool) -> Response {
    BearerError {
        error,
        token_sent,
        dpop,
    }
    .into_response()
}

async fn respond(app: &App, method: &str, headers: &HeaderMap, body: Option<String>) -> Response {
    let (token, with_dpop) = match (token_from_header(headers), body) {
        (Some(_), Some(_)) => {
            return bearer_error(
                OAuthError::invalid_request("send the access token in one place only"),
                true,
                false,
            );
        }
        (Some(Err(())), None) => {
            return bearer_error(
                OAuthError::invalid_request(
                    "the Authorization header must use the Bearer or DPoP scheme",
                ),
                true,
                false,
            );
        }
        (Some(Ok(Scheme::Bearer(t))), None) | (None, Some(t)) => (t, false),
        (Some(Ok(Scheme::Dpop(t))), None) => (t, true),
        (None, None) => {
            return bearer_error(
                OAuthError::new(ErrorCode::InvalidToken, "an access token is required"),
                false,
                false,
            );
        }
    };
    let invalid = |description: &'static str| {
        bearer_error(
            OAuthError::new(ErrorCode::InvalidToken, description),
            true,
            with_dpop,
        )
    };
    let claims = match active_access_token(app, &token).await {
        Ok(Some(c)) => c,
        Ok(None) => return invalid("the access token is invalid, expired or revoked"),
        Err(e) => return bearer_error(e, true, with_dpop),
    };
    // The binding (RFC 9449 §7): a bound token only with a proof of its key, under the DPoP
    // scheme; an unbound one never under it. The token is checked first, so that a proof is
    // spent only beside a live token.
    match (&claims.cnf, with_dpop) {
        (None, false) => {}
        (Some(_), false) => {
            return invalid(
                "this access token is bound to a DPoP key: present it with the DPoP scheme and a proof",
            );
        }
        (None, true) => return invalid("this access token is not DPoP-bound; use Bearer"),
        (Some(cnf), true) => {
            let proof = match dpop::proof(headers) {
                Ok(Some(proof)) => proof,
                Ok(None) => {
                    return bearer_error(
                        token::dpop::invalid("the DPoP scheme needs a DPoP proof header"),
                        true,
                        true,
                    );
                }
                Err(e) => return bearer_error(e, true, true),
            };
            let url = format!("{}{}", app.config.issuer, paths::USERINFO);
            let expected = token::dpop::Expected {
                method,
                url: &url,
                access_token: Some(&token),
                nonce_required: false,
            };
            match token::dpop::check(app, proof, &expected).await {
                Ok(p) if constant_time_eq(p.jkt.as_bytes(), cnf.jkt.as_bytes()) => {}
                Ok(_) => {
                    return invalid(
                        "the DPoP proof is signed with another key than the token is bound to",
                    );
                }
                Err(e) => return bearer_error(e, true, true),
            }
        }
    }
    let scope = Scope::parse_lenient(&claims.scope);
    if !scope.contains("openid") {
        return bearer_error(
            OAuthError::new(
                ErrorCode::InsufficientScope,
                "userinfo needs the openid scope",
            ),
            true,
            with_dpop,
        );
    }
    let user = match app.store.get_user(&claims.sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return invalid("the access token is invalid, expired or revoked"),
        Err(e) => return bearer_error(e.into(), true, with_dpop),
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
