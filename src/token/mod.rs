//! The token endpoint (RFC 6749 §3.2): authenticate the client once, dispatch on the closed
//! `GrantType` enum, let the grant `validate` into a `GrantOutcome`, then `issue` tokens the
//! same way for every grant.

pub mod access;
pub mod dpop;
pub mod grants;
pub mod introspection;
pub mod refresh_format;
pub mod revocation;

use std::sync::Arc;

use crate::app::App;
use crate::client_auth;
use crate::config::DpopNonceMode;
use crate::mint::{self, AccessTokenClaims, Confirmation, IdTokenClaims};
use crate::protocol::discovery::paths;
use crate::protocol::error::TokenEndpointError;
use crate::protocol::form::Params;
use crate::protocol::token::TokenResponse;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::{ClientRecord, RefreshTokenRecord};

/// The grants Latchkey implements; parsed from the `grant_type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    Password,
    /// RFC 8628 §3.4.
    DeviceCode,
    /// RFC 8693 §2.1.
    TokenExchange,
}

/// What the token endpoint does differently for each grant, stated by every grant in one
/// place (`GrantType::traits`, one exhaustive match), so that a new grant cannot be added
/// without deciding each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantTraits {
    /// The `grant_type` value.
    pub name: &'static str,
    /// Whether the grant consumes or rotates stored state (a code, a refresh token, a device
    /// code, a throttle count, an exchange's audit record), so that its request runs to
    /// completion even if the client hangs up (`http::to_completion`). One that writes
    /// nothing a dropped request could leave half-done runs inline.
    pub writes: bool,
    /// The `issued_token_type` of its response (RFC 8693 §2.2.1), when it has one.
    pub issued_token_type: Option<&'static str>,
}

impl GrantType {
    /// Every grant, for lookups by name.
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
    ];

    /// Everything grant-specific the endpoint decides outside the grant's own `validate`.
    pub const fn traits(self) -> GrantTraits {
        let (name, writes, issued_token_type) = match self {
            GrantType::AuthorizationCode => ("authorization_code", true, None),
            GrantType::RefreshToken => ("refresh_token", true, None),
            // Writes at most an assertion's or proof's `jti`, spent either way.
            GrantType::ClientCredentials => ("client_credentials", false, None),
            GrantType::Password => ("password", true, None),
            GrantType::DeviceCode => (crate::authorize::device::DEVICE_GRANT, true, None),
            GrantType::TokenExchange => (
                grants::token_exchange::GRANT,
                true,
                Some(grants::token_exchange::ACCESS_TOKEN_TYPE),
            ),
        };
        GrantTraits {
            name,
            writes,
            issued_token_type,
        }
    }

    /// The grant named `value`, whether or not it is enabled.
    pub fn from_name(value: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == value)
    }

    /// Unknown values, and `password` when it is disabled server-wide, are
    /// `unsupported_grant_type`.
    pub fn parse(value: Option<&str>, password_enabled: bool) -> Result<GrantType, OAuthError> {
        let Some(value) = value else {
            return Err(OAuthError::invalid_request("grant_type is required"));
        };
        match GrantType::from_name(value) {
            Some(GrantType::Password) if !password_enabled => None,
            found => found,
        }
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "this grant_type is not supported",
            )
        })
    }

    pub const fn as_str(self) -> &'static str {
        self.traits().name
    }
}

/// The end-user side of a grant, when there is a user.
#[derive(Debug, Clone)]
pub struct UserContext {
    pub auth_time: i64,
    pub sid: String,
    pub amr: String,
    pub nonce: Option<String>,
    pub acr: Option<String>,
}

/// What to do about refresh tokens.
// One value per token request, moved into `issue` at once: boxing the record would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RefreshPlan {
    None,
    /// Start a family: store this first token (generation and hash are filled in by `issue`).
    Start(Box<RefreshTokenRecord>),
    /// Rotation already stored this token; just hand it out.
    Rotated(String),
}

/// What a grant decided: who, for which client, with what scope and audience.
#[derive(Debug, Clone)]
pub struct GrantOutcome {
    pub client: Arc<ClientRecord>,
    pub subject: String,
    pub scope: Scope,
    pub audience: String,
    pub grant_id: Option<String>,
    pub user: Option<UserContext>,
    pub refresh: RefreshPlan,
    /// RFC 8693 §4.1: the actor of a token exchange, for the access token's `act`.
    pub act: Option<serde_json::Value>,
}

/// Handles one token request end to end. `dpop` is the request's `DPoP` header (RFC 9449).
pub async fn token_request(
    app: &App,
    authorization: Option<&str>,
    params: &Params,
    ip: Option<std::net::IpAddr>,
    dpop: Option<&str>,
) -> Result<TokenResponse, TokenEndpointError> {
    let client = client_auth::authenticate(app, authorization, params, ip, paths::TOKEN).await?;
    let grant_type = GrantType::parse(params.get("grant_type"), app.config.enable_password_grant)?;
    if !client.metadata.allows_grant(grant_type.as_str()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for this grant_type",
        )
        .into());
    }
    // Before the grant: a refused proof must not cost the client its code or refresh token.
    let proof = token_endpoint_proof(app, &client, dpop).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let outcome = match grant_type {
        GrantType::AuthorizationCode => {
            grants::authorization_code::validate(app, client, params, jkt).await?
        }
        GrantType::RefreshToken => {
            grants::refresh_token::validate(app, client, params, jkt).await?
        }
        GrantType::ClientCredentials => grants::client_credentials::validate(app, client, params)?,
        GrantType::Password => grants::password::validate(app, client, params, ip).await?,
        GrantType::DeviceCode => grants::device_code::validate(app, client, params).await?,
        GrantType::TokenExchange => grants::token_exchange::validate(app, client, params).await?,
    };
    let mut response = issue(app, outcome, jkt).await?;
    response.issued_token_type = grant_type.traits().issued_token_type;
    crate::telemetry::token_issued(grant_type.as_str());
    Ok(response)
}

/// The DPoP proof of a token request (RFC 9449 §5), checked when sent and demanded when the
/// client registered `dpop_bound_access_tokens`.
async fn token_endpoint_proof(
    app: &App,
    client: &ClientRecord,
    dpop: Option<&str>,
) -> Result<Option<dpop::Proof>, OAuthError> {
    let Some(proof) = dpop else {
        if client.metadata.dpop_bound_access_tokens {
            return Err(dpop::invalid(
                "this client must send a DPoP proof with every token request",
            ));
        }
        return Ok(None);
    };
    let url = format!("{}{}", app.config.issuer, paths::TOKEN);
    let expected = dpop::Expected {
        method: "POST",
        url: &url,
        access_token: None,
        nonce_required: app.config.dpop_nonce == DpopNonceMode::Required,
    };
    Ok(Some(dpop::check(app, proof, &expected).await?))
}

/// Whether a grant with this client and scope gets a refresh token (interface.md: the client
/// registered `refresh_token` and the scope includes `offline_access`).
pub fn wants_refresh_token(client: &ClientRecord, scope: &Scope) -> bool {
    client
        .metadata
        .allows_grant(GrantType::RefreshToken.as_str())
        && scope.contains("offline_access")
}

/// Resolves the access token audience (RFC 8707): the requested resource when the client may
/// ask for it, else the client id.
pub fn audience(client: &ClientRecord, resource: Option<&str>) -> Result<String, OAuthError> {
    match resource {
        None => Ok(client.client_id.clone()),
        Some(r) => {
            if client.metadata.allowed_resources.iter().any(|a| a == r) {
                Ok(r.to_owned())
            } else {
                Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "this client may not request that resource",
                ))
            }
        }
    }
}

/// Builds and signs the tokens of an outcome, storing a new refresh token when planned. With
/// `dpop_jkt` (the request proved possession of that key) the access token is bound to the key
/// (`cnf.jkt`, `token_type` DPoP), and so is a new refresh family of a public client; a
/// confidential client's refresh tokens stay unbound, its authentication protects them
/// (RFC 9449 §5).
pub async fn issue(
    app: &App,
    outcome: GrantOutcome,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let now = app.now();
    let keys = app.keys.current();
    let config = &app.config;
    let scope = outcome.scope.to_string();
    let access_claims = AccessTokenClaims {
        iss: config.issuer.clone(),
        sub: outcome.subject.clone(),
        aud: outcome.audience.clone(),
        exp: now + config.access_token_ttl,
        iat: now,
        nbf: now,
        jti: crate::crypto::random_token(16),
        client_id: outcome.client.client_id.clone(),
        scope: scope.clone(),
        auth_time: outcome.user.as_ref().map(|u| u.auth_time),
        // RFC 9470: resource servers can demand a level.
        acr: outcome
            .user
            .as_ref()
            .map(|u| crate::accounts::assurance::acr(&u.amr).to_owned()),
        sid: outcome.user.as_ref().map(|u| u.sid.clone()),
        grant_id: outcome.grant_id.clone(),
        cnf: dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
        act: outcome.act.clone(),
        may_act: None,
    };
    let access_token = mint::access_token(&keys, config.access_token_alg, &access_claims)?;

    let id_token = match &outcome.user {
        Some(user) if outcome.scope.contains("openid") => {
            let alg = outcome.client.metadata.id_token_alg();
            let (amr, idp) = crate::accounts::assurance::id_token_claims(&user.amr);
            let claims = IdTokenClaims {
                iss: config.issuer.clone(),
                sub: outcome.subject.clone(),
                aud: outcome.client.client_id.clone(),
                exp: now + config.id_token_ttl,
                iat: now,
                auth_time: user.auth_time,
                nonce: user.nonce.clone(),
                at_hash: Some(mint::at_hash(&access_token, alg)),
                azp: outcome.client.client_id.clone(),
                sid: user.sid.clone(),
                // RFC 8176 / OpenID Connect Core §2: the level the session's methods reach.
                acr: Some(crate::accounts::assurance::acr(&user.amr).to_owned()),
                amr,
                idp,
            };
            Some(mint::id_token(&keys, alg, &claims)?)
        }
        _ => None,
    };

    if let Some(user) = &outcome.user {
        crate::logout::joined(app, &outcome.client, &outcome.subject, &user.sid).await?;
    }
    let refresh_token = match outcome.refresh {
        RefreshPlan::None => None,
        RefreshPlan::Rotated(token) => Some(token),
        RefreshPlan::Start(mut record) => {
            let issued = refresh_format::issue(&app.hasher, &record.grant_id, 0);
            record.generation = 0;
            record.token_hash = issued.hash;
            if outcome.client.metadata.is_public() {
                record.dpop_jkt = dpop_jkt.map(str::to_owned);
            }
            app.store.insert_refresh_token(&record).await?;
            Some(issued.token)
        }
    };

    Ok(TokenResponse {
        access_token,
        token_type: if dpop_jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: config.access_token_ttl,
        scope,
        refresh_token,
        id_token,
        issued_token_type: None,
    })
}
