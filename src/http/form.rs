//! Reading form bodies: only `application/x-www-form-urlencoded` is accepted, and the
//! parameter rules of `protocol::form` apply.

use axum::http::{HeaderMap, header};

use crate::protocol::OAuthError;
use crate::protocol::form::Params;

/// True when the request declares a urlencoded form body (parameters such as charset may
/// follow the media type).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The parameters of a form POST, or `invalid_request`.
pub fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}
