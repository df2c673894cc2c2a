//! A validated authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1), as the
//! authorization endpoint keeps it while the user logs in and consents. Stored as JSON in the
//! interaction row, so its shape is a compatibility promise between node versions.

use serde::{Deserialize, Serialize};

/// The `prompt` values Latchkey honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// How the authorization response reaches the client (OAuth 2.0 Multiple Response Type
/// Encoding Practices §2.1; OAuth 2.0 Form Post Response Mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (the default for `response_type=code`).
    #[default]
    Query,
    /// Parameters POSTed to the redirect URI by an auto-submitting form.
    FormPost,
}

impl ResponseMode {
    /// The mode a request asked for: `None` for a value Latchkey does not serve.
    pub fn parse(value: Option<&str>) -> Option<ResponseMode> {
        match value {
            None | Some("query") => Some(ResponseMode::Query),
            Some("form_post") => Some(ResponseMode::FormPost),
            Some(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect URI the response goes to (as sent, or the single registered one).
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent; then the token request must repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    /// Interactions sealed before this field existed read as `query`.
    #[serde(default)]
    pub response_mode: ResponseMode,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a verified `id_token_hint`.
    pub id_token_hint_sub: Option<String>,
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    pub resource: Option<String>,
    /// Set when the request is a device's (RFC 8628): the user code the person typed. Such a
    /// request ends by approving the device, not with a redirect, and has no redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_user_code: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is to be bound to (`dpop_jkt`,
    /// or the key of the proof sent to the PAR endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}
