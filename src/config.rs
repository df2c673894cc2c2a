//! Configuration: a TOML file plus `LATCHKEY_*` environment variables (environment wins),
//! parsed raw by figment and then validated into the `Config` the rest of the program sees.
//!
//! Validation happens before anything binds a port or touches a database. Every failure is a
//! `ConfigError` whose `Display` is one line naming the variable and what is wrong with it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

pub mod brand;
use brand::RawBrand;
pub use brand::{Brand, Logo, Rgb, Theme};

/// The default configuration file, read when present and no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/latchkey.toml";
/// Where the embedded SQLite database and its generated master key live by default.
pub const DEFAULT_DATA_DIR: &str = "data";

/// A setting that failed validation: the variable's name and the reason, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: env_name(key),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn env_name(key: &str) -> String {
    if key.is_empty() {
        "configuration".to_owned()
    } else {
        format!("LATCHKEY_{}", key.to_ascii_uppercase())
    }
}

/// The settings exactly as the file and environment spell them, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: Option<String>,
    listen: Option<String>,
    database_url: Option<String>,
    admin_token: Option<String>,
    master_key: Option<String>,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    refresh_token_idle_ttl: Option<i64>,
    refresh_token_reuse_grace: Option<i64>,
    code_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
    session_ttl: Option<i64>,
    access_token_alg: Option<String>,
    enable_password_grant: Option<bool>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    database_max_connections: Option<u32>,
    database_timeout_ms: Option<u64>,
    log_format: Option<String>,
    trusted_proxies: Option<String>,
    registration_trusted_hosts: Option<String>,
    require_par: Option<bool>,
    device_code_ttl: Option<i64>,
    open_registration: Option<bool>,
    header_read_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    tls_handshake_timeout_ms: Option<u64>,
    max_connections: Option<u32>,
    max_connections_per_ip: Option<u32>,
    key_rotation_interval: Option<i64>,
    key_publish_ahead: Option<i64>,
    dpop_nonce: Option<String>,
    brand_name: Option<String>,
    brand_logo_url: Option<String>,
    brand_logo_file: Option<String>,
    brand_primary_color: Option<String>,
    brand_background_color: Option<String>,
    brand_theme: Option<String>,
    templates_dir: Option<String>,
    account_editable_claims: Option<String>,
    smtp_url: Option<String>,
    email_from: Option<String>,
    require_verified_email: Option<bool>,
    signup: Option<bool>,
}

pub use crate::accounts::account::profile::EditableClaim;
pub use crate::protocol::alg::SigningAlg;

/// `DatabaseUrl` is the store's (it names what `store::open` opens); the configuration
/// parses it from `LATCHKEY_DATABASE_URL`, and knows where the embedded default lives.
pub use crate::store::DatabaseUrl;

impl DatabaseUrl {
    pub fn is_embedded_default(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(p) if p == &default_sqlite_path())
    }
}

fn default_sqlite_path() -> PathBuf {
    Path::new(DEFAULT_DATA_DIR).join("latchkey.db")
}

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// Given by `LATCHKEY_MASTER_KEY`.
    Given([u8; 32]),
    /// Read from (or generated into) this file, mode 0600; only for SQLite.
    File(PathBuf),
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Given(_) => f.write_str("Given(..)"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Whether the token endpoint demands a server nonce in DPoP proofs (RFC 9449 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopNonceMode {
    /// A proof may carry a nonce (which must then be valid) or none.
    Optional,
    /// A proof at the token endpoint without a valid nonce gets `use_dpop_nonce`.
    Required,
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How long a client connection may wait at each stage, and how many may be open; the
/// server's accept loop enforces them (`server`). Defaults: `ConnectionSettings::DEFAULT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// From accepting a connection (after the TLS handshake), or from the first byte of a
    /// later request, until its request head is complete.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// From accepting a connection until its TLS handshake is done.
    pub tls_handshake_timeout: Duration,
    /// Open client connections, in total.
    pub max_connections: usize,
    /// Open client connections from one address (one /64 for IPv6); a trusted proxy is
    /// held only to the total.
    pub max_connections_per_ip: usize,
}

impl ConnectionSettings {
    /// The interface fixes the two timeouts (10 s for a request head, 60 s idle). The TLS
    /// handshake gets the same time as a request head: it is a few round trips, and a
    /// client that cannot finish it in 10 s is not one we can serve. 4096 connections in
    /// total is far more than a node behind a load balancer holds (the balancer reuses its
    /// connections), yet small enough that a node at the cap spends about 110 MiB on them
    /// (measured: about 22 KiB per idle connection in the clear, 27 KiB with TLS). 256 per
    /// address leaves room for a busy relying party's connection pool or an office behind
    /// one NAT, while one address alone can take at most a sixteenth of the total.
    pub const DEFAULT: ConnectionSettings = ConnectionSettings {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        tls_handshake_timeout: Duration::from_secs(10),
        max_connections: 4096,
        max_connections_per_ip: 256,
    };
}

/// The most connections a cap may allow: far beyond what one node serves, and within what
/// a semaphore can count on every platform.
const MAX_CONNECTION_CAP: u32 = 1_000_000;

/// The longest a connection timeout may be set to. Longer waits defeat their purpose, and
/// the bound keeps deadline arithmetic far from overflowing.
const MAX_CONNECTION_TIMEOUT_MS: u64 = 3_600_000;

/// Validated configuration. Handlers see only this.
#[derive(Clone)]
pub struct Config {
    /// The issuer identifier without a trailing slash; every endpoint URL starts with it.
    pub issuer: String,
    pub issuer_is_https: bool,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub admin_token: Option<String>,
    pub master_key: MasterKeySource,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub refresh_token_idle_ttl: i64,
    /// Seconds after a rotation during which the refresh token it replaced is answered with
    /// the same successor instead of revoking its family (a client retrying a lost answer);
    /// 0 turns it off.
    pub refresh_token_reuse_grace: i64,
    pub code_ttl: i64,
    pub id_token_ttl: i64,
    pub session_ttl: i64,
    pub access_token_alg: SigningAlg,
    pub enable_password_grant: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub database_max_connections: u32,
    pub database_timeout_ms: u64,
    pub log_format: LogFormat,
    /// Proxies whose `X-Forwarded-For` is believed (exact addresses).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Hosts that client-supplied URLs (a client's `jwks_uri`, and later dynamic registration)
    /// may name although they resolve to loopback, private or otherwise non-public addresses:
    /// host names or IP literals, lower case.
    pub registration_trusted_hosts: Vec<String>,
    /// Every authorization request must be pushed first (RFC 9126), server-wide.
    pub require_par: bool,
    /// Seconds a device authorization (RFC 8628) waits for its user.
    pub device_code_ttl: i64,
    /// Anyone may register a client at the registration endpoint (RFC 7591), without an
    /// initial access token.
    pub open_registration: bool,
    pub connections: ConnectionSettings,
    /// Seconds between automatic signing-key rotations; 0 turns them off.
    pub key_rotation_interval: i64,
    /// Seconds a new key is published in JWKS before it signs anything: always below the
    /// interval (capped at half of it), so that there is a time when the key is only `next`.
    pub key_publish_ahead: i64,
    /// `LATCHKEY_DPOP_NONCE`: whether DPoP proofs at the token endpoint need a server nonce.
    pub dpop_nonce: DpopNonceMode,
    /// `LATCHKEY_BRAND_*`: product name, logo, colours and theme of the built-in pages.
    pub brand: Brand,
    /// `LATCHKEY_TEMPLATES_DIR`: page templates that replace the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// `LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`: the standard claims users may edit on the account
    /// page, in the order it shows them (none by default).
    pub account_editable_claims: Vec<EditableClaim>,
    /// `email` in `LATCHKEY_ACCOUNT_EDITABLE_CLAIMS`: users may set their email address on the
    /// account page, confirmed by a mailed link (`accounts::account::email`; needs mail).
    pub account_email_editable: bool,
    /// `LATCHKEY_SMTP_URL` and `LATCHKEY_EMAIL_FROM`: where mail goes out, and from whom.
    /// `None` turns off everything that needs mail (password reset, verification, sign-up).
    pub mail: Option<MailSettings>,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL`: a login waits until the user's email address is
    /// verified (a stage of the flow, `authorize::flow::Stage::VerifyEmail`).
    pub require_verified_email: bool,
    /// `LATCHKEY_SIGNUP`: anyone may create an account at `/signup` (`accounts::signup`).
    pub signup: bool,
}

/// How mail leaves: an SMTP server and the sender's address.
#[derive(Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub smtp: SmtpUrl,
    /// `LATCHKEY_EMAIL_FROM` as given (`Name <addr@host>` or `addr@host`); checked to parse
    /// as a mailbox.
    pub from: String,
}

/// `LATCHKEY_SMTP_URL`, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte. Otherwise STARTTLS is used when the server offers it.
    pub implicit_tls: bool,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is never printed.
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets (admin token, master key, database password) are never printed.
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("listen", &self.listen)
            .field("access_token_alg", &self.access_token_alg)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// What discovery advertises of this configuration.
    pub fn features(&self) -> crate::protocol::discovery::Features<'_> {
        crate::protocol::discovery::Features {
            issuer: &self.issuer,
            password_grant: self.enable_password_grant,
            require_par: self.require_par,
        }
    }

    /// Reads the file (when present) and the process environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(path, &env)
    }

    /// Like `load`, with the environment given explicitly (tests use this).
    pub fn load_from(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(p) => {
                if !p.exists() {
                    return Err(ConfigError {
                        variable: "--config".into(),
                        reason: format!("file {} does not exist", p.display()),
                    });
                }
                figment = figment.merge(Toml::file(p));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_PATH);
                if default.exists() {
                    figment = figment.merge(Toml::file(default));
                }
            }
        }
        // Values from the environment are taken as strings and converted below, so that a
        // token made only of digits stays a string and errors name the variable.
        let mut raw: RawConfig = figment.extract().map_err(figment_error)?;
        // The last entry for a name wins, as when a later assignment overrides an earlier one.
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if raw.database_url.is_none() {
            raw.database_url = lookup("DATABASE_URL");
        }
        apply_env(&mut raw, &lookup)?;
        validate(raw)
    }
}

fn figment_error(err: figment::Error) -> ConfigError {
    let key = err.path.last().cloned().unwrap_or_default();
    let reason = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => {
            return ConfigError {
                variable: field.clone(),
                reason: "unknown setting in the configuration file".into(),
            };
        }
        kind => kind.to_string(),
    };
    ConfigError::new(&key, reason)
}

fn parse_env<T: std::str::FromStr>(key: &str, value: String) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("`{value}` is not a valid value")))
}

fn apply_env(
    raw: &mut RawConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    macro_rules! string {
        ($field:ident) => {
            if let Some(v) = lookup(&env_name(stringify!($field))) {
                raw.$field = Some(v);
            }
        };
    }
    macro_rules! parsed {
        ($field:ident) => {
            if let Some(v) = lookup(&env_name(stringify!($field))) {
                raw.$field = Some(parse_env(stringify!($field), v)?);
            }
        };
    }
    string!(issuer);
    string!(listen);
    string!(database_url);
    string!(admin_token);
    string!(master_key);
    string!(access_token_alg);
    string!(tls_cert);
    string!(tls_key);
    string!(log_format);
    string!(trusted_proxies);
    string!(registration_trusted_hosts);
    string!(dpop_nonce);
    string!(brand_name);
    string!(brand_logo_url);
    string!(brand_logo_file);
    string!(brand_primary_color);
    string!(brand_background_color);
    string!(brand_theme);
    string!(templates_dir);
    string!(account_editable_claims);
    string!(smtp_url);
    string!(email_from);
    parsed!(require_verified_email);
    parsed!(signup);
    parsed!(access_token_ttl);
    parsed!(refresh_token_ttl);
    parsed!(refresh_token_idle_ttl);
    parsed!(refresh_token_reuse_grace);
    parsed!(code_ttl);
    parsed!(id_token_ttl);
    parsed!(session_ttl);
    parsed!(enable_password_grant);
    parsed!(require_par);
    parsed!(device_code_ttl);
    parsed!(open_registration);
    parsed!(database_max_connections);
    parsed!(database_timeout_ms);
    parsed!(header_read_timeout_ms);
    parsed!(idle_timeout_ms);
    parsed!(tls_handshake_timeout_ms);
    parsed!(max_connections);
    parsed!(max_connections_per_ip);
    parsed!(key_rotation_interval);
    parsed!(key_publish_ahead);
    Ok(())
}

/// The default reuse grace of refresh tokens: long enough for a client's retry after a
/// switchover's 503 (a new primary within 3 to 8.3 s, measured; docs/deployment.md, "High
/// availability"), short enough that a stolen token is rarely worth more than its owner's.
const DEFAULT_REFRESH_TOKEN_REUSE_GRACE: i64 = 10;
/// The longest reuse grace accepted: RFC 9700 §4.14.2 allows a grace, not a second lifetime.
const MAX_REFRESH_TOKEN_REUSE_GRACE: i64 = 60;

fn positive(key: &str, value: Option<i64>, default: i64) -> Result<i64, ConfigError> {
    let v = value.unwrap_or(default);
    if v <= 0 {
        return Err(ConfigError::new(
            key,
            "must be a positive number of seconds",
        ));
    }
    Ok(v)
}

/// A connection timeout in milliseconds: at least 1, at most an hour.
fn connection_timeout(
    key: &str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(ms @ 1..=MAX_CONNECTION_TIMEOUT_MS) => Ok(Duration::from_millis(ms)),
        Some(_) => Err(ConfigError::new(
            key,
            format!("must be between 1 and {MAX_CONNECTION_TIMEOUT_MS} milliseconds"),
        )),
    }
}

/// A connection cap: at least 1, at most `MAX_CONNECTION_CAP`.
fn connection_cap(key: &str, value: Option<u32>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(n @ 1..=MAX_CONNECTION_CAP) => Ok(n as usize),
        Some(_) => Err(ConfigError::new(
            key,
            format!("must be between 1 and {MAX_CONNECTION_CAP}"),
        )),
    }
}

fn validate_connections(raw: &RawConfig) -> Result<ConnectionSettings, ConfigError> {
    let default = ConnectionSettings::DEFAULT;
    Ok(ConnectionSettings {
        header_read_timeout: connection_timeout(
            "header_read_timeout_ms",
            raw.header_read_timeout_ms,
            default.header_read_timeout,
        )?,
        idle_timeout: connection_timeout(
            "idle_timeout_ms",
            raw.idle_timeout_ms,
            default.idle_timeout,
        )?,
        tls_handshake_timeout: connection_timeout(
            "tls_handshake_timeout_ms",
            raw.tls_handshake_timeout_ms,
            default.tls_handshake_timeout,
        )?,
        max_connections: connection_cap(
            "max_connections",
            raw.max_connections,
            default.max_connections,
        )?,
        max_connections_per_ip: connection_cap(
            "max_connections_per_ip",
            raw.max_connections_per_ip,
            default.max_connections_per_ip,
        )?,
    })
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let connections = validate_connections(&raw)?;
    let issuer_raw = raw
        .issuer
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let (issuer, issuer_is_https) = validate_issuer(&issuer_raw)?;
    let issuer_host = url::Url::parse(&issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let brand = Brand::validate(
        RawBrand {
            name: raw.brand_name,
            logo_url: raw.brand_logo_url,
            logo_file: raw.brand_logo_file,
            primary_color: raw.brand_primary_color,
            background_color: raw.brand_background_color,
            theme: raw.brand_theme,
        },
        &issuer_host,
    )?;
    let templates_dir = brand::templates_dir(raw.templates_dir)?;

    let listen_raw = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listen: SocketAddr = listen_raw.parse().map_err(|_| {
        ConfigError::new(
            "listen",
            format!("`{listen_raw}` is not an address like 127.0.0.1:8080"),
        )
    })?;

    let database = match raw.database_url {
        None => DatabaseUrl::Sqlite(default_sqlite_path()),
        Some(url) => parse_database_url(&url)?,
    };

    let admin_token = match raw.admin_token {
        Some(t) if t.trim().is_empty() => None,
        Some(t) if t.len() < 16 => {
            return Err(ConfigError::new(
                "admin_token",
                "must be at least 16 characters long",
            ));
        }
        other => other,
    };

    let master_key = match raw.master_key {
        Some(encoded) => MasterKeySource::Given(decode_master_key(&encoded)?),
        None => match &database {
            DatabaseUrl::Sqlite(_) => {
                MasterKeySource::File(Path::new(DEFAULT_DATA_DIR).join("master.key"))
            }
            DatabaseUrl::Postgres(_) => {
                return Err(ConfigError::new(
                    "master_key",
                    "is required with Postgres (32 random bytes, base64; e.g. `openssl rand -base64 32`)",
                ));
            }
        },
    };

    let access_token_ttl = positive("access_token_ttl", raw.access_token_ttl, 3600)?;
    let refresh_token_ttl = positive("refresh_token_ttl", raw.refresh_token_ttl, 2_592_000)?;
    let refresh_token_idle_ttl = positive(
        "refresh_token_idle_ttl",
        raw.refresh_token_idle_ttl,
        refresh_token_ttl,
    )?;
    let refresh_token_reuse_grace = raw
        .refresh_token_reuse_grace
        .unwrap_or(DEFAULT_REFRESH_TOKEN_REUSE_GRACE);
    if !(0..=MAX_REFRESH_TOKEN_REUSE_GRACE).contains(&refresh_token_reuse_grace) {
        return Err(ConfigError::new(
            "refresh_token_reuse_grace",
            format!("must be between 0 and {MAX_REFRESH_TOKEN_REUSE_GRACE} seconds"),
        ));
    }
    let code_ttl = positive("code_ttl", raw.code_ttl, 60)?;
    if code_ttl > 600 {
        return Err(ConfigError::new(
            "code_ttl",
            "must be at most 600 seconds (RFC 6749 §4.1.2)",
        ));
    }
    let id_token_ttl = positive("id_token_ttl", raw.id_token_ttl, 3600)?;
    let session_ttl = positive("session_ttl", raw.session_ttl, 86_400)?;

    let access_token_alg = match raw.access_token_alg {
        None => SigningAlg::Es256,
        Some(a) => SigningAlg::parse(a.trim()).ok_or_else(|| {
            ConfigError::new(
                "access_token_alg",
                format!("`{a}` is not one of ES256, RS256, EdDSA"),
            )
        })?,
    };

    let tls = match (raw.tls_cert, raw.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (name, path) in [("tls_cert", &cert), ("tls_key", &key)] {
                if !Path::new(path).is_file() {
                    return Err(ConfigError::new(
                        name,
                        format!("file {path} does not exist"),
                    ));
                }
            }
            Some((PathBuf::from(cert), PathBuf::from(key)))
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "tls_key",
                "must be set together with LATCHKEY_TLS_CERT",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "tls_cert",
                "must be set together with LATCHKEY_TLS_KEY",
            ));
        }
    };

    let database_max_connections = raw.database_max_connections.unwrap_or(16);
    if database_max_connections == 0 {
        return Err(ConfigError::new(
            "database_max_connections",
            "must be at least 1",
        ));
    }
    let database_timeout_ms = raw.database_timeout_ms.unwrap_or(5000);
    if database_timeout_ms == 0 {
        return Err(ConfigError::new(
            "database_timeout_ms",
            "must be at least 1",
        ));
    }
    let log_format = match raw.log_format.as_deref().map(str::trim) {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::new(
                "log_format",
                format!("`{other}` is not text or json"),
            ));
        }
    };

    let mut trusted_proxies = Vec::new();
    for part in raw.trusted_proxies.as_deref().unwrap_or("").split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        trusted_proxies.push(part.parse().map_err(|_| {
            ConfigError::new("trusted_proxies", format!("`{part}` is not an IP address"))
        })?);
    }

    let registration_trusted_hosts = raw
        .registration_trusted_hosts
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|h| {
            h.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty())
        .collect();

    let (key_rotation_interval, key_publish_ahead) =
        validate_key_schedule(raw.key_rotation_interval, raw.key_publish_ahead)?;
    let (account_editable_claims, account_email_editable) =
        validate_editable_claims(raw.account_editable_claims.as_deref().unwrap_or(""))?;

    let mail = validate_mail(raw.smtp_url.as_deref(), raw.email_from.as_deref())?;
    let require_verified_email = raw.require_verified_email.unwrap_or(false);
    let signup = raw.signup.unwrap_or(false);
    if signup && mail.is_none() {
        // A sign-up is finished by the link in its mail.
        return Err(ConfigError::new(
            "signup",
            "needs mail: set LATCHKEY_SMTP_URL and LATCHKEY_EMAIL_FROM",
        ));
    }
    if account_email_editable && mail.is_none() {
        // A changed address is confirmed by the link mailed to it.
        return Err(ConfigError::new(
            "account_editable_claims",
            "`email` needs mail: set LATCHKEY_SMTP_URL and LATCHKEY_EMAIL_FROM",
        ));
    }
    if require_verified_email && mail.is_none() {
        // Verification needs mail; without it no login could ever finish.
        return Err(ConfigError::new(
            "require_verified_email",
            "needs mail: set LATCHKEY_SMTP_URL and LATCHKEY_EMAIL_FROM",
        ));
    }

    Ok(Config {
        brand,
        templates_dir,
        account_editable_claims,
        account_email_editable,
        mail,
        require_verified_email,
        signup,
        key_rotation_interval,
        key_publish_ahead,
        issuer,
        issuer_is_https,
        listen,
        database,
        admin_token,
        master_key,
        access_token_ttl,
        refresh_token_ttl,
        refresh_token_idle_ttl,
        refresh_token_reuse_grace,
        code_ttl,
        id_token_ttl,
        session_ttl,
        access_token_alg,
        enable_password_grant: raw.enable_password_grant.unwrap_or(false),
        tls,
        database_max_connections,
        database_timeout_ms,
        log_format,
        trusted_proxies,
        registration_trusted_hosts,
        require_par: raw.require_par.unwrap_or(false),
        open_registration: raw.open_registration.unwrap_or(false),
        device_code_ttl: {
            let ttl = positive("device_code_ttl", raw.device_code_ttl, 600)?;
            if ttl > 3600 {
                return Err(ConfigError::new(
                    "device_code_ttl",
                    "must be at most 3600 seconds",
                ));
            }
            ttl
        },
        connections,
        dpop_nonce: match raw.dpop_nonce.as_deref().map(str::trim) {
            None | Some("optional") => DpopNonceMode::Optional,
            Some("required") => DpopNonceMode::Required,
            Some(other) => {
                return Err(ConfigError::new(
                    "dpop_nonce",
                    format!("`{other}` is neither `optional` nor `required`"),
                ));
            }
        },
    })
}

/// A comma-separated list of editable claims, each named once; and whether `email` is among
/// them (the address has a section of its own, `accounts::account::email`).
fn validate_editable_claims(raw: &str) -> Result<(Vec<EditableClaim>, bool), ConfigError> {
    let mut claims = Vec::new();
    let mut email = false;
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "email" {
            email = true;
            continue;
        }
        let claim = EditableClaim::parse(name)
            .map_err(|reason| ConfigError::new("account_editable_claims", reason))?;
        if !claims.contains(&claim) {
            claims.push(claim);
        }
    }
    Ok((claims, email))
}

/// Default rotation interval: 90 days.
pub const DEFAULT_KEY_ROTATION_INTERVAL: i64 = 90 * 86_400;
/// Default publish-ahead window: one day.
pub const DEFAULT_KEY_PUBLISH_AHEAD: i64 = 86_400;

/// The rotation interval (0: off, else at least 2 seconds, so that a key can be `next` for at
/// least a second) and the publish-ahead window, capped at half the interval: a window as
/// long as the interval would have the next key scheduled the moment the previous one starts
/// signing, and relying parties would never see a key set without a pending key.
fn validate_key_schedule(
    interval: Option<i64>,
    ahead: Option<i64>,
) -> Result<(i64, i64), ConfigError> {
    let interval = interval.unwrap_or(DEFAULT_KEY_ROTATION_INTERVAL);
    if interval < 0 || interval == 1 {
        return Err(ConfigError::new(
            "key_rotation_interval",
            "must be 0 (off) or at least 2 seconds",
        ));
    }
    let ahead = positive("key_publish_ahead", ahead, DEFAULT_KEY_PUBLISH_AHEAD)?;
    if interval == 0 {
        return Ok((0, ahead));
    }
    Ok((interval, ahead.min(interval / 2)))
}

/// `LATCHKEY_SMTP_URL` and `LATCHKEY_EMAIL_FROM`: both or neither.
fn validate_mail(
    smtp_url: Option<&str>,
    from: Option<&str>,
) -> Result<Option<MailSettings>, ConfigError> {
    let smtp_url = smtp_url.map(str::trim).filter(|s| !s.is_empty());
    let from = from.map(str::trim).filter(|s| !s.is_empty());
    match (smtp_url, from) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "email_from",
            "must be set together with LATCHKEY_SMTP_URL",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "smtp_url",
            "must be set together with LATCHKEY_EMAIL_FROM",
        )),
        (Some(url), Some(from)) => {
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::new(
                    "email_from",
                    "is not a mail address like `Latchkey <login@example.com>`",
                ));
            }
            Ok(Some(MailSettings {
                smtp: parse_smtp_url(url)?,
                from: from.to_owned(),
            }))
        }
    }
}

/// `smtp://[user:pass@]host[:port]` (STARTTLS when offered; port 587 by default) or
/// `smtps://…` (TLS from the start; port 465 by default).
fn parse_smtp_url(raw: &str) -> Result<SmtpUrl, ConfigError> {
    // The URL may hold a password: errors never repeat it.
    let err = |reason: &str| ConfigError::new("smtp_url", reason.to_owned());
    let url = url::Url::parse(raw).map_err(|_| err("is not a URL like smtp://host:587"))?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        _ => return Err(err("must start with smtp:// or smtps://")),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err("has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if url.path() != "" && url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not have a path, query or fragment"));
    }
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| err("has a user or password that is not UTF-8"))
    };
    let credentials = if url.username().is_empty() {
        None
    } else {
        Some((
            decode(url.username())?,
            decode(url.password().unwrap_or_default())?,
        ))
    };
    Ok(SmtpUrl {
        host,
        port,
        implicit_tls,
        credentials,
    })
}

/// The issuer must be an https URL without query or fragment, unless its host is loopback
/// (OpenID Connect Discovery 1.0 §3; RFC 8414 §2).
fn validate_issuer(raw: &str) -> Result<(String, bool), ConfigError> {
    let err = |reason: &str| ConfigError::new("issuer", reason.to_owned());
    let url = url::Url::parse(raw).map_err(|_| err("is not an absolute URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not carry credentials"));
    }
    let is_https = match url.scheme() {
        "https" => true,
        "http" => {
            if !is_loopback_host(&url) {
                return Err(err(
                    "must use https unless its host is a loopback address or localhost",
                ));
            }
            false
        }
        _ => return Err(err("must be an https URL")),
    };
    if url.host().is_none() {
        return Err(err("has no host"));
    }
    Ok((raw.trim_end_matches('/').to_owned(), is_https))
}

pub use crate::protocol::uri::is_loopback_host;

fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(url.to_owned()));
    }
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(ConfigError::new(
                "database_url",
                "sqlite URL has no file path",
            ));
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    Err(ConfigError::new(
        "database_url",
        "must start with postgres:// or sqlite://",
    ))
}

fn decode_master_key(encoded: &str) -> Result<[u8; 32], ConfigError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim()))
        .map_err(|_| ConfigError::new("master_key", "is not valid base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| ConfigError::new("master_key", "must decode to exactly 32 bytes"))
}

#[cfg(test)]
mod tests;
