//! The audit log: security events stored in the database (readable through
//! `GET /admin/events`) and emitted as structured log lines with target `latchkey::audit`.
//!
//! Callers pass identifiers only: a user's `sub`, a `client_id`, an IP address, and small
//! non-secret details. Nothing here ever receives a secret, password, token or code, so none
//! can end up in an event or a log line.

use std::net::IpAddr;

use crate::app::App;
use crate::store::AuditEvent;

/// The kinds of security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LoginSucceeded,
    LoginFailed,
    AccountLocked,
    ClientAuthFailed,
    ClientLocked,
    ConsentGranted,
    ConsentWithdrawn,
    CodeReuseDetected,
    RefreshReuseDetected,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    KeysRotated,
    /// A scheduled rotation published the next keys (recorded by the node that won it).
    KeysScheduled,
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserDeleted,
    PasswordChanged,
    /// A password reset link was sent (the request named an account with an address).
    PasswordResetRequested,
    /// A verification link confirmed the user's email address.
    EmailVerified,
    AdminAccessDenied,
    Logout,
    DeviceApproved,
    InitialAccessTokenCreated,
    PasskeyCloneSuspected,
    FactorEnrolled,
    FactorUsed,
    FactorFailed,
    FactorRemoved,
    RecoveryCodesRegenerated,
    /// An operator ended a user's sessions (`DELETE /admin/users/{sub}/sessions`).
    SessionsEnded,
    /// A back-channel logout notification reached its client.
    LogoutDelivered,
    /// A back-channel logout notification was given up after its retries.
    LogoutDeliveryFailed,
    /// A token exchange (RFC 8693) issued a token.
    TokenExchanged,
    UpstreamCreated,
    UpstreamUpdated,
    UpstreamDeleted,
    UpstreamLoginFailed,
    IdentityLinked,
    IdentityUnlinked,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LoginSucceeded => "login_succeeded",
            Kind::LoginFailed => "login_failed",
            Kind::AccountLocked => "account_locked",
            Kind::ClientAuthFailed => "client_auth_failed",
            Kind::ClientLocked => "client_locked",
            Kind::ConsentGranted => "consent_granted",
            Kind::ConsentWithdrawn => "consent_withdrawn",
            Kind::CodeReuseDetected => "code_reuse_detected",
            Kind::RefreshReuseDetected => "refresh_reuse_detected",
            Kind::ClientCreated => "client_created",
            Kind::ClientUpdated => "client_updated",
            Kind::ClientDeleted => "client_deleted",
            Kind::ClientSecretRotated => "client_secret_rotated",
            Kind::KeysRotated => "keys_rotated",
            Kind::KeysScheduled => "keys_scheduled",
            Kind::UserCreated => "user_created",
            Kind::UserUpdated => "user_updated",
            Kind::UserDisabled => "user_disabled",
            Kind::UserDeleted => "user_deleted",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordResetRequested => "password_reset_requested",
            Kind::EmailVerified => "email_verified",
            Kind::AdminAccessDenied => "admin_access_denied",
            Kind::Logout => "logout",
            Kind::DeviceApproved => "device_approved",
            Kind::InitialAccessTokenCreated => "initial_access_token_created",
            Kind::PasskeyCloneSuspected => "passkey_clone_suspected",
            Kind::FactorEnrolled => "factor_enrolled",
            Kind::FactorUsed => "factor_used",
            Kind::FactorFailed => "factor_failed",
            Kind::FactorRemoved => "factor_removed",
            Kind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Kind::SessionsEnded => "sessions_ended",
            Kind::LogoutDelivered => "logout_delivered",
            Kind::LogoutDeliveryFailed => "logout_delivery_failed",
            Kind::TokenExchanged => "token_exchanged",
            Kind::UpstreamCreated => "upstream_created",
            Kind::UpstreamUpdated => "upstream_updated",
            Kind::UpstreamDeleted => "upstream_deleted",
            Kind::UpstreamLoginFailed => "upstream_login_failed",
            Kind::IdentityLinked => "identity_linked",
            Kind::IdentityUnlinked => "identity_unlinked",
        }
    }
}

/// One event to record. Build it with `Event::new(kind)` and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub user_sub: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    pub fn new(kind: Kind) -> Self {
        Event {
            kind,
            user_sub: None,
            client_id: None,
            ip: None,
            detail: serde_json::Map::new(),
        }
    }

    pub fn user(mut self, sub: &str) -> Self {
        self.user_sub = Some(sub.to_owned());
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// A non-secret detail (a grant id, a count, a reason code).
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// Logs the event and stores it. A storage failure is logged and swallowed: losing an audit
/// row must not turn a user's successful login into an error.
pub async fn record(app: &App, event: Event) {
    let row = row(app, event);
    log(&row);
    if let Err(e) = app.store.record_event(&row).await {
        tracing::error!(error = %e, "could not store an audit event");
    }
}

/// The stored form of `event`, occurring now. For events a store method writes together
/// with what they record (a login with its session, a consent with its code); the caller
/// then `log`s the row once that write succeeded.
pub fn row(app: &App, event: Event) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        occurred_at: app.now(),
        kind: event.kind.as_str().to_owned(),
        user_sub: event.user_sub,
        client_id: event.client_id,
        ip: event.ip.map(|ip| ip.to_string()),
        detail: serde_json::Value::Object(event.detail).to_string(),
    }
}

/// Emits the log line of an event.
pub fn log(row: &AuditEvent) {
    tracing::info!(
        target: "latchkey::audit",
        event = row.kind.as_str(),
        sub = row.user_sub.as_deref(),
        client_id = row.client_id.as_deref(),
        ip = row.ip.as_deref(),
        detail = %row.detail,
        "security event"
    );
}
