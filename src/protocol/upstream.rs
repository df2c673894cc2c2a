//! Wire types of upstream identity providers ("Log in with …") as the admin API and the CLI
//! take and answer them, and the checks that need no network or database: ids, kinds, the
//! claim mapping, the linking rule. URL checks need the outbound rules (`outbound`) and live
//! in `upstream::settings`.
//!
//! The client secret is taken out of the body by hand before the rest is deserialized, so a
//! wrong-typed value cannot be echoed back in an error message; it is never serialized.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::OAuthError;

/// Longest upstream id: it appears in URLs (`/upstream/{id}/callback`) and in buttons.
pub const MAX_ID_LEN: usize = 64;

/// How Latchkey talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// OpenID Connect: everything but the client credentials comes from the issuer's
    /// discovery document; the identity is the verified ID token.
    Oidc,
    /// Plain OAuth 2.0 (GitHub): explicit endpoints, the identity is the userinfo answer
    /// and `subject_claim` names its stable identifier.
    Oauth2,
}

/// When an unknown upstream identity may be linked to an existing local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkExisting {
    /// Never: an unknown identity gets a new user (`create_users`) or is refused.
    #[default]
    Never,
    /// To the one local user whose verified email equals the email the upstream says it
    /// verified (`email_verified: true`). An unverified email never links.
    VerifiedEmail,
}

/// An upstream's settings, everything but the secret. Stored as JSON, answered as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub id: String,
    pub display_name: String,
    pub kind: UpstreamKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_claim: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    /// Local claim name → upstream claim name, copied when a user is created.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub create_users: bool,
    #[serde(default)]
    pub link_existing: LinkExisting,
}

/// A request to register (or replace) an upstream: its settings and the client secret, which
/// may be left out of a replacement to keep the stored one. No `Debug` of the secret.
#[derive(Clone)]
pub struct UpstreamRequest {
    pub settings: UpstreamSettings,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("settings", &self.settings)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The body of `POST` and `PUT /admin/upstreams` as the OpenAPI document describes it: the
/// settings and the client secret (required on `POST`; left out of a `PUT`, the stored one
/// stays). Only a schema: the body is read by `parse_upstream`.
#[derive(ToSchema)]
pub struct UpstreamWrite {
    #[serde(flatten)]
    pub settings: UpstreamSettings,
    #[schema(write_only)]
    pub client_secret: Option<String>,
}

/// An upstream as the admin API answers it: the settings plus where the upstream must send
/// its users back. There is no field for the secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpstreamResponse {
    #[serde(flatten)]
    pub settings: UpstreamSettings,
    pub redirect_uri: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The local claims an upstream claim may fill (`UserClaims`' names), plus `username`.
pub const MAPPABLE_CLAIMS: &[&str] = &[
    "username",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "email",
    "phone_number",
];

/// An upstream registration from a JSON document (`POST` or `PUT /admin/upstreams`).
/// Malformed JSON, wrong types and unknown fields are `invalid_request`.
pub fn parse_upstream(body: &[u8]) -> Result<UpstreamRequest, OAuthError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| OAuthError::invalid_request(format!("the body is not JSON: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(OAuthError::invalid_request(
            "the body must be a JSON object",
        ));
    };
    let client_secret = match object.remove("client_secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "client_secret must be a string",
            ));
        }
    };
    let settings: UpstreamSettings = serde_json::from_value(value)
        .map_err(|e| OAuthError::invalid_request(format!("invalid upstream: {e}")))?;
    Ok(UpstreamRequest {
        settings,
        client_secret,
    })
}

/// Checks what needs neither network nor database, and fills in defaults (the scope).
/// URLs are checked by the caller under the outbound rules.
pub fn check_settings(settings: &mut UpstreamSettings) -> Result<(), OAuthError> {
    let bad = |m: &str| Err(OAuthError::invalid_request(m.to_owned()));
    let id = &settings.id;
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return bad("id must be 1 to 64 characters of a-z, 0-9, - and _");
    }
    let name = settings.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return bad("display_name must be 1 to 100 printable characters");
    }
    settings.display_name = name.to_owned();
    if settings.client_id.is_empty()
        || settings.client_id.len() > 1024
        || settings.client_id.chars().any(char::is_control)
    {
        return bad("client_id must be 1 to 1024 printable characters");
    }
    match settings.kind {
        UpstreamKind::Oidc => {
            if settings.issuer.is_none() {
                return bad("an oidc upstream needs its issuer");
            }
            if settings.authorization_endpoint.is_some()
                || settings.token_endpoint.is_some()
                || settings.userinfo_endpoint.is_some()
                || settings.subject_claim.is_some()
            {
                return bad(
                    "an oidc upstream takes its endpoints from its issuer's discovery document; \
                     leave out authorization_endpoint, token_endpoint, userinfo_endpoint and \
                     subject_claim (or use kind oauth2)",
                );
            }
            if settings.scope.trim().is_empty() {
                settings.scope = "openid email profile".to_owned();
            }
            if !settings.scope.split(' ').any(|s| s == "openid") {
                return bad("the scope of an oidc upstream must include openid");
            }
        }
        UpstreamKind::Oauth2 => {
            if settings.authorization_endpoint.is_none()
                || settings.token_endpoint.is_none()
                || settings.userinfo_endpoint.is_none()
            {
                return bad(
                    "an oauth2 upstream needs authorization_endpoint, token_endpoint and \
                     userinfo_endpoint",
                );
            }
            match &settings.subject_claim {
                Some(c) if !c.is_empty() && c.len() <= 64 => {}
                _ => return bad("an oauth2 upstream needs subject_claim (for example \"id\")"),
            }
        }
    }
    if settings.scope.len() > 1024 || settings.scope.chars().any(char::is_control) {
        return bad("scope is too long or holds control characters");
    }
    for (local, remote) in &settings.claims {
        if !MAPPABLE_CLAIMS.contains(&local.as_str()) {
            return Err(OAuthError::invalid_request(format!(
                "claims: `{local}` is not a local claim that can be mapped (one of {})",
                MAPPABLE_CLAIMS.join(", ")
            )));
        }
        if remote.is_empty() || remote.len() > 64 {
            return bad("claims: every upstream claim name must be 1 to 64 characters");
        }
    }
    Ok(())
}

/// Checks a client secret given to the admin API.
pub fn check_secret(secret: &str) -> Result<(), OAuthError> {
    if secret.is_empty() || secret.len() > 4096 {
        return Err(OAuthError::invalid_request(
            "client_secret must be 1 to 4096 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(json: Value) -> Result<UpstreamSettings, String> {
        let mut request =
            parse_upstream(json.to_string().as_bytes()).map_err(|e| e.description.to_string())?;
        check_settings(&mut request.settings).map_err(|e| e.description.to_string())?;
        Ok(request.settings)
    }

    fn oidc() -> Value {
        serde_json::json!({"id": "corp", "display_name": "Corp", "kind": "oidc",
            "issuer": "https://id.example.com", "client_id": "c", "client_secret": "s"})
    }

    #[test]
    fn upstream_settings_are_checked() {
        let ok = check(oidc()).unwrap();
        assert_eq!(ok.scope, "openid email profile");
        assert_eq!(ok.link_existing, LinkExisting::Never);
        assert!(!ok.create_users);
        let with = |k: &str, v: Value| {
            let mut j = oidc();
            j[k] = v;
            check(j)
        };
        assert!(with("id", "Bad Id".into()).is_err());
        assert!(with("id", "../x".into()).is_err());
        assert!(with("id", "a".repeat(65).into()).is_err());
        assert!(with("display_name", " ".into()).is_err());
        assert!(with("kind", "saml".into()).is_err());
        assert!(with("scope", "email".into()).is_err());
        assert!(with("token_endpoint", "https://x.example/t".into()).is_err());
        assert!(with("unknown", 1.into()).is_err());
        assert!(with("link_existing", "any_email".into()).is_err());
        assert!(with("claims", serde_json::json!({"sub": "sub"})).is_err());
        assert!(with("claims", serde_json::json!({"email": "mail"})).is_ok());
        let mut no_issuer = oidc();
        no_issuer.as_object_mut().unwrap().remove("issuer");
        assert!(check(no_issuer).is_err());
        let oauth2 = serde_json::json!({"id": "gh", "display_name": "GitHub", "kind": "oauth2",
            "authorization_endpoint": "https://github.com/login/oauth/authorize",
            "token_endpoint": "https://github.com/login/oauth/access_token",
            "userinfo_endpoint": "https://api.github.com/user", "client_id": "c"});
        assert!(check(oauth2.clone()).is_err(), "subject_claim is required");
        let mut full = oauth2;
        full["subject_claim"] = "id".into();
        assert!(check(full).is_ok());
    }

    #[test]
    fn the_secret_never_reaches_an_error_message() {
        let body = serde_json::json!({"client_secret": ["hunter2"]}).to_string();
        let err = parse_upstream(body.as_bytes()).unwrap_err();
        assert!(!err.description.contains("hunter2"));
        let body = serde_json::json!({"client_secret": "hunter2", "id": 5}).to_string();
        let err = parse_upstream(body.as_bytes()).unwrap_err();
        assert!(!err.description.contains("hunter2"));
        let ok = parse_upstream(oidc().to_string().as_bytes()).unwrap();
        assert!(!format!("{ok:?}").contains("\"s\""));
    }
}
