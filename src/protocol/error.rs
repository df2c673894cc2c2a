//! The error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
//! RFC 7591 §3.2.2, RFC 9449 §5 and OpenID Connect Core §3.1.2.6, and the error value that
//! carries them.

use std::borrow::Cow;

/// Every error code Latchkey puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    InvalidRequestUri,
    InvalidRequestObject,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    InvalidTarget,
    InvalidRedirectUri,
    InvalidClientMetadata,
    /// Too many attempts; answered with 429 and `Retry-After`.
    SlowDown,
    /// RFC 8628 §3.5: the device's user has not answered yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: `slow_down` to a device polling faster than its interval (a 400, unlike
    /// `SlowDown`, which answers a throttled request with 429).
    SlowDownPolling,
    /// RFC 8628 §3.5: the device code has expired.
    ExpiredToken,
    /// RFC 9449 §5 and §7.1: a DPoP proof is missing where required, malformed, or fails a
    /// check.
    InvalidDpopProof,
    /// RFC 9449 §8 and §9: the proof must carry a (valid, current) server nonce; the answer
    /// carries one in `DPoP-Nonce`.
    UseDpopNonce,
    /// Admin API: no such resource.
    NotFound,
    /// Admin API: the resource exists already (for example a username).
    Conflict,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::RegistrationNotSupported => "registration_not_supported",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::SlowDown | ErrorCode::SlowDownPolling => "slow_down",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
        }
    }

    /// The HTTP status for a JSON error response. Exhaustive on purpose: a new code must be
    /// given its status here.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::SlowDown => 429,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::InvalidRequest
            | ErrorCode::AuthorizationPending
            | ErrorCode::SlowDownPolling
            | ErrorCode::ExpiredToken
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::UnsupportedResponseType
            | ErrorCode::InvalidScope
            | ErrorCode::AccessDenied
            | ErrorCode::UnsupportedTokenType
            | ErrorCode::LoginRequired
            | ErrorCode::ConsentRequired
            | ErrorCode::InteractionRequired
            | ErrorCode::AccountSelectionRequired
            | ErrorCode::InvalidRequestUri
            | ErrorCode::InvalidRequestObject
            | ErrorCode::RequestNotSupported
            | ErrorCode::RequestUriNotSupported
            | ErrorCode::RegistrationNotSupported
            | ErrorCode::InvalidTarget
            | ErrorCode::InvalidRedirectUri
            | ErrorCode::InvalidClientMetadata
            // At the token endpoint (RFC 9449 §5); a resource answers them with 401 and a
            // `DPoP` challenge (`http::error::BearerError`).
            | ErrorCode::InvalidDpopProof
            | ErrorCode::UseDpopNonce => 400,
        }
    }
}

/// A protocol error: the code, a description for the client developer, and (never sent) the
/// cause behind a `server_error`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// Seconds to wait, for `slow_down` (429) answers.
    pub retry_after: Option<u64>,
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
            cause: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// An infrastructure failure: the cause is logged by the renderer, never sent.
    pub fn server_error(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: Cow::Borrowed("the server could not complete the request"),
            retry_after: None,
            cause: Some(Box::new(cause)),
        }
    }

    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Cow::Borrowed("the server is temporarily unable to handle the request"),
            retry_after: Some(1),
            cause: Some(Box::new(cause)),
        }
    }

    pub fn slow_down(retry_after: u64) -> Self {
        Self {
            code: ErrorCode::SlowDown,
            description: Cow::Borrowed("too many failed attempts; try again later"),
            retry_after: Some(retry_after),
            cause: None,
        }
    }
}

/// The JSON body of an error, per RFC 6749 §5.2 (and the admin API's, which has the same
/// shape: `not_found`, `conflict` and the RFC codes).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error code, such as `invalid_request`.
    pub error: String,
    /// What is wrong, for the developer; never a secret.
    pub error_description: String,
}

impl From<&OAuthError> for ErrorBody {
    fn from(e: &OAuthError) -> Self {
        ErrorBody {
            error: e.code.as_str().to_owned(),
            error_description: e.description.to_string(),
        }
    }
}

/// An error of the token, revocation or introspection endpoint (RFC 6749 §5.2).
/// `basic_attempted` asks the renderer for `WWW-Authenticate: Basic` on `invalid_client`.
#[derive(Debug)]
pub struct TokenEndpointError {
    pub error: OAuthError,
    pub basic_attempted: bool,
}

impl From<OAuthError> for TokenEndpointError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic_attempted: false,
        }
    }
}
