//! What an upstream's endpoints and signing keys are. For `kind: "oidc"` they come from the
//! issuer's discovery document and JWKS, fetched by the `openidconnect` crate (which checks
//! that the document names the issuer it was fetched for) over the node's outbound client
//! (5 s, no redirects, 256 KiB, checked addresses). Each node caches them for `DISCOVERY_TTL`
//! and fetches them again after; when the upstream cannot be reached then, the stale copy
//! serves for up to `STALE_GRACE` more, so a short outage upstream does not stop logins. The
//! JWKS is fetched again when an ID token names a key it does not hold (a rotation upstream),
//! at most once per `JWKS_REFRESH_MIN` so a stream of forged `kid`s cannot make Latchkey a
//! request amplifier. `kind: "oauth2"` takes its endpoints from the settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySet,
    ProviderMetadata,
};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::outbound::{Outbound, OutboundError};
use crate::protocol::upstream::{UpstreamKind, UpstreamSettings};

/// How long a node uses a discovery document before fetching it again.
pub const DISCOVERY_TTL: i64 = 3600;
/// How long past its TTL a cached document still serves while the upstream is unreachable.
pub const STALE_GRACE: i64 = 24 * 3600;
/// The least time between two JWKS fetches of one upstream for unknown key ids.
pub const JWKS_REFRESH_MIN: i64 = 30;

/// RFC 9207 §3: the one discovery member the core types leave out.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IssParameter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for IssParameter {}

type Metadata = ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// An upstream's endpoints and keys, as a login uses them.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The issuer the ID token and the RFC 9207 `iss` must name (`None`: an oauth2
    /// upstream configured without one).
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    /// Whether the authorization response carries `iss` (RFC 9207): then it must.
    pub iss_parameter_supported: bool,
    /// Send the client secret in the body rather than as HTTP Basic.
    pub secret_in_body: bool,
    /// The upstream's keys (oidc only).
    pub jwks: Option<CoreJsonWebKeySet>,
    jwks_uri: Option<String>,
    fetched_at: i64,
    /// When the JWKS was last fetched for an unknown key id (none yet: the first such
    /// fetch may happen at once).
    kid_refreshed_at: Option<i64>,
}

/// Why an upstream's provider could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryFailure {
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the upstream's discovery document is not valid: {0}")]
    Invalid(String),
}

/// A node's discovered providers, by upstream id.
#[derive(Default)]
pub struct ProviderCache {
    entries: Mutex<HashMap<String, Arc<Provider>>>,
}

impl ProviderCache {
    fn get(&self, id: &str) -> Option<Arc<Provider>> {
        self.entries.lock().ok()?.get(id).cloned()
    }

    fn put(&self, id: &str, provider: Arc<Provider>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(id.to_owned(), provider);
        }
    }

    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}

/// The `openidconnect` crate's HTTP client: the node's outbound client and its rules.
fn http_client(
    outbound: &Outbound,
) -> impl Fn(
    HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, OutboundError>> + Send>,
> + '_ {
    move |request| {
        let outbound = outbound.clone();
        Box::pin(async move { outbound.send(request).await })
    }
}

/// The provider of `settings`, from the cache when fresh.
pub async fn provider(
    app: &App,
    settings: &UpstreamSettings,
) -> Result<Arc<Provider>, DiscoveryFailure> {
    let issuer = settings.issuer.clone().unwrap_or_default();
    if settings.kind == UpstreamKind::Oauth2 {
        return Ok(Arc::new(Provider {
            issuer: settings.issuer.clone(),
            authorization_endpoint: settings.authorization_endpoint.clone().unwrap_or_default(),
            token_endpoint: settings.token_endpoint.clone().unwrap_or_default(),
            userinfo_endpoint: settings.userinfo_endpoint.clone(),
            iss_parameter_supported: false,
            secret_in_body: true,
            jwks: None,
            jwks_uri: None,
            fetched_at: app.now(),
            kid_refreshed_at: None,
        }));
    }
    let now = app.now();
    let cached = app
        .upstreams
        .providers
        .get(&settings.id)
        .filter(|p| p.issuer.as_deref() == Some(issuer.as_str()));
    if let Some(p) = &cached
        && now - p.fetched_at < DISCOVERY_TTL
    {
        return Ok(p.clone());
    }
    match discover(app, &issuer, now).await {
        Ok(fresh) => {
            let fresh = Arc::new(fresh);
            app.upstreams.providers.put(&settings.id, fresh.clone());
            Ok(fresh)
        }
        Err(e) => match cached {
            Some(stale) if now - stale.fetched_at < DISCOVERY_TTL + STALE_GRACE => {
                tracing::warn!(upstream = %settings.id, error = %e,
                    "upstream discovery failed; using the cached document");
                Ok(stale)
            }
            _ => Err(e),
        },
    }
}

async fn discover(app: &App, issuer: &str, now: i64) -> Result<Provider, DiscoveryFailure> {
    let issuer_url =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| DiscoveryFailure::Invalid(e.to_string()))?;
    let http = http_client(&app.outbound);
    let metadata = Metadata::discover_async(issuer_url, &http)
        .await
        .map_err(|e| match e {
            openidconnect::DiscoveryError::Request(inner) => {
                DiscoveryFailure::Unreachable(inner.to_string())
            }
            openidconnect::DiscoveryError::Response(status, _, _) => {
                DiscoveryFailure::Unreachable(format!("status {status}"))
            }
            other => DiscoveryFailure::Invalid(other.to_string()),
        })?;
    let token_endpoint = metadata
        .token_endpoint()
        .ok_or_else(|| DiscoveryFailure::Invalid("no token_endpoint".into()))?
        .to_string();
    let methods = metadata.token_endpoint_auth_methods_supported();
    let secret_in_body = methods.is_some_and(|m| {
        !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && m.contains(&CoreClientAuthMethod::ClientSecretPost)
    });
    Ok(Provider {
        issuer: Some(metadata.issuer().to_string()),
        authorization_endpoint: metadata.authorization_endpoint().to_string(),
        token_endpoint,
        userinfo_endpoint: metadata.userinfo_endpoint().map(|u| u.to_string()),
        iss_parameter_supported: metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            .unwrap_or(false),
        secret_in_body,
        jwks: Some(metadata.jwks().clone()),
        jwks_uri: Some(metadata.jwks_uri().to_string()),
        fetched_at: now,
        kid_refreshed_at: None,
    })
}

/// The provider with its JWKS fetched again (an ID token named a key it does not hold);
/// `None` when the last fetch was too recent or the fetch failed.
pub async fn refresh_jwks(app: &App, id: &str, provider: &Provider) -> Option<Arc<Provider>> {
    let now = app.now();
    let current = app.upstreams.providers.get(id);
    let last = current
        .as_ref()
        .map_or(provider.kid_refreshed_at, |p| p.kid_refreshed_at);
    if last.is_some_and(|t| now - t < JWKS_REFRESH_MIN) {
        return None;
    }
    let uri = openidconnect::JsonWebKeySetUrl::new(provider.jwks_uri.clone()?).ok()?;
    let http = http_client(&app.outbound);
    let jwks: CoreJsonWebKeySet = match JsonWebKeySet::fetch_async(&uri, &http).await {
        Ok(jwks) => jwks,
        Err(e) => {
            tracing::warn!(upstream = %id, error = %e, "upstream JWKS could not be fetched");
            return None;
        }
    };
    let refreshed = Arc::new(Provider {
        jwks: Some(jwks),
        kid_refreshed_at: Some(now),
        ..provider.clone()
    });
    app.upstreams.providers.put(id, refreshed.clone());
    Some(refreshed)
}
