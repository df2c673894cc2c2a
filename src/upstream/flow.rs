//! The round trip to an upstream and back, for a pending interaction.
//!
//! `begin` seals the interaction at the stage `Stage::Upstream { upstream }` and what the
//! callback must check (`Trip`: the upstream, `state`, `nonce`, the PKCE verifier, an
//! expiry) into one value the browser keeps in a cookie; the associated data of that seal is
//! the hash of the browser's binding cookie, as for interactions, so it opens only in the
//! browser that left. No row is written per login and any node can finish it.
//!
//! `callback` opens it, then checks in order: the path's upstream, `state` (constant time),
//! an `error` answer, RFC 9207 `iss` (required when the upstream advertises it, compared
//! whenever present), the code's redemption (PKCE verifier, client authentication), the ID
//! token (`openidconnect`: signature over the upstream's JWKS, fetched again once on an
//! unknown key, `iss`, `aud`, `exp`, `nonce`; `azp` here), the userinfo answer's `sub`; then
//! finds the local user (`accounts`) and resumes the interaction as a login with
//! `amr: ["fed", …]` and `idp`. Any failure ends the flow at the client with `access_denied`
//! (the upstream or its answer said no, or was wrong) or `temporarily_unavailable` (it
//! could not be reached), with `state` and `iss`, never a 5xx page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreGenderClaim, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClientId, ClientSecret, IdToken, IdTokenClaims, IdTokenVerifier, IssuerUrl, Nonce,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::accounts::{self, Identity, LinkOutcome, Resolution};
use super::discovery::{self, Provider};
use crate::accounts::{assurance, session};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::authorize::flow::Stage;
use crate::authorize::{AuthorizeError, Decision, Pending, error_redirect, seals};
use crate::crypto::{constant_time_eq, random_token, sha256_b64};
use crate::protocol::form::Params;
use crate::protocol::upstream::{UpstreamKind, UpstreamSettings};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::UpstreamRecord;

/// How long the user has to log in at the upstream.
pub const TRIP_TTL: i64 = 10 * 60;
/// Longest sealed trip, in characters: it must fit in a cookie (4096 bytes with its name and
/// attributes). The interaction it carries is usually well under 1 KiB.
pub const MAX_TRIP_LEN: usize = 3800;

/// Additional ID token claims: everything, so the operator's `claims` mapping can name any.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AnyClaims {
    #[serde(flatten)]
    pub all: Map<String, Value>,
}
impl openidconnect::AdditionalClaims for AnyClaims {}

type UpstreamIdToken = IdToken<
    AnyClaims,
    CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// What travels sealed with the browser between `begin` (or `begin_link`) and `callback`.
#[derive(Serialize, Deserialize)]
struct Trip {
    upstream: String,
    state: String,
    nonce: String,
    verifier: String,
    purpose: Purpose,
    expires_at: i64,
}

/// What a round trip is for.
#[derive(Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
enum Purpose {
    /// A login for a pending interaction, sealed at the stage `Upstream { upstream }`.
    Login { interaction: String },
    /// Linking the identity to the user signed in with session `sid` (the account page); the
    /// callback acts only in that very session.
    Link { sid: String },
}

/// The browser goes to `location`, holding `trip` in the upstream cookie.
#[derive(Debug)]
pub struct Departure {
    pub location: String,
    pub trip: String,
    /// Whether the cookie must be `Secure` (an https issuer).
    pub secure: bool,
}

/// The flow ends at the client with `error` (or, for a device's request, which has no
/// redirect URI, on an error page).
fn end_at_client(app: &App, pending: &Pending, error: OAuthError) -> AuthorizeError {
    if pending.request.device_user_code.is_some() {
        return AuthorizeError::Page(error);
    }
    AuthorizeError::Redirect(error_redirect(
        app,
        &pending.request.redirect_uri,
        pending.request.response_mode,
        pending.request.state.as_deref(),
        &error,
    ))
}

fn denied(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, description)
}

fn unavailable(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::TemporarilyUnavailable, description)
}

/// Sends the browser of `pending` to log in at the upstream `upstream_id`.
pub async fn begin(
    app: &App,
    pending: &Pending,
    upstream_id: &str,
) -> Result<Departure, AuthorizeError> {
    let Some(record) = app.store.get_upstream(upstream_id).await? else {
        return Err(end_at_client(
            app,
            pending,
            OAuthError::invalid_request("no such upstream identity provider"),
        ));
    };
    let settings = &record.settings;
    let provider = match discovery::provider(app, settings).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(upstream = %upstream_id, error = %e, "upstream discovery failed");
            crate::telemetry::upstream_login(upstream_id, "unavailable");
            return Err(end_at_client(
                app,
                pending,
                unavailable("the identity provider cannot be reached; try again later"),
            ));
        }
    };
    let stage = Stage::Upstream {
        upstream: upstream_id.to_owned(),
    };
    let interaction = seals(app)
        .advance(
            &pending.finish_id,
            pending.expires_at,
            &pending.request,
            &pending.binding,
            &stage,
        )
        .map_err(AuthorizeError::Page)?;
    let trip = Trip {
        upstream: upstream_id.to_owned(),
        state: random_token(32),
        nonce: random_token(32),
        verifier: random_token(32),
        purpose: Purpose::Login { interaction },
        expires_at: app.now() + TRIP_TTL,
    };
    let location = authorization_url(app, settings, &provider, &trip)
        .map_err(|e| end_at_client(app, pending, e))?;
    let sealed = seal_trip(app, &trip, &pending.binding).map_err(AuthorizeError::Page)?;
    if sealed.len() > MAX_TRIP_LEN {
        return Err(end_at_client(
            app,
            pending,
            OAuthError::invalid_request(
                "the authorization request is too large to continue at an identity provider",
            ),
        ));
    }
    Ok(Departure {
        location,
        trip: sealed,
        secure: app.config.issuer_is_https,
    })
}

/// Sends the browser of the signed-in `session` (holding the binding cookie `binding`) to the
/// upstream `upstream_id`, to link the identity it comes back with to the session's user.
/// Failures are the account page's to show.
pub async fn begin_link(
    app: &App,
    session: &crate::accounts::session::Session,
    binding: &str,
    upstream_id: &str,
) -> Result<Departure, OAuthError> {
    let record = app
        .store
        .get_upstream(upstream_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("no such upstream identity provider"))?;
    let provider = discovery::provider(app, &record.settings)
        .await
        .map_err(|e| {
            tracing::warn!(upstream = %upstream_id, error = %e, "upstream discovery failed");
            unavailable("the identity provider cannot be reached; try again later")
        })?;
    let trip = Trip {
        upstream: upstream_id.to_owned(),
        state: random_token(32),
        nonce: random_token(32),
        verifier: random_token(32),
        purpose: Purpose::Link {
            sid: session.sid.clone(),
        },
        expires_at: app.now() + TRIP_TTL,
    };
    let location = authorization_url(app, &record.settings, &provider, &trip)?;
    Ok(Departure {
        location,
        trip: seal_trip(app, &trip, binding)?,
        secure: app.config.issuer_is_https,
    })
}

/// The upstream's authorization request: code flow, PKCE S256, `state`, `nonce` (OpenID
/// Connect Core §3.1.2.1, RFC 7636).
fn authorization_url(
    app: &App,
    settings: &UpstreamSettings,
    provider: &Provider,
    trip: &Trip,
) -> Result<String, OAuthError> {
    let mut url = url::Url::parse(&provider.authorization_endpoint).map_err(|_| {
        unavailable("the identity provider's authorization endpoint is not a valid URL")
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair(
                "redirect_uri",
                &super::redirect_uri(&app.config.issuer, &settings.id),
            )
            .append_pair("state", &trip.state)
            .append_pair("code_challenge", &sha256_b64(trip.verifier.as_bytes()))
            .append_pair("code_challenge_method", "S256");
        if !settings.scope.is_empty() {
            query.append_pair("scope", &settings.scope);
        }
        if settings.kind == UpstreamKind::Oidc {
            query.append_pair("nonce", &trip.nonce);
        }
    }
    Ok(url.to_string())
}

fn seal_trip(app: &App, trip: &Trip, binding: &str) -> Result<String, OAuthError> {
    let plain = serde_json::to_vec(trip).map_err(OAuthError::server_error)?;
    let sealed = app
        .upstreams
        .trips
        .seal(&plain, &app.hasher.hash(binding))
        .map_err(OAuthError::server_error)?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

fn open_trip(app: &App, sealed: &str, binding: &str) -> Option<Trip> {
    if sealed.is_empty() || sealed.len() > MAX_TRIP_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let plain = app
        .upstreams
        .trips
        .open(&bytes, &app.hasher.hash(binding))
        .ok()?;
    let trip: Trip = serde_json::from_slice(&plain).ok()?;
    (trip.expires_at > app.now()).then_some(trip)
}

/// An upstream's callback, as the HTTP layer reads it.
pub struct Callback<'a> {
    /// The upstream id in the path.
    pub upstream: &'a str,
    pub params: &'a Params,
    /// The upstream cookie and the binding cookie.
    pub trip: Option<&'a str>,
    pub binding: Option<&'a str>,
    /// The browser's previous session cookie (replaced by the new session).
    pub session_cookie: Option<&'a str>,
    /// Where the browser is: the new session's device and address, the events' address.
    pub from: &'a session::StartedFrom,
}

/// How a callback ended.
pub enum Returned {
    /// No trip for this browser and upstream (expired, forged, another browser's, or the
    /// interaction is gone): the expired page.
    Expired,
    /// The flow goes on (or ends at the client); `session_cookie` is the new session's cookie
    /// when the login succeeded.
    Decided {
        decision: Result<Decision, AuthorizeError>,
        session_cookie: Option<String>,
    },
    /// A link from the account page: linked (or already), or why not.
    Linked(Result<(), OAuthError>),
}

/// Handles an upstream's callback.
pub async fn callback(app: &App, cb: Callback<'_>) -> Returned {
    let (Some(sealed), Some(binding)) = (cb.trip, cb.binding) else {
        return Returned::Expired;
    };
    let Some(trip) = open_trip(app, sealed, binding) else {
        return Returned::Expired;
    };
    if trip.upstream != cb.upstream {
        return Returned::Expired;
    }
    let interaction = match &trip.purpose {
        Purpose::Login { interaction } => interaction,
        Purpose::Link { sid } => return link_returned(app, &cb, &trip, sid).await,
    };
    let pending = match crate::authorize::load_pending(app, interaction, Some(binding)).await {
        Ok(Some(p)) if p.stage.admits_upstream(cb.upstream) => p,
        Ok(_) => return Returned::Expired,
        Err(e) => {
            return Returned::Decided {
                decision: Err(AuthorizeError::Page(e.into())),
                session_cookie: None,
            };
        }
    };
    match returned(app, &cb, &trip).await {
        Ok((identity_user, amr)) => {
            let event = crate::accounts::login::succeeded(
                &identity_user.sub,
                cb.from.ip,
                Some(&pending.client.client_id),
            )
            .detail("idp", cb.upstream.to_owned());
            // The session starts with `fed` alone (one factor); `continue_after_login` then
            // asks `flow::next`, as after a password, so a user who owes a local second
            // factor is sent to it (or to enrol one) in this session before any consent or code.
            let started = session::begin(
                app,
                cb.session_cookie,
                cb.from,
                &identity_user.sub,
                &amr,
                Some(event),
            )
            .await;
            let (cookie, session) = match started {
                Ok(v) => v,
                Err(e) => {
                    return Returned::Decided {
                        decision: Err(end_at_client(app, &pending, service_error(e))),
                        session_cookie: None,
                    };
                }
            };
            let decision = crate::authorize::continue_after_login(app, &pending, &session).await;
            Returned::Decided {
                decision,
                session_cookie: Some(cookie),
            }
        }
        Err(error) => {
            let outcome = if error.code == ErrorCode::TemporarilyUnavailable {
                "unavailable"
            } else {
                "denied"
            };
            crate::telemetry::upstream_login(cb.upstream, outcome);
            audit::record(
                app,
                Event::new(Kind::UpstreamLoginFailed)
                    .client(&pending.client.client_id)
                    .ip(cb.from.ip)
                    .detail("upstream", cb.upstream.to_owned())
                    .detail("reason", error.description.to_string()),
            )
            .await;
            // The interaction ends here: a second callback cannot finish it.
            let decision = match app
                .store
                .finish_interaction(&pending.finish_id, pending.expires_at)
                .await
            {
                Ok(_) => Err(end_at_client(app, &pending, error)),
                Err(e) => Err(end_at_client(app, &pending, service_error(e.into()))),
            };
            Returned::Decided {
                decision,
                session_cookie: None,
            }
        }
    }
}

/// Our own failure during an upstream login still ends at the client, as
/// `temporarily_unavailable` (the cause is logged, never sent).
fn service_error(e: OAuthError) -> OAuthError {
    crate::http::error::log_cause(&e);
    unavailable("the sign-in could not be completed; try again later")
}

/// The callback of a link started on the account page: only in the session that started it,
/// every check of a login, then the identity is linked to that session's user (never taken
/// from another user).
async fn link_returned(app: &App, cb: &Callback<'_>, trip: &Trip, sid: &str) -> Returned {
    let session = match session::current(app, cb.session_cookie).await {
        Ok(Some(s)) if s.sid == sid => s,
        Ok(_) => return Returned::Expired,
        Err(e) => return Returned::Linked(Err(e)),
    };
    let identity = match verified_identity(app, cb, trip).await {
        Ok((_, identity)) => identity,
        Err(error) => {
            crate::telemetry::upstream_login(cb.upstream, "denied");
            audit::record(
                app,
                Event::new(Kind::UpstreamLoginFailed)
                    .user(&session.user_sub)
                    .ip(cb.from.ip)
                    .detail("upstream", cb.upstream.to_owned())
                    .detail("reason", error.description.to_string()),
            )
            .await;
            return Returned::Linked(Err(error));
        }
    };
    let linked = accounts::link_to_user(app, cb.upstream, &identity, &session.user_sub).await;
    Returned::Linked(match linked {
        Ok(LinkOutcome::Linked | LinkOutcome::AlreadyYours) => Ok(()),
        Ok(LinkOutcome::SomeoneElses) => Err(denied(
            "this identity is linked to another account; unlink it there first",
        )),
        Err(e) => Err(service_error(e)),
    })
}

/// Every check of the callback, then the local user: the user and the `amr` of the session.
async fn returned(
    app: &App,
    cb: &Callback<'_>,
    trip: &Trip,
) -> Result<(crate::store::UserRecord, String), OAuthError> {
    let (record, identity) = verified_identity(app, cb, trip).await?;
    let settings = &record.settings;
    let resolution = accounts::resolve(app, settings, &identity)
        .await
        .map_err(service_error)?;
    let (user, outcome) = match resolution {
        Resolution::Existing(u) => (u, "login"),
        Resolution::Linked(u) => (u, "linked"),
        Resolution::Created(u) => (u, "created"),
        Resolution::NoAccount => {
            crate::telemetry::upstream_login(cb.upstream, "refused");
            return Err(denied("no local account may sign in with this identity"));
        }
    };
    if user.disabled {
        return Err(denied("this account is disabled"));
    }
    crate::telemetry::upstream_login(cb.upstream, outcome);
    Ok((user, assurance::federated(cb.upstream, &identity.amr)))
}

/// Every check of the callback, in order: `state`, the upstream still registered and
/// reachable, RFC 9207 `iss`, an `error` answer, the code's redemption, the ID token (or the
/// userinfo answer of a plain OAuth 2.0 upstream). The upstream and the identity it vouches for.
async fn verified_identity(
    app: &App,
    cb: &Callback<'_>,
    trip: &Trip,
) -> Result<(UpstreamRecord, Identity), OAuthError> {
    let state_ok = cb
        .params
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), trip.state.as_bytes()));
    if !state_ok {
        return Err(denied(
            "the identity provider's answer does not match this sign-in (state)",
        ));
    }
    let record = app
        .store
        .get_upstream(cb.upstream)
        .await
        .map_err(|e| service_error(e.into()))?
        .ok_or_else(|| denied("the identity provider was removed"))?;
    let settings = &record.settings;
    let provider = discovery::provider(app, settings).await.map_err(|e| {
        tracing::warn!(upstream = %cb.upstream, error = %e, "upstream discovery failed");
        unavailable("the identity provider cannot be reached; try again later")
    })?;
    check_iss(cb.params, &provider)?;
    if cb.params.get("error").is_some() {
        return Err(denied("the identity provider did not sign the user in"));
    }
    let code = cb
        .params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| denied("the identity provider sent no code"))?;
    let tokens = redeem(app, &record, &provider, code, &trip.verifier).await?;
    let identity = match settings.kind {
        UpstreamKind::Oidc => oidc_identity(app, &record, provider, &tokens, &trip.nonce).await?,
        UpstreamKind::Oauth2 => oauth2_identity(app, settings, &provider, &tokens).await?,
    };
    Ok((record, identity))
}

/// RFC 9207 §2.4: an upstream that advertises `iss` in authorization responses must send
/// its issuer there; one that sends `iss` anyway must send its own.
fn check_iss(params: &Params, provider: &Provider) -> Result<(), OAuthError> {
    let sent = params.get("iss");
    match (sent, &provider.issuer) {
        (Some(iss), Some(issuer)) if iss == issuer => Ok(()),
        // An oauth2 upstream configured without an issuer: nothing to compare it with.
        (Some(_), None) => Ok(()),
        (Some(_), Some(_)) => Err(denied(
            "the identity provider's answer names another issuer (iss)",
        )),
        (None, _) if provider.iss_parameter_supported => Err(denied(
            "the identity provider's answer carries no iss, though it advertises one",
        )),
        (None, _) => Ok(()),
    }
}

/// The upstream's token response, as much of it as a login needs.
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
}

/// Redeems the code at the upstream's token endpoint with the PKCE verifier, authenticating
/// with the client secret (HTTP Basic per RFC 6749 §2.3.1, or in the body where the upstream
/// only takes that).
async fn redeem(
    app: &App,
    record: &UpstreamRecord,
    provider: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Tokens, OAuthError> {
    let settings = &record.settings;
    let secret =
        super::open_secret(app, &settings.id, &record.secret_sealed).map_err(service_error)?;
    let redirect_uri = super::redirect_uri(&app.config.issuer, &settings.id);
    let request = token_request(settings, provider, &secret, &redirect_uri, code, verifier)?;
    let response = app.outbound.send(request).await.map_err(|e| {
        tracing::warn!(upstream = %settings.id, error = %e, "upstream token request failed");
        unavailable("the identity provider cannot be reached; try again later")
    })?;
    if response.status().is_server_error() {
        return Err(unavailable("the identity provider failed; try again later"));
    }
    if !response.status().is_success() {
        return Err(denied("the identity provider refused the code"));
    }
    serde_json::from_slice(response.body())
        .map_err(|_| denied("the identity provider's token response is not valid"))
}

/// The token request (built apart: the form serializer must not live across an await).
fn token_request(
    settings: &UpstreamSettings,
    provider: &Provider,
    secret: &str,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<openidconnect::HttpRequest, OAuthError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    let mut request = openidconnect::http::Request::builder()
        .method("POST")
        .uri(provider.token_endpoint.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    if provider.secret_in_body {
        form.append_pair("client_id", &settings.client_id)
            .append_pair("client_secret", secret);
    } else {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&settings.client_id),
            enc(secret)
        ));
        request = request.header("authorization", format!("Basic {basic}"));
    }
    request
        .body(form.finish().into_bytes())
        .map_err(|_| unavailable("the identity provider's token endpoint is not usable"))
}

/// The identity an OpenID provider vouches for: its ID token, verified, with the userinfo
/// answer's claims added when it has a userinfo endpoint (the `sub` must agree, OpenID
/// Connect Core §5.3.2).
async fn oidc_identity(
    app: &App,
    record: &UpstreamRecord,
    provider: std::sync::Arc<Provider>,
    tokens: &Tokens,
    nonce: &str,
) -> Result<Identity, OAuthError> {
    let settings = &record.settings;
    let raw = tokens
        .id_token
        .as_deref()
        .ok_or_else(|| denied("the identity provider sent no ID token"))?;
    let id_token: UpstreamIdToken = serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| denied("the identity provider's ID token is malformed"))?;
    let secret =
        super::open_secret(app, &settings.id, &record.secret_sealed).map_err(service_error)?;
    let mut claims = match verify(app, settings, &provider, &secret, &id_token, nonce) {
        Ok(c) => c,
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::NoMatchingKey,
        )) => {
            // The upstream may have rotated its keys: fetch them again, once.
            let refreshed = discovery::refresh_jwks(app, &settings.id, &provider)
                .await
                .ok_or_else(|| denied("the ID token is signed with an unknown key"))?;
            verify(app, settings, &refreshed, &secret, &id_token, nonce)
                .map_err(|_| denied("the ID token is signed with an unknown key"))?
        }
        Err(e) => {
            tracing::info!(upstream = %settings.id, error = %e, "upstream ID token refused");
            return Err(denied("the identity provider's ID token is not valid"));
        }
    };
    // openidconnect leaves azp to the caller: OpenID Connect Core §3.1.3.7 steps 4 and 5.
    let audiences = claims
        .get("aud")
        .map_or(0, |a| a.as_array().map_or(1, Vec::len));
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != settings.client_id => {
            return Err(denied("the ID token was issued to another party (azp)"));
        }
        None if audiences > 1 => {
            return Err(denied("the ID token has several audiences and no azp"));
        }
        _ => {}
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(userinfo) = &provider.userinfo_endpoint {
        match fetch_userinfo(app, userinfo, &tokens.access_token).await {
            Ok(extra) => {
                if extra.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                    return Err(denied("the userinfo answer names another subject"));
                }
                for (k, v) in extra {
                    claims.entry(k).or_insert(v);
                }
            }
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => return Err(e),
            Err(_) => {
                tracing::info!(upstream = %settings.id, "upstream userinfo refused; using the ID token alone");
            }
        }
    }
    Ok(Identity::from_claims(subject, claims))
}

/// Verifies an ID token with `openidconnect`: signature over the provider's keys
/// (asymmetric algorithms only), `iss`, `aud`, `exp` against Latchkey's clock, `nonce`.
fn verify(
    app: &App,
    settings: &UpstreamSettings,
    provider: &Provider,
    secret: &str,
    id_token: &UpstreamIdToken,
    nonce: &str,
) -> Result<Map<String, Value>, openidconnect::ClaimsVerificationError> {
    use openidconnect::ClaimsVerificationError as E;
    let issuer = IssuerUrl::new(provider.issuer.clone().unwrap_or_default())
        .map_err(|e| E::Other(e.to_string()))?;
    let jwks = provider
        .jwks
        .clone()
        .unwrap_or_else(|| openidconnect::JsonWebKeySet::<CoreJsonWebKey>::new(Vec::new()));
    let now = app.now();
    let verifier: IdTokenVerifier<'_, CoreJsonWebKey> = IdTokenVerifier::new_confidential_client(
        ClientId::new(settings.client_id.clone()),
        ClientSecret::new(secret.to_owned()),
        issuer,
        jwks,
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ])
    .set_time_fn(move || {
        chrono::DateTime::from_timestamp(now, 0).unwrap_or(chrono::DateTime::UNIX_EPOCH)
    });
    let claims: &IdTokenClaims<AnyClaims, CoreGenderClaim> =
        id_token.claims(&verifier, &Nonce::new(nonce.to_owned()))?;
    let mut all = match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => return Err(E::Other("the ID token's claims cannot be read".into())),
    };
    for (k, v) in &claims.additional_claims().all {
        all.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(all)
}

/// GETs a userinfo endpoint with the access token; a JSON object, or an error.
async fn fetch_userinfo(
    app: &App,
    url: &str,
    access_token: &str,
) -> Result<Map<String, Value>, OAuthError> {
    let request = openidconnect::http::Request::builder()
        .method("GET")
        .uri(url)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {access_token}"))
        .body(Vec::new())
        .map_err(|_| unavailable("the identity provider's userinfo endpoint is not usable"))?;
    let response = app.outbound.send(request).await.map_err(|e| {
        tracing::warn!(error = %e, "upstream userinfo request failed");
        unavailable("the identity provider cannot be reached; try again later")
    })?;
    if response.status().is_server_error() {
        return Err(unavailable("the identity provider failed; try again later"));
    }
    if !response.status().is_success() {
        return Err(denied("the identity provider refused the userinfo request"));
    }
    match serde_json::from_slice(response.body()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(denied(
            "the identity provider's userinfo answer is not a JSON object",
        )),
    }
}

/// The identity a plain OAuth 2.0 upstream vouches for: its userinfo answer, whose
/// `subject_claim` (a string or a number) is the stable identifier.
async fn oauth2_identity(
    app: &App,
    settings: &UpstreamSettings,
    provider: &Provider,
    tokens: &Tokens,
) -> Result<Identity, OAuthError> {
    let url = provider
        .userinfo_endpoint
        .as_deref()
        .ok_or_else(|| denied("the identity provider has no userinfo endpoint"))?;
    let claims = fetch_userinfo(app, url, &tokens.access_token).await?;
    let claim = settings.subject_claim.as_deref().unwrap_or("sub");
    let subject = match claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(denied("the identity provider's answer has no subject")),
    };
    Ok(Identity::from_claims(subject, claims))
}
