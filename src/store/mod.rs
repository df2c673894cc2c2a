//! Storage behind one trait per concern. The protocol core calls these traits and never sees
//! SQL. Each concern has one file holding its trait and records, its statements for both
//! dialects and its implementation for both backends (`postgres::PgStore` and
//! `sqlite::SqliteStore`): `clients`, `users`, `sessions`, `interactions`, `codes`, `grants`,
//! `refresh`, `revocations`, `consents`, `keys`, `throttle`, `audit`, `housekeeping`,
//! `pushed` (RFC 9126 pushed requests), `replay` (identifiers used once), `devices` (RFC 8628
//! device authorization), `factors` (second factors), `passkeys` (WebAuthn credentials),
//! `registrations` (RFC 7591 dynamic registration), `outbox` (work any node carries out later:
//! back-channel logout deliveries, mail), `email_tokens` (links sent by mail), `upstreams`
//! (upstream identity providers and the identities linked to users). What they share (the two
//! dialects, error mapping, JSON and row helpers, SQL fragments) is in
//! `sql`; `contract/` holds the tests every backend must pass, one file per concern.
//!
//! Security rules are part of the contract, and each backend enforces them atomically in the
//! database: a code is redeemed (`consume_code`) and a refresh token rotated
//! (`rotate_refresh_token`) by one operation each, one statement on Postgres and one
//! transaction on SQLite, which also revokes the whole grant when it finds the code or token
//! reused or presented by another client. Timestamps are Unix seconds (`i64`); hashes are the
//! 32-byte output of `crypto::SecretHasher`.

mod apply;
mod audit;
mod clients;
mod codes;
mod consents;
mod devices;
mod email_tokens;
mod factors;
mod grants;
mod housekeeping;
mod interactions;
mod keys;
mod outbox;
mod passkeys;
pub mod postgres;
mod pushed;
mod refresh;
mod registrations;
mod replay;
mod revocations;
mod sessions;
mod sql;
pub mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod throttle;
mod upstreams;
mod users;

#[cfg(test)]
mod contract;

pub use apply::{ApplyStore, Change, STALE_PLAN};
pub use audit::{AUDIT_RETENTION, AuditEvent, AuditFilter, AuditStore};
pub use clients::{ClientRecord, ClientStore, NewClientSecret, PreviousSecret};
pub use codes::{AuthCodeRecord, AuthCodeStore, CodeRedemption};
pub use consents::{ConsentRecord, ConsentStore};
pub use devices::{DeviceAnswer, DeviceAnswered, DeviceApproval, DeviceRecord, DeviceStore, Poll};
pub use email_tokens::{EmailPurpose, EmailTokenStore, RedeemedLink};
pub use factors::{FactorKind, FactorRecord, FactorRemoval, FactorStore, RecoverySet};
pub use grants::{GrantRecord, GrantStore};
pub use housekeeping::{ChangeVersions, Expiring, Housekeeping, PoolStats};
pub use interactions::{ConsentFinish, ConsentOutcome, InteractionFinish, InteractionStore};
pub use keys::{KeyStore, SigningKeyRecord};
pub use outbox::{AttemptResult, OutboxItem, OutboxStore};
pub use passkeys::{MAX_PASSKEYS_PER_USER, PasskeyRecord, PasskeyStore, PasskeyUse, PasskeyUsed};
pub use pushed::{PushedRequest, PushedRequestStore};
pub use refresh::{
    LegacyRefresh, PresentedRefresh, RefreshScope, RefreshTokenRecord, RefreshTokenStore, Rotation,
    RotationRequest,
};
pub use registrations::RegistrationStore;
pub use replay::ReplayStore;
pub use revocations::RevocationStore;
pub use sessions::{LOGOUT_KIND, LOGOUT_RETRY_FOR, SessionRecord, SessionStore, SessionView};
pub use throttle::{AttemptCount, AttemptKey, ThrottleRule, ThrottleStore};
pub use upstreams::{IdentityRecord, Unlinked, UpstreamRecord, UpstreamStore};
pub use users::{UserRecord, UserStore};

/// A storage failure. `Unavailable` means the database could not be reached in time (the
/// caller answers 503); `Conflict` names a unique constraint that was violated.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unique constraint violated: {0}")]
    Conflict(&'static str),
    /// The request carried a value the database cannot store or compare (a NUL character,
    /// an over-long key): the client's mistake, answered with 400.
    #[error("value not accepted by the database: {0}")]
    InvalidInput(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An unreachable database is `temporarily_unavailable` (503); anything else is a
/// `server_error` whose cause is logged, never sent.
impl From<StoreError> for crate::protocol::OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => crate::protocol::OAuthError::unavailable(e),
            StoreError::InvalidInput(_) => crate::protocol::OAuthError::invalid_request(
                "the request contains a value that cannot be used (for example a NUL character)",
            ),
            _ => crate::protocol::OAuthError::server_error(e),
        }
    }
}

impl From<StoreError> for crate::protocol::error::TokenEndpointError {
    fn from(e: StoreError) -> Self {
        crate::protocol::OAuthError::from(e).into()
    }
}

/// Everything a node needs from its database.
pub trait Store:
    ClientStore
    + UserStore
    + SessionStore
    + InteractionStore
    + AuthCodeStore
    + GrantStore
    + RefreshTokenStore
    + RevocationStore
    + ConsentStore
    + KeyStore
    + ThrottleStore
    + ReplayStore
    + PushedRequestStore
    + DeviceStore
    + FactorStore
    + RegistrationStore
    + PasskeyStore
    + OutboxStore
    + EmailTokenStore
    + UpstreamStore
    + AuditStore
    + ApplyStore
    + Housekeeping
{
}

impl<T> Store for T where
    T: ClientStore
        + UserStore
        + SessionStore
        + InteractionStore
        + AuthCodeStore
        + GrantStore
        + RefreshTokenStore
        + RevocationStore
        + ConsentStore
        + KeyStore
        + ThrottleStore
        + ReplayStore
        + PushedRequestStore
        + DeviceStore
        + FactorStore
        + RegistrationStore
        + PasskeyStore
        + OutboxStore
        + EmailTokenStore
        + UpstreamStore
        + AuditStore
        + ApplyStore
        + Housekeeping
{
}

/// Connection settings for `open`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before the store reports
    /// `Unavailable` (the caller answers 503 instead of queueing without bound).
    pub acquire_timeout: std::time::Duration,
}

/// Which database backend to use; picked once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    /// Path of the SQLite file; created when missing.
    Sqlite(std::path::PathBuf),
}

/// Opens the backend named by `url` (creating the SQLite file and its directory when
/// missing). Does not migrate; call `migrate` for that.
pub async fn open(
    url: &DatabaseUrl,
    options: &ConnectOptions,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    match url {
        DatabaseUrl::Postgres(u) => Ok(std::sync::Arc::new(
            postgres::PgStore::connect(u, options).await?,
        )),
        DatabaseUrl::Sqlite(path) => Ok(std::sync::Arc::new(
            sqlite::SqliteStore::connect(path, options).await?,
        )),
    }
}
