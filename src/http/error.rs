//! Renderers for protocol errors, one per endpoint family (STYLE §4): JSON for the token,
//! revocation and introspection endpoints and the admin API, `WWW-Authenticate: Bearer` for
//! userinfo, HTML for pages. `server_error` causes are logged here and never sent.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::error::{ErrorBody, TokenEndpointError};
use crate::protocol::{ErrorCode, OAuthError};

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Logs the cause of a server-side failure (never sent to the client).
pub fn log_cause(err: &OAuthError) {
    if matches!(
        err.code,
        ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
    ) {
        match &err.cause {
            Some(cause) => {
                tracing::error!(error = %cause, code = err.code.as_str(), "request failed")
            }
            None => tracing::error!(code = err.code.as_str(), "request failed"),
        }
    }
}

pub(crate) fn json_body(err: &OAuthError) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody::from(err)).unwrap_or_default()
}

fn retry_after(headers: &mut HeaderMap, err: &OAuthError) {
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        headers.insert(header::RETRY_AFTER, v);
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        let err = self.error;
        log_cause(&err);
        let mut response = (status_of(err.code), json_body(&err)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if err.code == ErrorCode::InvalidClient {
            let challenge = if self.basic_attempted {
                "Basic realm=\"latchkey\", charset=\"UTF-8\""
            } else {
                "Basic realm=\"latchkey\""
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        retry_after(headers, &err);
        response
    }
}

/// RFC 6750 §3 error from a resource (userinfo): the code goes in `WWW-Authenticate`.
/// `token_sent` false means no credentials were presented: then the challenge carries no
/// error code (RFC 6750 §3.1). `dpop` answers with the `DPoP` scheme (RFC 9449 §7.1): the
/// request used it, or its proof was refused; a refused proof is a 401 at a resource.
pub struct BearerError {
    pub error: OAuthError,
    pub token_sent: bool,
    pub dpop: bool,
}

fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let err = self.error;
        log_cause(&err);
        let dpop_code = matches!(
            err.code,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
        );
        let (scheme, params) = if self.dpop || dpop_code {
            let algs = crate::token::dpop::ALGS.join(" ");
            ("DPoP", format!(", algs=\"{algs}\""))
        } else {
            ("Bearer", String::new())
        };
        let challenge = if self.token_sent || err.code != ErrorCode::InvalidToken {
            format!(
                "{scheme} realm=\"latchkey\"{params}, error=\"{}\", error_description=\"{}\"",
                err.code.as_str(),
                quote_safe(&err.description)
            )
        } else {
            format!("{scheme} realm=\"latchkey\"{params}")
        };
        let status = if dpop_code {
            StatusCode::UNAUTHORIZED
        } else {
            status_of(err.code)
        };
        let mut response = (status, json_body(&err)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        retry_after(headers, &err);
        response
    }
}

/// JSON error of the admin API (RFC 7591 §3.2.2 shape).
pub struct AdminError(pub OAuthError);

impl<E: Into<OAuthError>> From<E> for AdminError {
    fn from(e: E) -> Self {
        AdminError(e.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let err = self.0;
        log_cause(&err);
        let mut response = (status_of(err.code), json_body(&err)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if err.code == ErrorCode::InvalidToken {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"latchkey-admin\""),
            );
        }
        retry_after(headers, &err);
        response
    }
}

/// JSON error of the registration endpoint (RFC 7591 §3.2.2; RFC 6750 §3 for a refused
/// initial or registration access token).
pub struct RegistrationError(pub OAuthError);

impl<E: Into<OAuthError>> From<E> for RegistrationError {
    fn from(e: E) -> Self {
        RegistrationError(e.into())
    }
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        let err = self.0;
        log_cause(&err);
        let mut response = (status_of(err.code), json_body(&err)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if err.code == ErrorCode::InvalidToken {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        retry_after(headers, &err);
        response
    }
}
