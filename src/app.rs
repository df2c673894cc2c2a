//! Start-up wiring and the shared state every handler sees.
//!
//! `App` is one `Arc` around `AppState`, passed through axum's `State`: a clone per extractor
//! and request is one atomic increment, whatever the state holds. This is the only place where
//! the backend, keys, caches and clock are chosen. The
//! background tasks that keep a node in step with the others (`upkeep`: cache invalidation,
//! key reload, expiry housekeeping) are started here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::accounts::PasswordHasher;
use crate::client_auth::keys::ClientKeyCache;
use crate::clients::{Client, ClientCache};
use crate::clock::Clock;
use crate::config::{Config, MasterKeySource};
use crate::crypto::{Sealer, SecretHasher};
use crate::keys::{KeyError, Keys};
use crate::outbound::Outbound;
use crate::protocol::discovery;
use crate::replay::UsedOnce;
use crate::store::{self, ConnectOptions, Store, StoreError, StoreResult};
use crate::token::dpop::nonce::DpopNonces;

pub use crate::upkeep::{CHANGE_POLL_INTERVAL, HOUSEKEEPING_BATCH, HOUSEKEEPING_INTERVAL};

/// Start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("LATCHKEY_MASTER_KEY: {0}")]
    MasterKey(String),
    #[error("LATCHKEY_DATABASE_URL: {0}")]
    Database(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("outbound requests: {0}")]
    Outbound(String),
    #[error("LATCHKEY_ISSUER: {0}")]
    Passkeys(String),
    /// A template override that does not parse or render (already one line naming the file).
    #[error("{0}")]
    Templates(#[from] crate::http::ui::overrides::OverrideError),
    #[error("LATCHKEY_SMTP_URL: {0}")]
    Mail(String),
}

/// Everything a request handler may use (fields of `AppState`, reached through `Deref`).
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// The state behind `App`.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keys>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Arc<SecretHasher>,
    pub passwords: Arc<PasswordHasher>,
    pub clients: Arc<ClientCache>,
    /// Seals pending interactions (`authorize::interaction`).
    pub interaction_sealer: Sealer,
    /// Seals second-factor secrets at rest and enrolments in progress (`accounts::factors`).
    pub factor_sealer: Sealer,
    /// Both discovery documents, serialized once at start-up.
    pub discovery: Arc<discovery::Documents>,
    /// Requests to other servers (client key sets), under the outbound rules.
    pub outbound: Outbound,
    /// Client key sets fetched from their `jwks_uri`.
    pub client_keys: Arc<ClientKeyCache>,
    /// Single-use values (client assertion and DPoP proof `jti`s), recorded in batches.
    pub used_once: UsedOnce,
    /// DPoP server nonces, the same on every node (a subkey of the master key).
    pub dpop_nonces: Arc<DpopNonces>,
    /// The WebAuthn relying party (passkeys) and the sealer of its ceremonies; `None` when
    /// the issuer's host is an IP address, which cannot be a relying-party id.
    pub passkeys: crate::accounts::factors::passkey::Shared,
    /// The pages' branding assets and template overrides, built and checked at start.
    pub pages: Arc<crate::http::ui::chrome::Pages>,
    /// Sends mail (`mail`); `None` when no SMTP server is configured, which turns off the
    /// features that need mail.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Upstream identity providers: sealers of their secrets and round trips, and the
    /// cache of their discovery documents.
    pub upstreams: Arc<crate::upstream::Upstreams>,
}

impl App {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Opens the database (migrating unless told not to), loads or creates the signing keys
    /// and builds the state. Binds nothing.
    pub async fn start(
        config: Config,
        clock: Arc<dyn Clock>,
        run_migrations: bool,
    ) -> Result<App, StartupError> {
        // Template overrides first: a broken one stops the start before anything is opened.
        let pages = Arc::new(crate::http::ui::chrome::Pages::new(&config)?);
        let master_key = resolve_master_key(&config.master_key)?;
        let store = open_store(&config).await?;
        if run_migrations {
            store.migrate().await?;
        }
        let sealer =
            Sealer::new(&master_key).map_err(|e| StartupError::MasterKey(e.to_string()))?;
        let interaction_sealer =
            Sealer::for_purpose(&master_key, crate::authorize::interaction::SEALING_PURPOSE)
                .map_err(|e| StartupError::MasterKey(e.to_string()))?;
        let factor_sealer =
            Sealer::for_purpose(&master_key, crate::accounts::factors::SEALING_PURPOSE)
                .map_err(|e| StartupError::MasterKey(e.to_string()))?;
        let keys = Keys::load_or_create(
            store.as_ref(),
            sealer,
            clock.now(),
            retired_key_publication(&config),
            crate::keys::Schedule::from_config(&config),
        )
        .await?;
        let passkeys = crate::accounts::factors::passkey::RelyingParty::for_issuer(
            &config.issuer,
            &master_key,
        )
        .map_err(|e| StartupError::Passkeys(e.to_string()))?;
        let mailer = match &config.mail {
            Some(settings) => Some(Arc::new(
                crate::mail::Mailer::new(settings, &config.issuer, &master_key)
                    .map_err(|e| StartupError::Mail(e.to_string()))?,
            )),
            None => None,
        };
        let upstreams = crate::upstream::Upstreams::new(&master_key)
            .map_err(|e| StartupError::MasterKey(e.to_string()))?;
        let passwords = PasswordHasher::new(password_hash_concurrency());
        let discovery = Arc::new(discovery::Documents::new(&config.features()));
        let outbound = Outbound::new(&config.registration_trusted_hosts)
            .map_err(|e| StartupError::Outbound(e.to_string()))?;
        Ok(App(Arc::new(AppState {
            hasher: Arc::new(SecretHasher::new(&master_key)),
            config: Arc::new(config),
            keys: Arc::new(keys),
            clock,
            passwords,
            clients: Arc::new(ClientCache::default()),
            interaction_sealer,
            factor_sealer,
            discovery,
            outbound,
            client_keys: Arc::new(ClientKeyCache::default()),
            used_once: UsedOnce::start(store.clone()),
            store,
            dpop_nonces: Arc::new(DpopNonces::new(&master_key)),
            passkeys: passkeys.map(Arc::new),
            pages,
            mailer,
            upstreams: Arc::new(upstreams),
        })))
    }

    /// A client by id, from the node's cache when possible.
    pub async fn client(&self, client_id: &str) -> StoreResult<Option<Arc<Client>>> {
        self.clients.get(self.store.as_ref(), client_id).await
    }

    /// Starts the tasks that keep this node in step with the database. They stop when the
    /// returned handle is dropped or aborted.
    pub fn spawn_background_tasks(&self) -> BackgroundTasks {
        let watcher = tokio::spawn(crate::upkeep::watch_changes(self.clone()));
        let housekeeping = tokio::spawn(crate::upkeep::housekeeping(self.clone()));
        let rotation = tokio::spawn(crate::upkeep::rotate_keys_on_schedule(self.clone()));
        let logout = tokio::spawn(crate::logout::run(self.clone()));
        let mut handles = vec![watcher, housekeeping, rotation, logout];
        if self.mailer.is_some() {
            handles.push(tokio::spawn(crate::mail::run(self.clone())));
        }
        BackgroundTasks { handles }
    }
}

/// Handles of the background tasks; aborts them when dropped.
pub struct BackgroundTasks {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// Opens the configured database.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    store::open(
        &config.database,
        &ConnectOptions {
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_millis(config.database_timeout_ms),
        },
    )
    .await
}

/// A retired key stays in JWKS as long as any token it signed can still be valid.
pub fn retired_key_publication(config: &Config) -> i64 {
    config.access_token_ttl.max(config.id_token_ttl) + 60
}

/// One argon2id hash uses 19 MiB and a whole core for its duration. Half the cores (at least
/// one) may hash at once: logins then never starve the other requests of CPU, and a burst of
/// logins costs at most that many work areas of memory (19 MiB each).
fn password_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// Reads the master key, generating the key file for the embedded default when missing.
pub fn resolve_master_key(source: &MasterKeySource) -> Result<[u8; 32], StartupError> {
    match source {
        MasterKeySource::Given(key) => Ok(*key),
        MasterKeySource::File(path) => read_or_create_key_file(path),
    }
}

fn read_or_create_key_file(path: &Path) -> Result<[u8; 32], StartupError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let err = |what: &str, e: std::io::Error| {
        StartupError::MasterKey(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = engine.decode(text.trim()).map_err(|_| {
                StartupError::MasterKey(format!("{} is not base64", path.display()))
            })?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                StartupError::MasterKey(format!("{} must hold 32 bytes", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The directory holds the key (and, for the embedded default, the database):
            // created 0700, like the key file is 0600.
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::files::create_private_dir_all(dir)
                    .map_err(|e| err("cannot create the directory of", e))?;
            }
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            crate::files::write_new_private_file(path, engine.encode(key).as_bytes())
                .map_err(|e| err("cannot write", e))?;
            Ok(key)
        }
        Err(e) => Err(err("cannot read", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated master key file is readable by its owner only, and read back unchanged.
    #[test]
    fn a_generated_master_key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("latchkey-key-{}", rand::random::<u64>()));
        let path = dir.join("nested").join("master.key");
        let key = read_or_create_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        assert_eq!(read_or_create_key_file(&path).unwrap(), key);
        std::fs::write(&path, "not base64!").unwrap();
        assert!(read_or_create_key_file(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
