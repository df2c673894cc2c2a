//! The device authorization grant (RFC 8628): a device without a browser (a TV, a CLI) asks
//! for a device code and a user code; a person types the user code on `/device`, logs in and
//! consents in their own browser; the device polls the token endpoint until then.
//!
//! User codes are eight letters from `USER_CODE_ALPHABET` (no vowels, no look-alikes), shown
//! as two groups of four joined by a dash (`WDJB-MJHT`); case and dashes are ignored when typed. Guessing them is throttled per
//! address (`throttle::DEVICE_CODE_IP`: more than ten wrong codes in 15 minutes get 429),
//! counted before the lookup like every guess. The consent page is always shown, saying
//! that a device is asking, even for first-party clients: a user code is easy to phish, so
//! the person must see what they approve (RFC 8628 §5.4).

use crate::accounts::throttle::{self, Admission};
use crate::app::App;
use crate::crypto::random_secret;
use crate::protocol::authorization::{AuthorizationRequest, Prompt, ResponseMode};
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::{DeviceRecord, StoreError};

use super::flow::{self, Arrival, Next, Stage};
use super::{Decision, deciding, seals};

/// The grant type a device polls with.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The letters user codes are made of (RFC 8628 §6.1's example set: no vowels, so no words).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// Seconds a device waits between polls, at first.
pub const INTERVAL: i64 = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, serde::Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A user code in the form people read: two groups of four letters (`WDJB-MJHT`). A value
/// that is not a stored user code is shown as it is rather than cut mid-character.
pub fn display(user_code: &str) -> String {
    match (user_code.get(..4), user_code.get(4..)) {
        (Some(head), Some(tail)) if !tail.is_empty() => format!("{head}-{tail}"),
        _ => user_code.to_owned(),
    }
}

/// The normal form of what a person typed: upper case, dashes and spaces dropped; `None`
/// when it cannot be a user code.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

fn new_user_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

/// The device authorization endpoint: `client` (authenticated, or public with its id) asks
/// for `scope` (default: what it registered) and, optionally, a `resource`.
pub async fn start(
    app: &App,
    client: &crate::store::ClientRecord,
    params: &crate::protocol::form::Params,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.metadata.allows_grant(DEVICE_GRANT) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the device authorization grant",
        ));
    }
    let registered = client.metadata.registered_scope();
    let scope = match params.get("scope") {
        None => registered,
        Some(s) => {
            let scope = Scope::parse(s)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OAuthError::invalid_scope("scope is malformed"))?;
            if !scope.is_subset_of(&registered) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds what this application registered",
                ));
            }
            scope
        }
    };
    let resource = params.get("resource").map(str::to_owned);
    if let Some(r) = &resource {
        crate::token::audience(client, Some(r))?;
    }
    let now = app.now();
    let device_code = random_secret();
    let ttl = app.config.device_code_ttl;
    // A user code taken by a live authorization is drawn again (20^8 codes: it takes
    // millions of live ones before this loops more than once).
    for _ in 0..8 {
        let user_code = new_user_code();
        let record = DeviceRecord {
            device_code_hash: app.hasher.hash(&device_code),
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            resource: resource.clone(),
            interval_secs: INTERVAL,
            created_at: now,
            expires_at: now + ttl,
        };
        match app.store.insert_device(&record).await {
            Ok(()) => {
                let verification_uri = format!("{}{}", app.config.issuer, paths::DEVICE);
                return Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: format!(
                        "{verification_uri}?user_code={}",
                        display(&user_code)
                    ),
                    user_code: display(&user_code),
                    verification_uri,
                    expires_in: ttl,
                    interval: INTERVAL,
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::unavailable(std::io::Error::other(
        "no free user code",
    )))
}

/// What typing a user code on `/device` led to.
pub enum Entered {
    /// Log in, or consent, in the interaction this decision names.
    Go(Decision),
    /// No pending authorization has this code (or it is not one).
    Unknown,
    /// Too many wrong codes from this address.
    Throttled { retry_after: u64 },
}

/// A person typed `typed` on `/device` in the browser holding `binding`, with `session` (the
/// browser's live session, if any). The attempt counts against the address before the lookup;
/// a right code gives it back.
pub async fn enter(
    app: &App,
    typed: &str,
    ip: Option<std::net::IpAddr>,
    binding: &str,
    session: Option<&crate::store::SessionRecord>,
) -> Result<Entered, OAuthError> {
    let now = app.now();
    let key = ip.map(throttle::device_code_ip_key);
    if let Some(k) = &key
        && let Admission::Refused { retry_after, .. } =
            throttle::admit(app.store.as_ref(), &[(k, &throttle::DEVICE_CODE_IP)], now).await?
    {
        return Ok(Entered::Throttled { retry_after });
    }
    let found = match normalize(typed) {
        Some(code) => app.store.pending_device(&code, now).await?,
        None => None,
    };
    let Some(device) = found else {
        return Ok(Entered::Unknown);
    };
    if let Some(k) = &key {
        app.store
            .settle_success(None, Some((k, &throttle::DEVICE_CODE_IP)))
            .await?;
    }
    let request = AuthorizationRequest {
        client_id: device.client_id,
        redirect_uri: String::new(),
        redirect_uri_sent: false,
        response_mode: ResponseMode::Query,
        scope: device.scope,
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        id_token_hint_sub: None,
        ui_locales: None,
        acr_values: None,
        resource: device.resource,
        device_user_code: Some(device.user_code),
        dpop_jkt: None,
    };
    // Consent is always asked; a login first when the browser has no session, and the second
    // factor first when the session lacks the level owed.
    let decision = match session {
        Some(s) => {
            let Some(client) = app.client(&request.client_id).await? else {
                return Ok(Entered::Unknown);
            };
            let next =
                flow::next(deciding(app), &client, &request, Some(s), Arrival::Login).await?;
            let sid = s.sid.clone();
            let stage = match next {
                Next::SecondFactor => Stage::SecondFactor { sid },
                Next::Enrol => Stage::Enrol { sid },
                Next::VerifyEmail => Stage::VerifyEmail { sid },
                _ => Stage::Consent { sid },
            };
            let interaction_id = seals(app).seal(&request, binding, &stage)?;
            super::pending::decision_at(&stage, interaction_id)
        }
        None => Decision::Login {
            interaction_id: seals(app).seal(&request, binding, &Stage::Login)?,
        },
    };
    Ok(Entered::Go(decision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_loosely_and_read_strictly() {
        let code = new_user_code();
        assert_eq!(code.len(), 8);
        assert_eq!(normalize(&display(&code)).as_deref(), Some(code.as_str()));
        assert_eq!(display("WDJBMJHT"), "WDJB-MJHT");
        // Anything else is shown as it is, never cut inside a character or panicking.
        assert_eq!(display("WDJ"), "WDJ");
        assert_eq!(display("aééé"), "aééé");
        assert_eq!(normalize("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize("BCDF-GHJA"), None, "a vowel");
        assert_eq!(normalize("BCDF-GHJ"), None, "too short");
        assert_eq!(normalize("BCDFGHJKL"), None, "too long");
        assert_eq!(normalize("BCDF-GHJ1"), None);
    }
}
