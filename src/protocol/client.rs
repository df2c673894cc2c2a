//! Client metadata (RFC 7591 §2) as the admin API takes and answers it, and its validation.

use serde::{Deserialize, Serialize};

use super::alg::SigningAlg;
use super::error::{ErrorCode, OAuthError};
use super::scope::Scope;

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with one of the client's keys (RFC 7523 §2.2, OpenID Connect Core §9).
    PrivateKeyJwt,
    /// A public client: no secret, PKCE required.
    None,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
            TokenEndpointAuthMethod::PrivateKeyJwt => "private_key_jwt",
            TokenEndpointAuthMethod::None => "none",
        }
    }

    /// Whether clients of this method hold a secret Latchkey issued.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost
        )
    }
}

/// The algorithms a client may sign its authentication assertions (and, later, request
/// objects) with: asymmetric only, so that Latchkey never holds a key that can sign for the
/// client.
pub const CLIENT_SIGNING_ALGS: [&str; 6] = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "RS512"];

/// The largest `jwks` a client may register inline.
pub const MAX_INLINE_JWKS_BYTES: usize = 16 * 1024;

/// Latchkey extension: whose tokens a client may learn about at the introspection endpoint
/// (RFC 7662 §4 leaves it to the server to decide who may introspect what).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntrospectionAccess {
    /// Only tokens issued to this client. Without this limit any confidential client could
    /// test another client's refresh tokens for validity, and never trip reuse detection.
    #[default]
    Own,
    /// Every token this server issued: a resource server, which must check access tokens
    /// whose `aud` names it (RFC 8707 resources) but which were issued to other clients.
    Any,
}

impl IntrospectionAccess {
    /// May a client with this setting, `introspector`, be told about a token issued to
    /// `issued_to`?
    pub fn may_see(self, introspector: &str, issued_to: &str) -> bool {
        match self {
            IntrospectionAccess::Any => true,
            IntrospectionAccess::Own => introspector == issued_to,
        }
    }
}

/// The grant types Latchkey implements.
pub const SUPPORTED_GRANT_TYPES: [&str; 6] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// Registration request from the admin API. Unknown fields are refused so that a typo in a
/// security-relevant field name cannot pass silently.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    pub scope: Option<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    /// Latchkey extension: a first-party client skips the consent page.
    pub first_party: Option<bool>,
    /// Latchkey extension (RFC 8707): the resource indicators this client may request as
    /// access-token audience.
    pub allowed_resources: Option<Vec<String>>,
    /// Latchkey extension: `own` (default) or `any`, see `IntrospectionAccess`.
    pub introspection: Option<IntrospectionAccess>,
    /// The client's public keys (a JWK Set), for `private_key_jwt` (RFC 7591 §2).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its public keys.
    pub jwks_uri: Option<String>,
    /// The one algorithm its authentication assertions must use, when set.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The one algorithm its request objects must use, when set (RFC 9101 §10.5).
    pub request_object_signing_alg: Option<String>,
    /// Every authorization request must be a signed request object (RFC 9101 §10.5).
    pub require_signed_request_object: Option<bool>,
    /// Every authorization request must be pushed first (RFC 9126 §6).
    pub require_pushed_authorization_requests: Option<bool>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: Option<bool>,
    /// Latchkey extension: every user of this client must use a second factor.
    pub require_mfa: Option<bool>,
    /// Where logout tokens are POSTed when a session the client took part in ends
    /// (OpenID Connect Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (Latchkey always sends it).
    pub backchannel_logout_session_required: Option<bool>,
    /// Latchkey extension (RFC 8693): the audiences (or resource indicators) this client may
    /// exchange tokens for.
    pub token_exchange_audiences: Option<Vec<String>>,
    /// Accepted for RFC 7592 PUT round trips, checked against the path, never stored.
    pub client_id: Option<String>,
    /// RFC 7592 §2.2: a client may send back its secret on update; it is ignored.
    pub client_secret: Option<String>,
    pub client_id_issued_at: Option<i64>,
    pub client_secret_expires_at: Option<i64>,
    pub registration_access_token: Option<String>,
    pub registration_client_uri: Option<String>,
}

/// Validated client metadata, as stored and as answered (without secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub scope: String,
    pub client_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub logo_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    pub first_party: bool,
    pub allowed_resources: Vec<String>,
    /// Clients stored before this field existed read as `own`.
    #[serde(default)]
    pub introspection: IntrospectionAccess,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_object_signing_alg: Option<String>,
    #[serde(default)]
    pub require_signed_request_object: bool,
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Clients stored before this field existed read as `false`.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// Every user of this client must use a second factor (`acr` `mfa` at least).
    #[serde(default)]
    pub require_mfa: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    #[serde(default)]
    pub token_exchange_audiences: Vec<String>,
}

impl ClientMetadata {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == TokenEndpointAuthMethod::None
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    pub fn registered_scope(&self) -> Scope {
        Scope::parse_lenient(&self.scope)
    }

    pub fn id_token_alg(&self) -> SigningAlg {
        SigningAlg::parse(&self.id_token_signed_response_alg).unwrap_or(SigningAlg::Rs256)
    }
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description.into())
}

fn redirect_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description.into())
}

impl ClientRegistration {
    /// RFC 7591 §2 validation, with the redirect URI rules of RFC 8252 for native apps.
    pub fn validate(self) -> Result<ClientMetadata, OAuthError> {
        let auth_method = self
            .token_endpoint_auth_method
            .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic);
        let grant_types = self
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
        if grant_types.is_empty() {
            return Err(metadata_error("grant_types must not be empty"));
        }
        for g in &grant_types {
            if !SUPPORTED_GRANT_TYPES.contains(&g.as_str()) {
                return Err(metadata_error(format!("grant type `{g}` is not supported")));
            }
        }
        let grant_types = dedup(grant_types);
        let uses_code = grant_types.iter().any(|g| g == "authorization_code");
        let response_types = self.response_types.unwrap_or_else(|| {
            if uses_code {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            }
        });
        for r in &response_types {
            if r != "code" {
                return Err(metadata_error(format!(
                    "response type `{r}` is not supported; only `code` is"
                )));
            }
        }
        if uses_code == response_types.is_empty() {
            return Err(metadata_error(
                "response_types [\"code\"] goes together with the authorization_code grant (RFC 7591 §2.1)",
            ));
        }
        if auth_method == TokenEndpointAuthMethod::None
            && grant_types.iter().any(|g| {
                g == "client_credentials"
                    || g == "password"
                    || g == "urn:ietf:params:oauth:grant-type:token-exchange"
            })
        {
            return Err(metadata_error(
                "a public client (token_endpoint_auth_method none) cannot use client_credentials, password or token exchange",
            ));
        }
        if uses_code && self.redirect_uris.is_empty() {
            return Err(redirect_error(
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        for uri in &self.redirect_uris {
            validate_redirect_uri(uri).map_err(redirect_error)?;
        }
        for uri in &self.post_logout_redirect_uris {
            validate_redirect_uri(uri)
                .map_err(|e| metadata_error(format!("post_logout_redirect_uris: {e}")))?;
        }
        let scope = match self.scope {
            None => "openid".to_owned(),
            Some(s) => {
                let parsed = Scope::parse(&s).map_err(|_| {
                    metadata_error("scope must be space-separated scope tokens (RFC 6749 §3.3)")
                })?;
                parsed.to_string()
            }
        };
        let client_name = self.client_name.unwrap_or_default();
        if client_name.chars().count() > 200 {
            return Err(metadata_error("client_name is longer than 200 characters"));
        }
        for (name, uri) in [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
        ] {
            if let Some(u) = uri {
                match url::Url::parse(u) {
                    Ok(parsed) if parsed.scheme() == "https" || parsed.scheme() == "http" => {}
                    _ => return Err(metadata_error(format!("{name} must be an http(s) URL"))),
                }
            }
        }
        let alg = self
            .id_token_signed_response_alg
            .unwrap_or_else(|| "RS256".to_owned());
        if SigningAlg::parse(&alg).is_none() {
            return Err(metadata_error(
                "id_token_signed_response_alg must be RS256, ES256 or EdDSA",
            ));
        }
        let introspection = self.introspection.unwrap_or_default();
        if introspection == IntrospectionAccess::Any && auth_method == TokenEndpointAuthMethod::None
        {
            return Err(metadata_error(
                "a public client (token_endpoint_auth_method none) cannot introspect, so introspection `any` makes no sense for it",
            ));
        }
        let token_exchange_audiences = self.token_exchange_audiences.unwrap_or_default();
        for a in &token_exchange_audiences {
            if a.is_empty() || a.len() > 2000 || a.chars().any(|c| c.is_control()) {
                return Err(metadata_error(
                    "token_exchange_audiences must be non-empty names without control characters",
                ));
            }
        }
        let allowed_resources = self.allowed_resources.unwrap_or_default();
        for r in &allowed_resources {
            validate_resource(r).map_err(metadata_error)?;
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(metadata_error(
                "jwks and jwks_uri must not both be present (RFC 7591 §2)",
            ));
        }
        if auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
            && self.jwks.is_none()
            && self.jwks_uri.is_none()
        {
            return Err(metadata_error(
                "private_key_jwt needs the client's public keys: jwks or jwks_uri",
            ));
        }
        if let Some(jwks) = &self.jwks {
            validate_jwks(jwks).map_err(metadata_error)?;
        }
        if let Some(uri) = &self.jwks_uri {
            // The host is checked against the outbound rules by the caller, which knows the
            // trusted hosts; here only the shape.
            match url::Url::parse(uri) {
                Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {}
                _ => return Err(metadata_error("jwks_uri must be an absolute https URL")),
            }
        }
        for (name, alg) in [
            (
                "token_endpoint_auth_signing_alg",
                &self.token_endpoint_auth_signing_alg,
            ),
            (
                "request_object_signing_alg",
                &self.request_object_signing_alg,
            ),
        ] {
            if let Some(alg) = alg
                && !CLIENT_SIGNING_ALGS.contains(&alg.as_str())
            {
                return Err(metadata_error(format!(
                    "{name} must be one of {}",
                    CLIENT_SIGNING_ALGS.join(", ")
                )));
            }
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            // §2.2: an absolute URL, no fragment. Its host is checked against the outbound
            // rules by the caller, which knows the trusted hosts.
            match url::Url::parse(uri) {
                Ok(u)
                    if (u.scheme() == "https" || u.scheme() == "http")
                        && u.host().is_some()
                        && u.fragment().is_none() => {}
                _ => {
                    return Err(metadata_error(
                        "backchannel_logout_uri must be an absolute https URL without a fragment",
                    ));
                }
            }
        }
        let require_signed_request_object = self.require_signed_request_object.unwrap_or(false);
        if require_signed_request_object && self.jwks.is_none() && self.jwks_uri.is_none() {
            return Err(metadata_error(
                "require_signed_request_object needs the client's public keys: jwks or jwks_uri",
            ));
        }
        Ok(ClientMetadata {
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types,
            response_types,
            token_endpoint_auth_method: auth_method,
            scope,
            client_name,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            id_token_signed_response_alg: alg,
            first_party: self.first_party.unwrap_or(false),
            allowed_resources,
            introspection,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg,
            request_object_signing_alg: self.request_object_signing_alg,
            require_signed_request_object,
            require_pushed_authorization_requests: self
                .require_pushed_authorization_requests
                .unwrap_or(false),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.unwrap_or(false),
            require_mfa: self.require_mfa.unwrap_or(false),
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self
                .backchannel_logout_session_required
                .unwrap_or(false),
            token_exchange_audiences,
        })
    }
}

/// A registered JWK Set: public asymmetric keys only, at most 16 KiB (a key set a client
/// publishes holds no secret; a symmetric or private key here would be a leak).
pub fn validate_jwks(jwks: &serde_json::Value) -> Result<(), String> {
    if jwks.to_string().len() > MAX_INLINE_JWKS_BYTES {
        return Err("jwks is larger than 16 KiB".into());
    }
    let Some(keys) = jwks.get("keys").and_then(|k| k.as_array()) else {
        return Err("jwks must be a JWK Set: an object with a `keys` array".into());
    };
    if keys.is_empty() {
        return Err("jwks holds no key".into());
    }
    for key in keys {
        let kty = key.get("kty").and_then(|k| k.as_str()).unwrap_or_default();
        if !matches!(kty, "RSA" | "EC" | "OKP") {
            return Err(format!(
                "jwks: key type `{kty}` is not accepted (RSA, EC or OKP public keys only)"
            ));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if key.get(private).is_some() {
                return Err(format!(
                    "jwks holds private key material (`{private}`); register public keys only"
                ));
            }
        }
        if serde_json::from_value::<jsonwebtoken::jwk::Jwk>(key.clone()).is_err() {
            return Err("jwks holds a key that is not a valid JWK".into());
        }
    }
    Ok(())
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// A registered redirect URI (RFC 6749 §3.1.2, RFC 8252 §7): absolute, no fragment; https,
/// or http on a loopback IP literal or localhost, or a private-use scheme (reverse domain
/// name with a dot) for native apps.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2000 {
        return Err("redirect URI is longer than 2000 characters".into());
    }
    // The URL parser drops leading and trailing spaces and control characters, and tabs and
    // newlines anywhere, so such a string would be registered as something it does not say.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "`{}` must not contain spaces or control characters",
            uri.escape_debug()
        ));
    }
    let parsed = url::Url::parse(uri).map_err(|_| format!("`{uri}` is not an absolute URI"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    // Credentials in a redirect URI would be sent to the client with every code, and
    // `https://trusted@evil.example/` reads as a trusted host to a person. Not echoed: the
    // part before `@` may be a password.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "a redirect URI must not carry user information (`user:password@` before the host)"
                .into(),
        );
    }
    // Matching at /authorize is by exact string, but the browser follows what the URL parser
    // makes of the string: `https:\\evil.example` is registered as one thing and redirects to
    // `https://evil.example/`. Only a string the parser leaves byte for byte unchanged (WHATWG
    // serialization: lower-case scheme and host, trailing `/` for an empty path, default port
    // dropped, IDNs in punycode, non-ASCII percent-encoded) is both what was registered and
    // where the redirect goes.
    if parsed.as_str() != uri {
        return Err(format!(
            "`{uri}` is not in canonical form: it would be read as `{}`; register that exactly if it is what you mean",
            parsed.as_str()
        ));
    }
    match parsed.scheme() {
        "https" => {
            if parsed.host().is_none() {
                return Err(format!("`{uri}` has no host"));
            }
            Ok(())
        }
        "http" => {
            if super::uri::is_loopback_host(&parsed) {
                Ok(())
            } else {
                Err(format!(
                    "`{uri}` must use https; http is allowed only for loopback hosts (RFC 8252 §7.3)"
                ))
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            Err(format!(
                "`{uri}` uses a scheme that cannot be a redirect URI"
            ))
        }
        scheme => {
            // RFC 8252 §7.1: private-use schemes should be reverse domain names.
            if scheme.contains('.') {
                Ok(())
            } else {
                Err(format!(
                    "`{uri}`: a private-use URI scheme must be a reverse domain name such as com.example.app (RFC 8252 §7.1)"
                ))
            }
        }
    }
}

/// A resource indicator (RFC 8707 §2): an absolute URI without a fragment.
pub fn validate_resource(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|_| format!("resource `{uri}` is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!("resource `{uri}` must not contain a fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_redirect(uri: &str, ok: bool) {
        assert_eq!(validate_redirect_uri(uri).is_ok(), ok, "{uri}");
    }

    #[test]
    fn redirect_uri_rules() {
        check_redirect("https://app.example.com/cb", true);
        check_redirect("https://app.example.com/cb?x=1", true);
        check_redirect("http://127.0.0.1:3000/cb", true);
        check_redirect("http://127.0.0.1/cb", true);
        check_redirect("http://[::1]:8080/cb", true);
        check_redirect("http://localhost:8080/cb", true);
        check_redirect("com.example.app:/oauth2redirect", true);
        check_redirect("https://app.example.com/cb#frag", false);
        check_redirect("https://app.example.com/cb#", false);
        check_redirect("http://app.example.com/cb", false);
        check_redirect("/relative/cb", false);
        check_redirect("cb", false);
        check_redirect("javascript:alert(1)", false);
        check_redirect("data:text/html,hi", false);
        check_redirect("myapp:/cb", false);
        check_redirect("", false);
        // Found by the redirect_uri fuzz target: the URL parser strips these, so they were
        // accepted and registered as a string that is not the URI it parses to.
        check_redirect(" https://app.example/cb", false);
        check_redirect("https://app.example/cb\n", false);
        check_redirect("http://127.0.0.1:5000\t/cb", false);
        check_redirect("https://app.example/c\u{0}b", false);
        check_redirect("https://app.example/a b", false);
        // Issue 12: what the parser reads must be what was registered, byte for byte, and
        // carry no user information.
        check_redirect("https:\\\\evil.example", false);
        check_redirect("https:\\\\evil.example/cb", false);
        check_redirect("https:/evil.example/cb", false);
        check_redirect("https:///cb", false);
        check_redirect("https://user:pw@app.example/cb", false);
        check_redirect("https://user@app.example/cb", false);
        check_redirect("https://:pw@app.example/cb", false);
        check_redirect("https://@app.example/cb", false);
        check_redirect("http://127.0.0.1:5000@evil.example/cb", false);
        check_redirect("https://app.example", false);
        check_redirect("https://app.example/", true);
        check_redirect("https://App.Example/cb", false);
        check_redirect("HTTPS://app.example/cb", false);
        check_redirect("https://app.example:443/cb", false);
        check_redirect("https://app.example:8443/cb", true);
        check_redirect("http://127.0.0.1:80/cb", false);
        check_redirect("http://localhost:8080", false);
        check_redirect("http://[0:0:0:0:0:0:0:1]/cb", false);
        check_redirect("http://2130706433/cb", false);
        check_redirect("https://app.example/a/../cb", false);
        check_redirect("https://app.example/caf\u{e9}", false);
        check_redirect("https://app.example/caf%C3%A9", true);
        check_redirect("https://b\u{fc}cher.example/cb", false);
        check_redirect("https://xn--bcher-kva.example/cb", true);
        check_redirect("https://app.example/cb?a=%7B%7D", true);
        check_redirect("Com.Example.App:/cb", false);
        check_redirect("com.example.app:/oauth2redirect?x=1", true);
    }

    /// The refusal says what the parser would have made of the URI, without echoing user
    /// information (it may be a password).
    #[test]
    fn non_canonical_redirect_uris_are_explained() {
        let err = validate_redirect_uri("https:\\\\evil.example").unwrap_err();
        assert!(
            err.contains("canonical") && err.contains("`https://evil.example/`"),
            "{err}"
        );
        let err = validate_redirect_uri("https://alice:s3cret@app.example/cb").unwrap_err();
        assert!(
            err.contains("user information") && !err.contains("s3cret"),
            "{err}"
        );
    }

    fn registration(json: serde_json::Value) -> Result<ClientMetadata, OAuthError> {
        serde_json::from_value::<ClientRegistration>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn defaults_make_a_confidential_code_client() {
        let m =
            registration(serde_json::json!({"redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(m.grant_types, vec!["authorization_code"]);
        assert_eq!(m.response_types, vec!["code"]);
        assert_eq!(
            m.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(m.id_token_signed_response_alg, "RS256");
    }

    #[test]
    fn introspection_defaults_to_own_tokens_and_any_is_for_confidential_clients() {
        let cb = "https://a.example/cb";
        let m = registration(serde_json::json!({"redirect_uris": [cb]})).unwrap();
        assert_eq!(m.introspection, IntrospectionAccess::Own);
        assert_eq!(
            serde_json::to_value(&m).unwrap()["introspection"],
            serde_json::json!("own")
        );
        let rs = registration(
            serde_json::json!({"grant_types": ["client_credentials"], "introspection": "any"}),
        )
        .unwrap();
        assert_eq!(rs.introspection, IntrospectionAccess::Any);
        assert!(
            registration(serde_json::json!({"redirect_uris": [cb], "token_endpoint_auth_method": "none", "introspection": "any"})).is_err()
        );
        assert!(
            serde_json::from_value::<ClientRegistration>(
                serde_json::json!({"redirect_uris": [cb], "introspection": "all"})
            )
            .is_err()
        );
        // Metadata stored before the field existed.
        let mut stored = serde_json::to_value(&m).unwrap();
        stored.as_object_mut().unwrap().remove("introspection");
        let old: ClientMetadata = serde_json::from_value(stored).unwrap();
        assert_eq!(old.introspection, IntrospectionAccess::Own);

        assert!(IntrospectionAccess::Own.may_see("a", "a"));
        assert!(!IntrospectionAccess::Own.may_see("a", "b"));
        assert!(IntrospectionAccess::Any.may_see("a", "b"));
    }

    #[test]
    fn invalid_metadata_is_refused() {
        let cases = [
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "none"}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "a\"b"}),
            serde_json::json!({"grant_types": ["authorization_code"]}),
        ];
        for case in cases {
            assert!(registration(case.clone()).is_err(), "{case}");
        }
    }
}
