//! Storage behind one trait per concern. The protocol core calls these traits and never sees
//! SQL; `postgres` and `sqlite` implement them with sqlx, and `contract` holds the tests every
//! backend must pass.
//!
//! Security rules are part of the contract, and each backend enforces them atomically in the
//! database: a code is consumed by one conditional update (`consume_code`), a refresh token is
//! rotated in one transaction (`rotate_refresh_token`), and both report reuse so the caller can
//! revoke the whole grant. Timestamps are Unix seconds (`i64`); hashes are the 32-byte output
//! of `crypto::SecretHasher`.

use async_trait::async_trait;

use crate::protocol::client::ClientMetadata;
use crate::protocol::user::UserClaims;

pub use devices::{DeviceAnswer, DeviceAnswered, DeviceApproval, DeviceRecord, DeviceStore, Poll};
pub use pushed::{PushedRequest, PushedRequestStore};
pub use registrations::RegistrationStore;
pub use replay::ReplayStore;

mod devices;
pub mod postgres;
mod pushed;
mod registrations;
mod replay;
mod sql;
pub mod sqlite;
pub mod testing;

#[cfg(test)]
mod contract;

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

/// How long audit events are kept before housekeeping deletes them (90 days).
pub const AUDIT_RETENTION: i64 = 90 * 24 * 3600;

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

/// A registered client. `secret_hash` is `None` for public clients.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_hash: Option<Vec<u8>>,
    pub metadata: ClientMetadata,
    pub issued_at: i64,
    pub updated_at: i64,
}

/// A user who logs in on the login page. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub sub: String,
    pub username: String,
    pub password_hash: String,
    pub claims: UserClaims,
    pub disabled: bool,
    /// The user must choose a new password at the next login; setting a password clears it.
    pub password_reset_required: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A browser session after login. The cookie holds a random token; only its hash is stored.
/// `sid` is the public session identifier put in ID tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionRecord {
    pub session_hash: Vec<u8>,
    pub sid: String,
    pub user_sub: String,
    pub auth_time: i64,
    /// Authentication methods references (RFC 8176), space-separated, e.g. `pwd`.
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The end of a login that issues a code without asking for consent: the interaction that
/// finishes (each finishes once) and the code with its grant.
#[derive(Debug, Clone, Copy)]
pub struct InteractionFinish<'a> {
    pub interaction_id: &'a str,
    /// Until when the interaction could still be presented: its finished mark is kept that
    /// long.
    pub interaction_expires_at: i64,
    pub code: &'a AuthCodeRecord,
    pub grant_expires_at: i64,
}

/// The consent page's Allow: the interaction that finishes, the browser's session, the scope
/// granted, the code and the event. The code's `user_sub`, `sid`, `auth_time` and `amr`, and
/// the event's `user_sub`, are taken from the session (whatever the records hold), so that
/// the page need not read the session first.
#[derive(Debug, Clone, Copy)]
pub struct ConsentFinish<'a> {
    pub interaction_id: &'a str,
    pub interaction_expires_at: i64,
    pub session_hash: &'a [u8],
    /// The public id (`sid`) of the session the interaction was decided for: a browser whose
    /// session changed since (another login, another user) gets `NoSession`.
    pub session_sid: &'a str,
    /// The scope granted now, added to what the user had granted `code.client_id` before
    /// (saved as of `code.created_at`, which is also "now" for the session's expiry).
    pub scope: &'a str,
    pub code: &'a AuthCodeRecord,
    pub grant_expires_at: i64,
    pub event: &'a AuditEvent,
}

/// What `InteractionStore::finish_consent` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Consent, event, grant and code are stored, for the session's user `user_sub`.
    Issued { user_sub: String },
    /// No live session with an enabled user, or not the session the interaction was
    /// decided for: nothing was written.
    NoSession,
    /// The interaction had finished before: nothing was written.
    AlreadyFinished,
}

/// A live session with what the pages ask about its user and one client, read at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub session: SessionRecord,
    pub username: String,
    pub user_disabled: bool,
    /// The scope the user has granted the client, if any.
    pub consented_scope: Option<String>,
}

/// The family of tokens descended from one authorization (one code, or one password grant).
/// Revoking it ends every refresh token of the family and makes its access tokens inactive.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub created_at: i64,
    /// Kept at least until every access token of the family has expired.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// An authorization code, stored by hash and bound to everything the token request must match.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthCodeRecord {
    pub code_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
    pub acr: Option<String>,
    pub resource: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The result of trying to redeem a code.
// One value per token request, moved straight into the caller's match: boxing the record to
// shrink the enum would cost an allocation and buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRedemption {
    /// First redemption within its lifetime: the code is now consumed.
    Redeemed(AuthCodeRecord),
    /// The code was redeemed before: the caller must revoke `grant_id`.
    Reused { grant_id: String },
    /// Unknown or expired.
    Invalid,
}

/// One refresh token of a family. `scope` is the scope originally granted (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    pub token_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub sid: String,
    pub auth_time: i64,
    pub amr: String,
    pub resource: Option<String>,
    pub created_at: i64,
    /// When this token dies unused (idle lifetime).
    pub idle_expires_at: i64,
    /// When the family dies whatever happens (absolute lifetime).
    pub expires_at: i64,
}

/// The result of trying to rotate a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented token was current; it is now rotated out and the new one stored.
    Rotated(RefreshTokenRecord),
    /// The presented token had been rotated out before (or its family was revoked): the caller
    /// must revoke `grant_id`.
    Reused { grant_id: String },
    /// Unknown, expired, or its family is revoked.
    Invalid,
}

/// Remembered consent of one user to one client.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRecord {
    pub user_sub: String,
    pub client_id: String,
    pub scope: String,
    pub updated_at: i64,
}

/// A signing key. `private_sealed` is the PKCS#8 private key sealed with the master key
/// (`crypto::Sealer`, with the kid as associated data); `public_jwk` is the public JWK as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_sealed: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    /// Set when a newer key replaced this one; it stays published until every token it
    /// signed has expired.
    pub retired_at: Option<i64>,
}

/// A security event in the audit log. `detail` is a JSON object; it never holds a secret,
/// password, token or code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEvent {
    /// Assigned by the store; ignored on insert.
    pub event_id: i64,
    pub occurred_at: i64,
    pub kind: String,
    pub user_sub: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// Which events to list: every set field must match. Newest first; `before` is an
/// `event_id` cursor (events with a smaller id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub user_sub: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Counters bumped on every change that nodes cache, polled to invalidate their caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeVersions {
    pub clients: i64,
    pub keys: i64,
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Fails with `Conflict("client_id")` when the id exists. Bumps the clients version.
    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    /// Ordered by `client_id`, those strictly after `after`, at most `limit`.
    async fn list_clients(&self, after: Option<&str>, limit: u32)
    -> StoreResult<Vec<ClientRecord>>;
    /// Replaces the metadata; false when there is no such client. Bumps the clients version.
    async fn update_client_metadata(
        &self,
        client_id: &str,
        metadata: &ClientMetadata,
        now: i64,
    ) -> StoreResult<bool>;
    /// Replaces the secret hash; false when there is no such client. Bumps the clients version.
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes the client with its codes, refresh tokens and consents, and revokes its grants;
    /// false when there was no such client. Bumps the clients version.
    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict("username")` when the username is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn get_user(&self, sub: &str) -> StoreResult<Option<UserRecord>>;
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// What a login attempt needs before it is counted, in one read: the user named
    /// `username` (if any) and `ThrottleStore::latest_lock` of `throttle_keys` (one or two).
    async fn get_user_for_login(
        &self,
        username: &str,
        throttle_keys: &[&str],
        now: i64,
    ) -> StoreResult<(Option<UserRecord>, Option<i64>)>;
    /// Ordered by `sub`, those strictly after `after`, at most `limit`.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<UserRecord>>;
    /// Replaces username, claims, disabled, password_reset_required and updated_at; false
    /// when there is no such user.
    /// Fails with `Conflict("username")` when the new username is taken.
    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool>;
    /// Sets the password hash and clears `password_reset_required`.
    async fn set_password(&self, sub: &str, password_hash: &str, now: i64) -> StoreResult<bool>;
    /// The forced password change: sets `new_hash` and clears `password_reset_required` only
    /// if the user is enabled, must choose a new password, and still has `current_hash`. Of
    /// racing calls exactly one gets true.
    async fn replace_required_password(
        &self,
        sub: &str,
        current_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes the user with its sessions, codes, refresh tokens and consents, and revokes its
    /// grants; false when there was no such user.
    async fn delete_user(&self, sub: &str, now: i64) -> StoreResult<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session and the audit event of the login that started it, all or nothing: the
    /// log shows a login exactly when it led to a session.
    async fn insert_session_with_event(
        &self,
        session: &SessionRecord,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// The session, when it exists and `expires_at > now`.
    async fn get_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRecord>>;
    /// The live session with its user (who must still exist) and the scope that user granted
    /// `client_id`: one read.
    async fn get_session_view(
        &self,
        session_hash: &[u8],
        now: i64,
        client_id: &str,
    ) -> StoreResult<Option<SessionView>>;
    async fn delete_session(&self, session_hash: &[u8]) -> StoreResult<()>;
    /// Ends every session of a user (disable, delete, password change).
    async fn delete_sessions_for_user(&self, sub: &str) -> StoreResult<u64>;
}

/// Pending interactions travel sealed in the browser (`authorize::interaction`); the store
/// only remembers which have finished, so that each finishes at most once.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Marks the interaction finished without a code (the user said no). False when it had
    /// already finished. Of racing calls exactly one gets true.
    async fn finish_interaction(&self, interaction_id: &str, expires_at: i64) -> StoreResult<bool>;
    /// Marks the interaction finished and stores the code with its grant, all or nothing.
    /// False, with nothing written, when it had already finished (by any method). Of racing
    /// calls exactly one gets true.
    async fn finish_interaction_with_code(
        &self,
        finish: &InteractionFinish<'_>,
    ) -> StoreResult<bool>;
    /// All or nothing, when the session is live and its user enabled: marks the interaction
    /// finished, adds the scope to the user's consent for the client, records the event and
    /// stores the code with its grant. Of racing calls for one interaction exactly one gets
    /// `Issued`.
    async fn finish_consent(&self, finish: &ConsentFinish<'_>) -> StoreResult<ConsentOutcome>;
}

#[async_trait]
pub trait AuthCodeStore: Send + Sync {
    /// Stores the code and creates its grant (family) row with the given expiry, atomically.
    async fn insert_code(&self, code: &AuthCodeRecord, grant_expires_at: i64) -> StoreResult<()>;
    /// Marks the code consumed with one conditional update, so that of any number of racing
    /// calls (on any number of nodes) exactly one gets `Redeemed`. An expired code, or one
    /// whose user is disabled or gone, is `Invalid` (and stays unconsumed); a consumed one is
    /// `Reused`. On success the grant's expiry is raised to at
    /// least `grant_expires_at`.
    async fn consume_code(
        &self,
        code_hash: &[u8],
        now: i64,
        grant_expires_at: i64,
    ) -> StoreResult<CodeRedemption>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Creates a grant row (password grant; codes create theirs in `insert_code`).
    async fn insert_grant(&self, grant: &GrantRecord) -> StoreResult<()>;
    async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>>;
    /// Revokes the family: marks the grant revoked and deletes its refresh tokens. Idempotent.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()>;
    /// Revokes every grant of a user (all clients), or of one user and client.
    async fn revoke_grants_for_user(
        &self,
        sub: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> StoreResult<u64>;
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// In one transaction: if `old_hash` is the current token of a live, unrevoked family and
    /// neither lifetime has passed, mark it rotated and insert `new` (whose grant, client,
    /// user and scope the caller copied from the old token). Of racing calls with the same
    /// token exactly one gets `Rotated` (carrying the old record); the rest see `Reused`.
    async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation>;
    /// The grant of a token that was rotated out, for reuse detection: `Some` when
    /// `token_hash` names a token whose `rotated_at` is set.
    async fn rotated_token_grant(&self, token_hash: &[u8]) -> StoreResult<Option<String>>;
    /// The current (not rotated) token, when it and its family are live.
    async fn get_refresh_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Remembers a revoked access token until it would have expired anyway.
    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()>;
    /// True when the token's `jti` was revoked or its grant (when it has one) is revoked or
    /// gone. One round trip.
    async fn is_access_token_revoked(&self, jti: &str, grant_id: Option<&str>)
    -> StoreResult<bool>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn get_consent(&self, sub: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>>;
    /// Inserts or replaces the consent row.
    async fn save_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    /// False when there was none.
    async fn delete_consent(&self, sub: &str, client_id: &str) -> StoreResult<bool>;
    async fn list_consents(&self, sub: &str) -> StoreResult<Vec<ConsentRecord>>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All keys, newest first.
    async fn list_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// In one transaction: sets `retired_at = now` on every key that has none, then inserts
    /// `new_keys`. Bumps the keys version.
    async fn rotate_keys(&self, new_keys: &[SigningKeyRecord], now: i64) -> StoreResult<()>;
    /// Inserts the first keys only if the table is empty (several nodes may start at once);
    /// true when these were inserted. Bumps the keys version when it inserts.
    async fn insert_initial_keys(&self, keys: &[SigningKeyRecord]) -> StoreResult<bool>;
    /// Deletes keys retired before `retired_before`.
    async fn delete_retired_keys(&self, retired_before: i64) -> StoreResult<u64>;
}

/// How one kind of throttle key is limited, in plain numbers that the store applies inside
/// the statement that counts an attempt (`ThrottleStore::count_attempt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Attempts within `window` that cost nothing.
    pub free: i64,
    /// Seconds over which attempts are counted; the window starts again once this long has
    /// passed since the last counted attempt.
    pub window: i64,
    /// After the free attempts each one locks the key for a back-off that doubles from one
    /// second up to this many seconds.
    pub max_delay: i64,
    /// The attempt that brings the count to this locks the key for `lockout` seconds.
    pub lockout_after: i64,
    pub lockout: i64,
}

impl ThrottleRule {
    /// The lock (a Unix time; 0 for none) that the attempt bringing the count to `attempts`
    /// puts on its key at `now`. The store applies the same rule in SQL; this is its
    /// reference, used for a key's first attempt and by tests.
    pub fn lock_after(&self, attempts: i64, now: i64) -> i64 {
        if attempts >= self.lockout_after {
            now + self.lockout
        } else if attempts > self.free {
            let exponent = attempts - self.free - 1;
            let delay = if exponent >= 20 {
                self.max_delay
            } else {
                (1_i64 << exponent).min(self.max_delay)
            };
            now + delay
        } else {
            0
        }
    }
}

/// What `ThrottleStore::count_attempt` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptCount {
    /// The attempt is counted: `attempts` in the current window, this one included.
    /// `locked_until` is the lock it put on the key for the attempts after it (0: none).
    Counted { attempts: i64, locked_until: i64 },
    /// The key is locked until then: nothing was counted or written.
    Refused { locked_until: i64 },
}

/// Attempt counters, shared by every node. An attempt is counted before the work it guards
/// (a password hash, a secret comparison), in the same statement that checks the lock, so
/// that racing attempts on any number of nodes cannot all pass a check made before any of
/// them was counted.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// The latest lock still in force at `now` (`locked_until > now`) among `keys` (one or
    /// two): a read that lets a refused attempt cost no write. It decides nothing on its own:
    /// `count_attempt` checks the lock again in the statement that counts.
    async fn latest_lock(&self, keys: &[&str], now: i64) -> StoreResult<Option<i64>>;
    /// In one statement: when `key` is locked at `now`, `Refused` and nothing written;
    /// otherwise counts the attempt (in a new window when the last one has passed) and, when
    /// `rule` says so for the count reached, locks the key for the attempts after this one.
    /// Of N racing calls on an unlocked key, exactly those the rule lets through are
    /// `Counted` (for a rule with `free` = 5: five, then the sixth locks the rest out).
    async fn count_attempt(
        &self,
        key: &str,
        rule: &ThrottleRule,
        now: i64,
    ) -> StoreResult<AttemptCount>;
    /// After an attempt that succeeded: forgets every attempt of `clear` (the account that
    /// proved itself), and takes back the one attempt counted for `release` (the address it
    /// came from, whose other attempts stand), lifting that key's lock when what remains is
    /// within `rule.free`.
    async fn settle_success(
        &self,
        clear: Option<&str>,
        release: Option<(&str, &ThrottleRule)>,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events matching `filter`, newest first, at most `filter.limit`.
    async fn list_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Deletes at most `batch` expired rows of each kind (codes, sessions, interactions,
    /// refresh tokens, grants, revoked access tokens, throttle counters, and audit events
    /// older than `AUDIT_RETENTION`); returns how many in all.
    async fn purge_expired(&self, now: i64, batch: u32) -> StoreResult<u64>;
    /// Cheap counters for cache invalidation across nodes.
    async fn change_versions(&self) -> StoreResult<ChangeVersions>;
    /// Applies the backend's pending migrations (idempotent), for callers that hold only an
    /// `Arc<dyn Store>`.
    async fn migrate(&self) -> StoreResult<()>;
    /// A trivial query, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Connections open and idle in the pool right now, for `/metrics`.
    fn pool_stats(&self) -> PoolStats;
}

/// Database pool usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: usize,
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
    + RegistrationStore
    + AuditStore
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
        + RegistrationStore
        + AuditStore
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

/// Opens the backend named by `url` (creating the SQLite file and its directory when
/// missing). Does not migrate; call `migrate` for that.
pub async fn open(
    url: &crate::config::DatabaseUrl,
    options: &ConnectOptions,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    match url {
        crate::config::DatabaseUrl::Postgres(u) => Ok(std::sync::Arc::new(
            postgres::PgStore::connect(u, options).await?,
        )),
        crate::config::DatabaseUrl::Sqlite(path) => Ok(std::sync::Arc::new(
            sqlite::SqliteStore::connect(path, options).await?,
        )),
    }
}
