//! Passkeys (WebAuthn Level 3): registration by a signed-in user, and sign-in with a
//! discoverable credential from the login page. Every WebAuthn check (challenge, origin,
//! relying-party id hash, signature, user verification, counter against the stored one) is
//! webauthn-rs'; this module only carries its ceremony state between the two requests of a
//! ceremony, and adds what the database must decide across nodes: a ceremony finishes once
//! (`ReplayStore::use_once` on its id), and the signature counter moves forward atomically
//! (`PasskeyStore::record_passkey_use`).
//!
//! A ceremony's state never lives in a process: it is sealed (AES-256-GCM under its own
//! subkey of the master key) and travels in a short-lived cookie, bound by the seal's
//! associated data to what it was started for: the user's session (registration) or the
//! pending interaction and the browser's binding cookie (sign-in). Any node finishes it.
//!
//! Nothing here knows HTTP; `http::webauthn` translates.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::{Sealer, SecretHasher, random_token};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{PasskeyRecord, PasskeyUse, PasskeyUsed, StoreError, UserRecord};

/// The master-key subkey purpose for sealing ceremony state.
pub const SEALING_PURPOSE: &[u8] = b"latchkey webauthn ceremony v1";

/// How long a ceremony may take, from its options to its answer (the browser's own timeout
/// is shorter: webauthn-rs asks for five minutes).
pub const CEREMONY_TTL: i64 = 5 * 60;

/// Longest sealed ceremony accepted from a cookie, in characters. A registration lists the
/// user's other credentials (at most `MAX_PASSKEYS_PER_USER`), which keeps it well below.
pub const MAX_SEALED_LEN: usize = 4000;

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The name a passkey gets when the user gives none.
pub const DEFAULT_NAME: &str = "Passkey";

/// The relying party: webauthn-rs configured for the issuer, and the sealer of ceremonies.
pub struct RelyingParty {
    webauthn: Webauthn,
    sealer: Sealer,
}

/// The configuration cannot make a relying party.
#[derive(Debug, thiserror::Error)]
#[error("passkeys: {0}")]
pub struct RelyingPartyError(String);

impl RelyingParty {
    /// The relying party of `issuer`: its id is the issuer's host, its one origin the
    /// issuer's origin (scheme, host and port). `None` when the host is an IP address:
    /// WebAuthn relying-party ids are domain names (browsers refuse an address), so such an
    /// issuer (a loopback test set-up) has no passkeys.
    pub fn for_issuer(
        issuer: &str,
        master_key: &[u8; 32],
    ) -> Result<Option<Self>, RelyingPartyError> {
        let url = Url::parse(issuer).map_err(|e| RelyingPartyError(e.to_string()))?;
        let Some(host) = url.domain().map(str::to_owned) else {
            return Ok(None);
        };
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| RelyingPartyError(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name("Latchkey").build())
            .map_err(|e| RelyingPartyError(e.to_string()))?;
        let sealer = Sealer::for_purpose(master_key, SEALING_PURPOSE)
            .map_err(|e| RelyingPartyError(e.to_string()))?;
        Ok(Some(Self { webauthn, sealer }))
    }

    /// The issuer's origin, which the JSON endpoints require in `Origin`.
    pub fn origin(&self) -> String {
        self.webauthn
            .get_allowed_origins()
            .first()
            .map(|o| o.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// Why a ceremony did not finish. Each is the client's problem (4xx); the store's failures
/// come as `Store`.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The request cannot be used: malformed JSON, a bad name, no (or an expired, or a
    /// foreign) ceremony.
    #[error("{0}")]
    BadRequest(&'static str),
    /// WebAuthn verification failed, the credential is unknown, or the ceremony was used.
    #[error("{0}")]
    Refused(&'static str),
    /// Passkeys are off: the issuer's host is not a domain name.
    #[error("passkeys are not available on this server")]
    Disabled,
    /// The signature counter did not increase: the authenticator may have been cloned.
    #[error("the passkey's signature counter went backwards; it may have been cloned")]
    Cloned,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<PasskeyError> for OAuthError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::BadRequest(m) => OAuthError::invalid_request(m),
            PasskeyError::Disabled => OAuthError::invalid_request(e.to_string()),
            PasskeyError::Refused(m) => OAuthError::new(ErrorCode::AccessDenied, m),
            PasskeyError::Cloned => OAuthError::new(ErrorCode::AccessDenied, e.to_string()),
            PasskeyError::Store(s) => s.into(),
            PasskeyError::Internal(m) => OAuthError::server_error(RelyingPartyError(m)),
        }
    }
}

/// The relying party, or `Disabled`.
fn rp(app: &App) -> Result<&RelyingParty, PasskeyError> {
    app.passkeys.as_deref().ok_or(PasskeyError::Disabled)
}

/// What is sealed into the ceremony cookie.
#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    /// Random; the ceremony finishes at most once under this id.
    id: String,
    expires_at: i64,
    /// The passkey name the user asked for (registration only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    state: S,
}

/// What a ceremony is bound to: part of the seal's associated data.
pub enum Binding<'a> {
    /// A registration, by the session (its stored hash) it was started in.
    Register { session_hash: &'a [u8] },
    /// A step-up on the account page, in the session (its stored hash) it was started in.
    Account { session_hash: &'a [u8] },
    /// A sign-in, for the pending interaction (its finish id) in the browser holding
    /// `browser_binding`.
    Login {
        finish_id: &'a str,
        browser_binding: &'a str,
    },
}

impl Binding<'_> {
    fn associated_data(&self, hasher: &SecretHasher) -> Vec<u8> {
        match self {
            Binding::Register { session_hash } => {
                let mut aad = b"register\0".to_vec();
                aad.extend_from_slice(session_hash);
                aad
            }
            Binding::Account { session_hash } => {
                let mut aad = b"account\0".to_vec();
                aad.extend_from_slice(session_hash);
                aad
            }
            Binding::Login {
                finish_id,
                browser_binding,
            } => {
                let mut aad = b"login\0".to_vec();
                aad.extend_from_slice(&hasher.hash(browser_binding));
                aad.extend_from_slice(finish_id.as_bytes());
                aad
            }
        }
    }
}

fn seal<S: Serialize>(
    app: &App,
    binding: &Binding<'_>,
    state: S,
    name: Option<String>,
) -> Result<String, PasskeyError> {
    let ceremony = Ceremony {
        id: random_token(16),
        expires_at: app.now() + CEREMONY_TTL,
        name,
        state,
    };
    let plain = serde_json::to_vec(&ceremony).map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let aad = binding.associated_data(&app.hasher);
    let sealed = rp(app)?
        .sealer
        .seal(&plain, &aad)
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let text = URL_SAFE_NO_PAD.encode(sealed);
    if text.len() > MAX_SEALED_LEN {
        return Err(PasskeyError::BadRequest(
            "too many passkeys to register another",
        ));
    }
    Ok(text)
}

const NO_CEREMONY: &str = "no passkey ceremony is in progress in this browser, or it has expired";

fn open<S: DeserializeOwned>(
    app: &App,
    binding: &Binding<'_>,
    sealed: Option<&str>,
) -> Result<Ceremony<S>, PasskeyError> {
    let sealed = sealed
        .filter(|s| !s.is_empty() && s.len() <= MAX_SEALED_LEN)
        .ok_or(PasskeyError::BadRequest(NO_CEREMONY))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| PasskeyError::BadRequest(NO_CEREMONY))?;
    let plain = rp(app)?
        .sealer
        .open(&bytes, &binding.associated_data(&app.hasher))
        .map_err(|_| PasskeyError::BadRequest(NO_CEREMONY))?;
    let ceremony: Ceremony<S> =
        serde_json::from_slice(&plain).map_err(|_| PasskeyError::BadRequest(NO_CEREMONY))?;
    if ceremony.expires_at <= app.now() {
        return Err(PasskeyError::BadRequest(NO_CEREMONY));
    }
    Ok(ceremony)
}

/// Finishes the ceremony `id` once: of racing answers on any number of nodes exactly one
/// passes (the state is a cookie, so the same answer can be sent again).
async fn use_once(app: &App, id: &str, expires_at: i64) -> Result<(), PasskeyError> {
    let key = format!("webauthn:{id}");
    if app.store.use_once(&key, expires_at, app.now()).await? {
        Ok(())
    } else {
        Err(PasskeyError::Refused(
            "this passkey ceremony was already used",
        ))
    }
}

/// The WebAuthn user handle of `sub`: 16 bytes derived from it under the master key, so it
/// is stable, reveals nothing about the account, and is never reused for another user.
pub fn user_handle(hasher: &SecretHasher, sub: &str) -> Uuid {
    let mac = hasher.mac_parts(&[b"webauthn user handle", sub.as_bytes()]);
    let bytes = URL_SAFE_NO_PAD.decode(mac).unwrap_or_default();
    let mut handle = [0u8; 16];
    for (out, b) in handle.iter_mut().zip(bytes) {
        *out = b;
    }
    Uuid::from_bytes(handle)
}

/// A passkey name as the user typed it: trimmed, 1 to 64 characters, no control
/// characters; empty means `DEFAULT_NAME`.
pub fn parse_name(raw: Option<&str>) -> Result<String, PasskeyError> {
    let name = raw.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::BadRequest(
            "a passkey name has at most 64 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Options for registering a new passkey for `user` (signed in with the session whose
/// stored hash is `session_hash`): the `publicKey` member for the browser, and the sealed
/// ceremony for the cookie.
pub async fn register_options(
    app: &App,
    user: &UserRecord,
    session_hash: &[u8],
    name: Option<&str>,
) -> Result<(serde_json::Value, String), PasskeyError> {
    let name = parse_name(name)?;
    let existing = app.store.list_passkeys(&user.sub).await?;
    if existing.len() as i64 >= crate::store::MAX_PASSKEYS_PER_USER {
        return Err(PasskeyError::BadRequest(
            "this account has as many passkeys as it may",
        ));
    }
    let exclude = existing
        .iter()
        .map(|p| p.credential_id.clone().into())
        .collect::<Vec<_>>();
    let display = user.claims.name.as_deref().unwrap_or(&user.username);
    let (options, state) = rp(app)?
        .webauthn
        .start_passkey_registration(
            user_handle(&app.hasher, &user.sub),
            &user.username,
            display,
            Some(exclude),
        )
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let mut options = serde_json::to_value(options.public_key)
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    // Sign-in from the login page is usernameless, so the credential must be discoverable
    // (a resident key); webauthn-rs' passkey options leave that to the authenticator.
    if let Some(selection) = options
        .get_mut("authenticatorSelection")
        .and_then(|s| s.as_object_mut())
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let sealed = seal(app, &Binding::Register { session_hash }, state, Some(name))?;
    Ok((options, sealed))
}

/// Finishes a registration: verifies the browser's RegistrationResponseJSON against the
/// sealed ceremony and stores the passkey.
pub async fn register(
    app: &App,
    user: &UserRecord,
    session_hash: &[u8],
    sealed: Option<&str>,
    response: &serde_json::Value,
    ip: Option<std::net::IpAddr>,
) -> Result<PasskeyRecord, PasskeyError> {
    let ceremony: Ceremony<PasskeyRegistration> =
        open(app, &Binding::Register { session_hash }, sealed)?;
    let credential: RegisterPublicKeyCredential = serde_json::from_value(response.clone())
        .map_err(|_| PasskeyError::BadRequest("the body is not a RegistrationResponseJSON"))?;
    let passkey = rp(app)?
        .webauthn
        .finish_passkey_registration(&credential, &ceremony.state)
        .map_err(|e| refused("registration", &e))?;
    use_once(app, &ceremony.id, ceremony.expires_at).await?;
    let record = PasskeyRecord {
        passkey_id: random_token(16),
        credential_id: passkey.cred_id().to_vec(),
        user_sub: user.sub.clone(),
        name: ceremony.name.unwrap_or_else(|| DEFAULT_NAME.to_owned()),
        credential: serde_json::to_string(&passkey)
            .map_err(|e| PasskeyError::Internal(e.to_string()))?,
        sign_count: 0,
        created_at: app.now(),
        last_used_at: None,
    };
    match app.store.insert_passkey(&record).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(PasskeyError::BadRequest(
                "this account has as many passkeys as it may",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(PasskeyError::BadRequest(
                "this passkey is already registered",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let event = Event::new(Kind::FactorEnrolled)
        .user(&user.sub)
        .ip(ip)
        .detail("kind", "passkey")
        .detail("factor_id", record.passkey_id.clone());
    audit::record(app, event).await;
    crate::telemetry::second_factor("passkey", "enrolled");
    Ok(record)
}

/// Options for signing in with a discoverable passkey in the pending interaction `binding`:
/// the `publicKey` member for the browser, and the sealed ceremony for the cookie.
pub fn login_options(
    app: &App,
    binding: &Binding<'_>,
) -> Result<(serde_json::Value, String), PasskeyError> {
    let (options, state) = rp(app)?
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let options = serde_json::to_value(options.public_key)
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let sealed = seal(app, binding, state, None)?;
    Ok((options, sealed))
}

/// Finishes a sign-in: verifies the AuthenticationResponseJSON against the sealed ceremony
/// and the stored passkey, finishes the ceremony once, moves the counter forward. Returns
/// the passkey's user (enabled).
pub async fn login(
    app: &App,
    binding: &Binding<'_>,
    sealed: Option<&str>,
    response: &serde_json::Value,
    ip: Option<std::net::IpAddr>,
) -> Result<UserRecord, PasskeyError> {
    let ceremony: Ceremony<DiscoverableAuthentication> = open(app, binding, sealed)?;
    let credential: PublicKeyCredential = serde_json::from_value(response.clone())
        .map_err(|_| PasskeyError::BadRequest("credential is not an AuthenticationResponseJSON"))?;
    const UNKNOWN: &str = "this passkey is not registered here";
    let (handle, credential_id) = rp(app)?
        .webauthn
        .identify_discoverable_authentication(&credential)
        .map_err(|_| PasskeyError::Refused("the passkey did not name its user"))?;
    let record = app
        .store
        .get_passkey_by_credential(credential_id)
        .await?
        .ok_or(PasskeyError::Refused(UNKNOWN))?;
    if handle != user_handle(&app.hasher, &record.user_sub) {
        return Err(PasskeyError::Refused(UNKNOWN));
    }
    let mut passkey: Passkey = serde_json::from_str(&record.credential)
        .map_err(|e| PasskeyError::Internal(format!("stored passkey: {e}")))?;
    let (ceremony_id, ceremony_expires_at) = (ceremony.id, ceremony.expires_at);
    let result = rp(app)?.webauthn.finish_discoverable_authentication(
        &credential,
        ceremony.state,
        &[DiscoverableKey::from(&passkey)],
    );
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            // The signature is valid but its counter is not above the stored one. The same
            // answer sent again is a replay (its ceremony was used), not a clone.
            use_once(app, &ceremony_id, ceremony_expires_at).await?;
            return Err(cloned(app, &record, ip).await);
        }
        Err(e) => return Err(refused("sign-in", &e)),
    };
    if !result.user_verified() {
        return Err(PasskeyError::Refused(
            "the authenticator did not verify the user",
        ));
    }
    use_once(app, &ceremony_id, ceremony_expires_at).await?;
    passkey.update_credential(&result);
    let credential_json =
        serde_json::to_string(&passkey).map_err(|e| PasskeyError::Internal(e.to_string()))?;
    let used = app
        .store
        .record_passkey_use(&PasskeyUse {
            credential_id: &record.credential_id,
            sign_count: i64::from(result.counter()),
            credential: &credential_json,
            now: app.now(),
        })
        .await?;
    match used {
        PasskeyUsed::Recorded => {}
        PasskeyUsed::CounterNotIncreased => return Err(cloned(app, &record, ip).await),
        PasskeyUsed::Gone => return Err(PasskeyError::Refused(UNKNOWN)),
    }
    match app.store.get_user(&record.user_sub).await? {
        Some(user) if !user.disabled => {
            crate::telemetry::second_factor("passkey", "used");
            Ok(user)
        }
        _ => Err(PasskeyError::Refused(UNKNOWN)),
    }
}

/// A counter that went backwards: audited (only a valid signature gets here, so this write
/// is bounded by the holders of real credentials) and refused.
async fn cloned(app: &App, record: &PasskeyRecord, ip: Option<std::net::IpAddr>) -> PasskeyError {
    let event = Event::new(Kind::PasskeyCloneSuspected)
        .user(&record.user_sub)
        .ip(ip)
        .detail("factor_id", record.passkey_id.clone());
    audit::record(app, event).await;
    crate::telemetry::second_factor("passkey", "clone_suspected");
    PasskeyError::Cloned
}

fn refused(ceremony: &'static str, e: &WebauthnError) -> PasskeyError {
    tracing::info!(ceremony, error = %e, "passkey verification failed");
    crate::telemetry::second_factor("passkey", "failed");
    PasskeyError::Refused("the passkey could not be verified")
}

/// A user's passkeys, for the account page.
pub async fn list(app: &App, sub: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
    app.store.list_passkeys(sub).await
}

/// The relying party of an app, shared by its handlers.
pub type Shared = Option<Arc<RelyingParty>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        let rp = RelyingParty::for_issuer("https://id.example.com:8443/auth", &[3u8; 32])
            .unwrap()
            .unwrap();
        assert_eq!(rp.origin(), "https://id.example.com:8443");
        assert!(RelyingParty::for_issuer("not a url", &[3u8; 32]).is_err());
        assert!(
            RelyingParty::for_issuer("http://127.0.0.1:8080", &[3u8; 32])
                .unwrap()
                .is_none(),
            "an address is no relying-party id"
        );
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        let hasher = SecretHasher::new(&[1u8; 32]);
        assert_eq!(user_handle(&hasher, "alice"), user_handle(&hasher, "alice"));
        assert_ne!(user_handle(&hasher, "alice"), user_handle(&hasher, "bob"));
        let other = SecretHasher::new(&[2u8; 32]);
        assert_ne!(user_handle(&hasher, "alice"), user_handle(&other, "alice"));
    }

    #[test]
    fn passkey_names() {
        assert_eq!(parse_name(None).unwrap(), DEFAULT_NAME);
        assert_eq!(parse_name(Some("  ")).unwrap(), DEFAULT_NAME);
        assert_eq!(parse_name(Some(" Laptop ")).unwrap(), "Laptop");
        assert_eq!(parse_name(Some(&"ü".repeat(64))).unwrap(), "ü".repeat(64));
        assert!(parse_name(Some(&"x".repeat(65))).is_err());
        assert!(parse_name(Some("a\nb")).is_err());
    }
}
