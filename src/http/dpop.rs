//! The HTTP side of DPoP (RFC 9449): the `DPoP` request header (one, as text) and the
//! `DPoP-Nonce` response header that hands clients the current server nonce.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use crate::app::App;
use crate::protocol::OAuthError;
use crate::token::dpop;

pub const DPOP: HeaderName = HeaderName::from_static("dpop");
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The request's proof: `None` without a `DPoP` header; refused when there are several
/// (RFC 9449 §4.3, first check) or it is not text.
pub fn proof(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(DPOP).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(dpop::invalid("send one DPoP header, not several"));
    }
    first
        .to_str()
        .map(|v| Some(v.trim()))
        .map_err(|_| dpop::invalid("the DPoP header is not a JWT"))
}

/// Adds the current server nonce (`DPoP-Nonce`), for clients to put in their next proof.
pub fn add_nonce(app: &App, response: &mut Response) {
    if let Ok(value) = HeaderValue::from_str(&app.dpop_nonces.current(app.now())) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
}
