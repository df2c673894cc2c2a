//! Dynamic client registration (RFC 7591) and its management (RFC 7592), for clients that
//! register themselves: with an initial access token an operator handed out
//! (`POST /admin/initial-access-tokens`), or with none when `LATCHKEY_OPEN_REGISTRATION` is
//! on. The registration is validated exactly as the admin API validates one, and more
//! strictly: a client that registers itself cannot make itself first-party (skip consent),
//! a resource server (`introspection: any`) or an audience of other resources, and every URL
//! it names must be `https` to a public address (the outbound rules, `outbound::check_url`).
//!
//! Each dynamically registered client gets a registration access token (stored as a keyed
//! hash) for reading, replacing and deleting its registration; it stays the same across
//! updates. A deleted client's registration URI answers 401.

use std::net::IpAddr;

use crate::accounts::throttle::{self, Admission};
use crate::app::App;
use crate::crypto::{constant_time_eq, random_secret};
use crate::protocol::admin::{InitialAccessTokenResponse, RegistrationResponse};
use crate::protocol::client::{ClientRegistration, IntrospectionAccess};
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError};

/// The longest an initial access token may live: a year.
pub const MAX_INITIAL_TOKEN_LIFETIME: i64 = 365 * 24 * 3600;
/// The most uses one initial access token may have.
pub const MAX_INITIAL_TOKEN_USES: i64 = 1_000_000;

/// `POST /admin/initial-access-tokens`: a token for `max_uses` registrations within
/// `expires_in` seconds, shown this once.
pub async fn create_initial_token(
    app: &App,
    expires_in: i64,
    max_uses: i64,
) -> Result<InitialAccessTokenResponse, OAuthError> {
    if !(1..=MAX_INITIAL_TOKEN_LIFETIME).contains(&expires_in) {
        return Err(OAuthError::invalid_request(
            "expires_in must be between 1 second and one year",
        ));
    }
    if !(1..=MAX_INITIAL_TOKEN_USES).contains(&max_uses) {
        return Err(OAuthError::invalid_request(
            "max_uses must be between 1 and 1000000",
        ));
    }
    let token = random_secret();
    let now = app.now();
    let expires_at = now + expires_in;
    app.store
        .insert_initial_token(&app.hasher.hash(&token), max_uses, now, expires_at)
        .await?;
    crate::audit::record(
        app,
        crate::audit::Event::new(crate::audit::Kind::InitialAccessTokenCreated)
            .detail("max_uses", max_uses)
            .detail("expires_at", expires_at),
    )
    .await;
    Ok(InitialAccessTokenResponse {
        token,
        expires_at,
        max_uses,
    })
}

fn invalid_token(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description)
}

/// `POST /register`: `bearer` is the initial access token the request carried (if any),
/// `ip` its address.
pub async fn register(
    app: &App,
    bearer: Option<&str>,
    ip: Option<IpAddr>,
    registration: ClientRegistration,
) -> Result<RegistrationResponse, OAuthError> {
    let now = app.now();
    let store = app.store.as_ref();
    if app.config.open_registration {
        // Anyone may register: bound what one address can write.
        if let Some(ip) = ip {
            let key = throttle::open_registration_ip_key(ip);
            if let Admission::Refused { retry_after, .. } =
                throttle::admit(store, &[(&key, &throttle::OPEN_REGISTRATION_IP)], now).await?
            {
                return Err(OAuthError::slow_down(retry_after));
            }
        }
    } else {
        // A guess at an initial access token counts per address before it is checked.
        let key = ip.map(throttle::registration_ip_key);
        if let Some(k) = &key
            && let Admission::Refused { retry_after, .. } =
                throttle::admit(store, &[(k, &throttle::REGISTRATION_TOKEN_IP)], now).await?
        {
            return Err(OAuthError::slow_down(retry_after));
        }
        let Some(token) = bearer.filter(|t| t.len() <= 256) else {
            return Err(invalid_token("an initial access token is required"));
        };
        if !store
            .spend_initial_token(&app.hasher.hash(token), now)
            .await?
        {
            return Err(invalid_token(
                "the initial access token is unknown, expired or used up",
            ));
        }
        if let Some(k) = &key {
            store
                .settle_success(None, Some((k, &throttle::REGISTRATION_TOKEN_IP)))
                .await?;
        }
    }
    check_self_registration(app, &registration)?;
    let client = super::clients::create(app, registration).await?;
    let token = random_secret();
    store
        .set_registration_token(&client.client_id, &app.hasher.hash(&token), now)
        .await?;
    Ok(RegistrationResponse {
        registration_client_uri: registration_uri(app, &client.client_id),
        registration_access_token: token,
        client,
    })
}

fn registration_uri(app: &App, client_id: &str) -> String {
    format!("{}{}/{client_id}", app.config.issuer, paths::REGISTRATION)
}

/// Whether `bearer` is the registration access token of `client_id`. A client that was not
/// registered dynamically, or was deleted, has none.
async fn authorized(app: &App, client_id: &str, bearer: Option<&str>) -> Result<(), OAuthError> {
    let refused = || invalid_token("the registration access token is not valid for this client");
    let Some(token) = bearer.filter(|t| t.len() <= 256) else {
        return Err(refused());
    };
    if client_id.len() > 256 {
        return Err(refused());
    }
    let Some(stored) = app.store.registration_token(client_id).await? else {
        return Err(refused());
    };
    if !constant_time_eq(&stored, &app.hasher.hash(token)) {
        return Err(refused());
    }
    Ok(())
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    app: &App,
    client_id: &str,
    bearer: Option<&str>,
) -> Result<RegistrationResponse, OAuthError> {
    authorized(app, client_id, bearer).await?;
    let client = super::clients::get(app, client_id)
        .await
        .map_err(|_| invalid_token("the client is gone"))?;
    Ok(RegistrationResponse {
        registration_client_uri: registration_uri(app, client_id),
        registration_access_token: bearer.unwrap_or_default().to_owned(),
        client,
    })
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the whole registration; the body
/// carries the `client_id`. The registration access token stays the same.
pub async fn replace(
    app: &App,
    client_id: &str,
    bearer: Option<&str>,
    registration: ClientRegistration,
) -> Result<RegistrationResponse, OAuthError> {
    authorized(app, client_id, bearer).await?;
    if registration.client_id.as_deref() != Some(client_id) {
        return Err(OAuthError::invalid_request(
            "the body must carry this client's client_id (RFC 7592 §2.2)",
        ));
    }
    check_self_registration(app, &registration)?;
    let client = super::clients::replace(app, client_id, registration).await?;
    Ok(RegistrationResponse {
        registration_client_uri: registration_uri(app, client_id),
        registration_access_token: bearer.unwrap_or_default().to_owned(),
        client,
    })
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3).
pub async fn delete(app: &App, client_id: &str, bearer: Option<&str>) -> Result<(), OAuthError> {
    authorized(app, client_id, bearer).await?;
    app.store.delete_registration(client_id).await?;
    match super::clients::delete(app, client_id).await {
        // Deleted by an operator in between: gone all the same.
        Ok(())
        | Err(OAuthError {
            code: ErrorCode::NotFound,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What a client may not give itself, and the outbound rules for every URL it names.
fn check_self_registration(app: &App, registration: &ClientRegistration) -> Result<(), OAuthError> {
    let refuse = |what: &str| {
        Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("{what} cannot be set through dynamic registration; ask the operator"),
        ))
    };
    if registration.first_party == Some(true) {
        return refuse("first_party");
    }
    if registration.introspection == Some(IntrospectionAccess::Any) {
        return refuse("introspection any");
    }
    if registration
        .token_exchange_audiences
        .as_ref()
        .is_some_and(|a| !a.is_empty())
    {
        return refuse("token_exchange_audiences");
    }
    if registration
        .allowed_resources
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return refuse("allowed_resources");
    }
    for uri in &registration.redirect_uris {
        app.outbound.check_url(uri).map_err(|e| {
            OAuthError::new(ErrorCode::InvalidRedirectUri, format!("redirect_uris: {e}"))
        })?;
    }
    let others = registration
        .post_logout_redirect_uris
        .iter()
        .map(|u| ("post_logout_redirect_uris", u))
        .chain(registration.jwks_uri.iter().map(|u| ("jwks_uri", u)))
        .chain(
            registration
                .backchannel_logout_uri
                .iter()
                .map(|u| ("backchannel_logout_uri", u)),
        )
        .chain(registration.client_uri.iter().map(|u| ("client_uri", u)))
        .chain(registration.logo_uri.iter().map(|u| ("logo_uri", u)));
    for (name, uri) in others {
        app.outbound.check_url(uri).map_err(|e| {
            OAuthError::new(ErrorCode::InvalidClientMetadata, format!("{name}: {e}"))
        })?;
    }
    Ok(())
}
