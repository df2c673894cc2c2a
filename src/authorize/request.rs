//! Parsing and validating an authorization request, in the order the specs require: client
//! and redirect URI first (failures there are shown, never redirected), then everything else
//! (failures redirected to the client).

use std::sync::Arc;

use super::{AuthorizeError, pkce, redirect_uri};
use crate::app::App;
use crate::protocol::authorization::{AuthorizationRequest, Prompt, ResponseMode};
use crate::protocol::client::validate_resource;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::ClientRecord;

/// The client and redirect URI are known good: from here on errors go back to the client.
pub struct Target {
    pub client: Arc<ClientRecord>,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// How answers go back: as asked when Latchkey serves that mode, else by query (which is
    /// also how an unsupported mode is refused).
    pub response_mode: ResponseMode,
}

/// Step 1: the client and the redirect URI. Errors are rendered as a page.
pub async fn resolve_target(app: &App, params: &Params) -> Result<Target, AuthorizeError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page("the request has no client_id"))?;
    let client = app
        .client(client_id)
        .await
        .map_err(|e| AuthorizeError::Page(e.into()))?
        .ok_or_else(|| page("the application (client_id) is not registered"))?;
    let registered = &client.metadata.redirect_uris;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) => {
            if !redirect_uri::matches_registered(uri, registered) {
                return Err(page(
                    "the redirect_uri is not registered for this application",
                ));
            }
            uri.to_owned()
        }
        // RFC 6749 §3.1.2.3: a plain OAuth request may omit it when exactly one is
        // registered; an OpenID Connect request must send it (Core §3.1.2.1).
        None if registered.len() == 1 && !requests_openid(params) => registered[0].clone(),
        None => return Err(page("the request has no redirect_uri")),
    };
    if !client.metadata.allows_grant("authorization_code") {
        return Err(page(
            "this application may not use the authorization code flow",
        ));
    }
    Ok(Target {
        client,
        redirect_uri,
        state: params.get("state").map(str::to_owned),
        response_mode: ResponseMode::parse(params.get("response_mode")).unwrap_or_default(),
    })
}

fn requests_openid(params: &Params) -> bool {
    params
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|t| t == "openid"))
}

fn page(description: &'static str) -> AuthorizeError {
    AuthorizeError::Page(OAuthError::invalid_request(description))
}

/// Step 2: every other parameter. Errors are redirected to the client.
pub fn validate(
    app: &App,
    target: &Target,
    params: &Params,
) -> Result<AuthorizationRequest, OAuthError> {
    let metadata = &target.client.metadata;
    // `request` and `request_uri` were resolved before (`par::effective_params`).
    if params.contains("registration") {
        return Err(OAuthError::new(
            ErrorCode::RegistrationNotSupported,
            "the registration parameter is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if ResponseMode::parse(params.get("response_mode")).is_none() {
        return Err(OAuthError::invalid_request(
            "response_mode must be query or form_post",
        ));
    }

    let scope = match params.get("scope") {
        Some(s) => Scope::parse(s).map_err(|_| OAuthError::invalid_scope("scope is malformed"))?,
        None => return Err(OAuthError::invalid_scope("scope is required")),
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope("scope is required"));
    }
    if !scope.is_subset_of(&metadata.registered_scope()) {
        return Err(OAuthError::invalid_scope(
            "the requested scope exceeds what this application registered",
        ));
    }

    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method=S256 is required; plain is not supported",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(challenge), Some("S256")) => {
            if !pkce::valid_challenge(challenge) {
                return Err(OAuthError::invalid_request(
                    "code_challenge must be a base64url SHA-256 digest (43 characters)",
                ));
            }
            Some(challenge.to_owned())
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "only code_challenge_method=S256 is supported",
            ));
        }
    };
    if code_challenge.is_none() && metadata.is_public() {
        return Err(OAuthError::invalid_request(
            "public clients must send a PKCE code_challenge (S256)",
        ));
    }

    let prompt = parse_prompt(params.get("prompt"))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?),
    };

    let id_token_hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => {
            let keys = app.keys.current();
            let claims = crate::mint::verify_id_token_hint(&keys, hint, &app.config.issuer)
                .map_err(|_| {
                    OAuthError::invalid_request(
                        "id_token_hint is not a valid ID token from this issuer",
                    )
                })?;
            Some(claims.sub)
        }
    };

    let resource = match params.get("resource") {
        None => None,
        Some(r) => {
            validate_resource(r).map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e))?;
            if !metadata.allowed_resources.iter().any(|a| a == r) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "this application may not request that resource",
                ));
            }
            Some(r.to_owned())
        }
    };

    let dpop_jkt = match params.get("dpop_jkt") {
        None => None,
        Some(jkt) if is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of a key",
            ));
        }
    };

    Ok(AuthorizationRequest {
        client_id: target.client.client_id.clone(),
        redirect_uri: target.redirect_uri.clone(),
        redirect_uri_sent: params.contains("redirect_uri"),
        response_mode: target.response_mode,
        scope: scope.to_string(),
        state: target.state.clone(),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        id_token_hint_sub,
        ui_locales: params.get("ui_locales").map(str::to_owned),
        acr_values: params.get("acr_values").map(str::to_owned),
        resource,
        device_user_code: None,
        dpop_jkt,
    })
}

/// RFC 9449 §10: a `dpop_jkt` is an RFC 7638 thumbprint with SHA-256, base64url without
/// padding: 43 characters of the URL-safe alphabet (the last one carrying 2 bits).
pub fn is_thumbprint(value: &str) -> bool {
    use base64::Engine;
    value.len() == 43
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .is_ok_and(|digest| digest.len() == 32)
}

/// OpenID Connect Core §3.1.2.1: space-separated; `none` must stand alone.
/// `select_account` is honoured as `login` (Latchkey keeps one account per session).
fn parse_prompt(value: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    let Some(value) = value else {
        return Ok(prompt);
    };
    let mut count = 0;
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        count += 1;
        match token {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {
                return Err(OAuthError::invalid_request(format!(
                    "prompt value `{}` is not supported",
                    token.chars().take(20).collect::<String>()
                )));
            }
        }
    }
    if prompt.none && count > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}
