//! Second factors: enrolling a TOTP authenticator (with a recovery-code set), checking the
//! one-time code a login's second step gets (a TOTP code or a recovery code), regenerating
//! recovery codes, removing a factor and an operator's provisioning. Passkeys add a file here
//! and another `assurance::Method`.
//!
//! Secrets: a TOTP secret is sealed under a subkey of the master key (`SEALING_PURPOSE`, the
//! factor id as associated data) before it is stored, and opened only to check a code; an
//! enrolment in progress travels sealed in its form (bound to the user and to the browser's
//! session or interaction), so an abandoned enrolment writes nothing. Recovery codes are
//! stored as keyed hashes. None of them is ever logged or put in an audit event.

pub mod passkey;
pub mod recovery;
pub mod totp;

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::assurance::{Method, Standing};
use super::throttle::{self, Admission};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_token;
use crate::protocol::OAuthError;
use crate::protocol::admin::{FactorResponse, TotpProvisioned};
use crate::store::{FactorKind, FactorRecord, FactorRemoval, RecoverySet, StoreResult};

/// A failure of our own (sealing, building the URI or QR code): logged, never sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(&'static str);

/// The master-key subkey purpose for sealing factor secrets.
pub const SEALING_PURPOSE: &[u8] = b"latchkey factor sealing v1";

/// How long an enrolment form stays valid.
const ENROLMENT_TTL: i64 = 15 * 60;

/// Per account: wrong one-time codes. Six digits with three steps accepted are one chance in
/// about 333,000 per guess; five free guesses, back-off, then fifteen minutes off after ten.
pub const OTP_ACCOUNT: throttle::Policy = throttle::Policy {
    free: 5,
    window: 900,
    max_delay: 60,
    lockout_after: 10,
    lockout: 900,
};

pub fn otp_account_key(sub: &str) -> String {
    format!("otp:account:{sub}")
}

fn random_id() -> String {
    random_token(12)
}

/// What the user has towards a second factor; `None` when there is no such user.
pub async fn standing(app: &App, sub: &str) -> StoreResult<Option<Standing>> {
    Ok(app
        .store
        .mfa_standing(sub)
        .await?
        .map(|(mfa_required, kinds)| Standing {
            mfa_required,
            kinds,
        }))
}

/// The factors of a user as listed to operators and on the account page: never a secret.
pub async fn list(app: &App, sub: &str) -> StoreResult<Vec<FactorResponse>> {
    Ok(app
        .store
        .list_factors(sub)
        .await?
        .into_iter()
        .map(|f| FactorResponse {
            id: f.id,
            kind: f.kind.as_str(),
            name: f.name,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        })
        .collect())
}

fn secret_aad(id: &str) -> Vec<u8> {
    [b"totp secret:".as_slice(), id.as_bytes()].concat()
}

fn seal_secret(app: &App, id: &str, secret: &[u8]) -> Result<Vec<u8>, OAuthError> {
    app.factor_sealer
        .seal(secret, &secret_aad(id))
        .map_err(|_| OAuthError::server_error(Failure("sealing a TOTP secret failed")))
}

fn open_secret(app: &App, factor: &FactorRecord) -> Option<Vec<u8>> {
    let sealed = factor.sealed_secret.as_deref()?;
    app.factor_sealer.open(sealed, &secret_aad(&factor.id)).ok()
}

/// The answer to a one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpOutcome {
    /// Accepted (and now used up): the method it counts as.
    Accepted { kind: FactorKind, method: Method },
    /// Wrong, used before, or no factor to check it against.
    Rejected,
    /// Too many wrong codes for this account or address; try again after this many seconds.
    Throttled { retry_after: u64 },
}

/// Checks a one-time code of user `sub`: a TOTP code (each time step accepted once, one step
/// of drift) or an unused recovery code. The attempt is counted against the account and the
/// address before any check, atomically, like a password (`throttle::count`), so racing
/// guesses cannot pass the limit; a success takes the account's failures back.
pub async fn check_otp(
    app: &App,
    sub: &str,
    typed: &str,
    ip: Option<IpAddr>,
    client_id: Option<&str>,
) -> Result<OtpOutcome, OAuthError> {
    let now = app.now();
    let account_key = otp_account_key(sub);
    let ip_key = ip.map(throttle::login_ip_key);
    let mut keys: Vec<(&str, &throttle::Policy)> = Vec::with_capacity(2);
    if let Some(k) = &ip_key {
        keys.push((k, &throttle::LOGIN_IP));
    }
    keys.push((&account_key, &OTP_ACCOUNT));
    // Counted straight away, without `admit`'s first read: the counting statement itself
    // refuses a locked key and writes nothing then. (Only a browser with a live session, past
    // the password, gets here, so the read would rarely find a lock.)
    if let Admission::Refused { retry_after, .. } =
        throttle::count(app.store.as_ref(), &keys, now).await?
    {
        crate::telemetry::second_factor("otp", "throttled");
        return Ok(OtpOutcome::Throttled { retry_after });
    }
    let typed: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(64)
        .collect();
    let with_client = |e: Event| match client_id {
        Some(c) => e.client(c),
        None => e,
    };
    let used = |kind: FactorKind, factor_id: &str| {
        with_client(
            Event::new(Kind::FactorUsed)
                .user(sub)
                .ip(ip)
                .detail("kind", kind.as_str())
                .detail("factor_id", factor_id),
        )
    };
    match accept(app, sub, &typed, now, &used).await? {
        Some(kind) => {
            let address = ip_key.as_deref().map(|k| (k, &throttle::LOGIN_IP));
            throttle::settle_success(app.store.as_ref(), &account_key, address).await?;
            crate::telemetry::second_factor(kind.as_str(), "used");
            Ok(OtpOutcome::Accepted {
                kind,
                method: Method::Otp,
            })
        }
        None => {
            crate::telemetry::second_factor("otp", "failed");
            let event = Event::new(Kind::FactorFailed).user(sub).ip(ip);
            audit::record(app, with_client(event)).await;
            Ok(OtpOutcome::Rejected)
        }
    }
}

/// The kind of factor that accepts `typed` now (and is marked used by it, its `used` event
/// stored), if any.
async fn accept(
    app: &App,
    sub: &str,
    typed: &str,
    now: i64,
    used: &(dyn Fn(FactorKind, &str) -> Event + Sync),
) -> Result<Option<FactorKind>, OAuthError> {
    if typed.len() == usize::from(totp::DIGITS) {
        for factor in app.store.list_factors(sub).await? {
            if factor.kind != FactorKind::Totp {
                continue;
            }
            let Some(secret) = open_secret(app, &factor) else {
                tracing::error!(factor_id = %factor.id, "a TOTP secret does not open");
                continue;
            };
            let Some(step) = totp::matching_step(&secret, typed, now) else {
                continue;
            };
            // The step and its event in one write (the hot path of a login with a code).
            let event = audit::row(app, used(FactorKind::Totp, &factor.id));
            if app
                .store
                .accept_totp_step(sub, &factor.id, step, now, &event)
                .await?
            {
                audit::log(&event);
                return Ok(Some(FactorKind::Totp));
            }
        }
        return Ok(None);
    }
    let Some(code) = recovery::normalize(typed) else {
        return Ok(None);
    };
    let hash = recovery::hash(&app.hasher, sub, &code);
    let Some(factor_id) = app.store.use_recovery_code(sub, &hash, now).await? else {
        return Ok(None);
    };
    audit::record(app, used(FactorKind::RecoveryCodes, &factor_id)).await;
    Ok(Some(FactorKind::RecoveryCodes))
}

/// A TOTP enrolment in progress, as its page shows it. `sealed` goes back with the form.
pub struct Enrolment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an inline `<svg>` element.
    pub qr_svg: String,
    pub sealed: String,
}

#[derive(Serialize, Deserialize)]
struct SealedEnrolment {
    secret: String,
    expires_at: i64,
}

fn enrolment_aad(app: &App, sub: &str, bound_to: &str) -> Vec<u8> {
    app.hasher
        .mac_parts(&[b"totp enrolment", sub.as_bytes(), bound_to.as_bytes()])
        .into_bytes()
}

/// A new secret for `sub` to enrol, sealed for the form, bound to the user and to
/// `bound_to` (the session or the interaction the page belongs to). Nothing is stored yet.
pub fn begin_enrolment(
    app: &App,
    sub: &str,
    account: &str,
    bound_to: &str,
) -> Result<Enrolment, OAuthError> {
    let secret = totp::new_secret();
    let base32 = totp::base32(&secret);
    let issuer = issuer_label(app);
    let otpauth_uri = totp::otpauth_uri(&secret, &issuer, account)
        .ok_or_else(|| OAuthError::server_error(Failure("the otpauth URI could not be built")))?;
    let qr_svg = totp::qr_svg(&otpauth_uri)
        .ok_or_else(|| OAuthError::server_error(Failure("the QR code could not be built")))?;
    let plain = serde_json::to_vec(&SealedEnrolment {
        secret: base32.clone(),
        expires_at: app.now() + ENROLMENT_TTL,
    })
    .map_err(OAuthError::server_error)?;
    let sealed = app
        .factor_sealer
        .seal(&plain, &enrolment_aad(app, sub, bound_to))
        .map_err(|_| OAuthError::server_error(Failure("sealing an enrolment failed")))?;
    Ok(Enrolment {
        secret: base32,
        otpauth_uri,
        qr_svg,
        sealed: URL_SAFE_NO_PAD.encode(sealed),
    })
}

/// The enrolment sealed in `sealed` (by `begin_enrolment` for the same user and binding),
/// shown again after a wrong code; `None` when it is not ours or has expired.
pub fn reopen_enrolment(
    app: &App,
    sub: &str,
    account: &str,
    sealed: &str,
    bound_to: &str,
) -> Option<Enrolment> {
    let opened = open_enrolment(app, sub, sealed, bound_to)?;
    let secret = totp_rs::Secret::try_from_base32(&opened.secret).ok()?;
    let otpauth_uri = totp::otpauth_uri(secret.as_ref(), &issuer_label(app), account)?;
    let qr_svg = totp::qr_svg(&otpauth_uri)?;
    Some(Enrolment {
        secret: opened.secret,
        otpauth_uri,
        qr_svg,
        sealed: sealed.to_owned(),
    })
}

fn open_enrolment(app: &App, sub: &str, sealed: &str, bound_to: &str) -> Option<SealedEnrolment> {
    if sealed.len() > 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(sealed.as_bytes()).ok()?;
    let plain = app
        .factor_sealer
        .open(&bytes, &enrolment_aad(app, sub, bound_to))
        .ok()?;
    serde_json::from_slice::<SealedEnrolment>(&plain)
        .ok()
        .filter(|e| e.expires_at > app.now())
}

/// Whether a session with `amr` may use the account page of a user with `standing`: a user
/// who has (or must have) a second factor needs a session that used one.
pub fn account_level_met(standing: &Standing, amr: &str) -> bool {
    !(standing.has_second_factor() || standing.mfa_required)
        || crate::accounts::assurance::meets(amr, crate::accounts::assurance::Level::Mfa)
}

/// The issuer's host, as authenticator apps label the entry.
fn issuer_label(app: &App) -> String {
    url::Url::parse(&app.config.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Latchkey".to_owned())
}

/// The answer to an enrolment form.
pub enum EnrolOutcome {
    /// Enrolled: the new recovery codes, to show this once.
    Done { recovery_codes: Vec<String> },
    /// The code does not match the secret: the same enrolment may be tried again.
    WrongCode,
    /// The form is not one of ours for this user and browser, or it expired.
    Expired,
}

/// Finishes an enrolment begun by `begin_enrolment` with a code from the app: stores the
/// factor (replacing any TOTP the user had) and a new recovery set, in one transaction. The
/// code's time step is recorded as used, so it cannot also pass a login.
pub async fn finish_enrolment(
    app: &App,
    sub: &str,
    sealed: &str,
    code: &str,
    bound_to: &str,
    ip: Option<IpAddr>,
) -> Result<EnrolOutcome, OAuthError> {
    let now = app.now();
    let Some(enrolment) = open_enrolment(app, sub, sealed, bound_to) else {
        return Ok(EnrolOutcome::Expired);
    };
    let Ok(secret) = totp_rs::Secret::try_from_base32(&enrolment.secret) else {
        return Ok(EnrolOutcome::Expired);
    };
    let secret = secret.as_ref().to_vec();
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp::matching_step(&secret, &code, now) else {
        return Ok(EnrolOutcome::WrongCode);
    };
    let id = random_id();
    let factor = FactorRecord {
        sealed_secret: Some(seal_secret(app, &id, &secret)?),
        id,
        user_sub: sub.to_owned(),
        kind: FactorKind::Totp,
        name: "Authenticator app".to_owned(),
        last_step: step,
        data: None,
        created_at: now,
        last_used_at: Some(now),
    };
    let (codes, set) = new_recovery_set(app, sub, now);
    app.store.replace_totp(&factor, Some(&set)).await?;
    crate::telemetry::second_factor("totp", "enrolled");
    audit::record(
        app,
        Event::new(Kind::FactorEnrolled)
            .user(sub)
            .ip(ip)
            .detail("kind", "totp")
            .detail("factor_id", factor.id.clone()),
    )
    .await;
    Ok(EnrolOutcome::Done {
        recovery_codes: codes,
    })
}

fn new_recovery_set(app: &App, sub: &str, now: i64) -> (Vec<String>, RecoverySet) {
    let codes = recovery::new_codes();
    let code_hashes = codes
        .iter()
        .filter_map(|c| recovery::normalize(c))
        .map(|c| recovery::hash(&app.hasher, sub, &c))
        .collect();
    let set = RecoverySet {
        factor: FactorRecord {
            id: random_id(),
            user_sub: sub.to_owned(),
            kind: FactorKind::RecoveryCodes,
            name: "Recovery codes".to_owned(),
            sealed_secret: None,
            last_step: -1,
            data: None,
            created_at: now,
            last_used_at: None,
        },
        code_hashes,
    };
    (codes, set)
}

/// A new recovery set for `sub`, replacing the old one (whose codes stop working at once).
pub async fn regenerate_recovery_codes(
    app: &App,
    sub: &str,
    ip: Option<IpAddr>,
) -> Result<Vec<String>, OAuthError> {
    let (codes, set) = new_recovery_set(app, sub, app.now());
    app.store.replace_recovery_codes(&set).await?;
    audit::record(
        app,
        Event::new(Kind::RecoveryCodesRegenerated)
            .user(sub)
            .ip(ip)
            .detail("factor_id", set.factor.id.clone()),
    )
    .await;
    Ok(codes)
}

/// Who removes a factor: the rule on the last required factor binds the user only, and the
/// audit log says which it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovedBy {
    User,
    Admin,
}

impl RemovedBy {
    fn as_str(self) -> &'static str {
        match self {
            RemovedBy::User => "user",
            RemovedBy::Admin => "admin",
        }
    }
}

/// Removes factor `id` of `sub`; false when there is none. A user cannot remove their last
/// second factor while they must use one, nor their last passkey while it is their only way
/// in (no password, no linked upstream): the store decides that atomically, so two racing
/// removals of the last two cannot both succeed; the answer is 400. An operator can (`DELETE /admin/users/{sub}/factors/{id}`
/// removes one, as interface.md says): a user who must use a second factor and has none
/// is led through enrolment at their next sign-in, which is how an operator replaces a lost
/// or compromised authenticator.
pub async fn remove(app: &App, sub: &str, id: &str, by: RemovedBy) -> Result<bool, OAuthError> {
    match app
        .store
        .delete_factor(sub, id, by == RemovedBy::User)
        .await?
    {
        FactorRemoval::Removed => {
            audit::record(
                app,
                Event::new(Kind::FactorRemoved)
                    .user(sub)
                    .detail("factor_id", id.to_owned())
                    .detail("by", by.as_str()),
            )
            .await;
            Ok(true)
        }
        FactorRemoval::NotFound => Ok(false),
        FactorRemoval::LastSecondFactor => Err(OAuthError::invalid_request(
            "this is your last second factor, and your account must use one",
        )),
        FactorRemoval::LastWayIn => Err(OAuthError::invalid_request(
            "this passkey is your only way to sign in: add another passkey, or link a sign-in \
             provider, before removing it",
        )),
    }
}

/// The user's own removal of factor `id`, from the account page (`remove`).
pub async fn remove_own(app: &App, sub: &str, id: &str) -> Result<bool, OAuthError> {
    remove(app, sub, id, RemovedBy::User).await
}

/// An operator's TOTP for `sub` (for scripts and test accounts): stored at once, replacing any
/// TOTP the user had; the secret is in the answer this once.
pub async fn provision_totp(
    app: &App,
    sub: &str,
    account: &str,
) -> Result<TotpProvisioned, OAuthError> {
    let now = app.now();
    let secret = totp::new_secret();
    let otpauth_uri = totp::otpauth_uri(&secret, &issuer_label(app), account)
        .ok_or_else(|| OAuthError::server_error(Failure("the otpauth URI could not be built")))?;
    let id = random_id();
    let factor = FactorRecord {
        sealed_secret: Some(seal_secret(app, &id, &secret)?),
        id: id.clone(),
        user_sub: sub.to_owned(),
        kind: FactorKind::Totp,
        name: "Provisioned authenticator".to_owned(),
        last_step: -1,
        data: None,
        created_at: now,
        last_used_at: None,
    };
    app.store.replace_totp(&factor, None).await?;
    audit::record(
        app,
        Event::new(Kind::FactorEnrolled)
            .user(sub)
            .detail("kind", "totp")
            .detail("factor_id", id.clone())
            .detail("by", "admin"),
    )
    .await;
    Ok(TotpProvisioned {
        id,
        secret: totp::base32(&secret),
        otpauth_uri,
    })
}
