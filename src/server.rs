//! Running the server: bind, accept connections until SIGTERM or Ctrl-C, then drain
//! in-flight requests. The accept loop is ours (not `axum::serve`) so that plain and TLS
//! connections share one path that caps how many are open (`limits`) and times out the
//! ones that stall (`connection`).

mod connection;
mod limits;

use std::io;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, StartupError};
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("LATCHKEY_LISTEN: cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("LATCHKEY_TLS_CERT / LATCHKEY_TLS_KEY: cannot load the certificate and key: {0}")]
    Tls(io::Error),
    #[error("server error: {0}")]
    Io(#[from] io::Error),
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: escape codes in a log file help nobody and cost time.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `latchkey serve`: start the app, bind, serve until a shutdown signal.
pub async fn run(config: Config, run_migrations: bool) -> Result<(), ServeError> {
    let started = Instant::now();
    let listen = config.listen;
    // A bad certificate stops the program before any port is bound.
    if let Some((cert, key)) = &config.tls {
        load_tls(cert, key)?;
    }
    let app = App::start(config, Arc::new(SystemClock), run_migrations).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    tracing::info!(
        addr = %listener.local_addr()?,
        issuer = %app.config.issuer,
        startup_ms = started.elapsed().as_millis() as u64,
        "latchkey is listening"
    );
    let _background = app.spawn_background_tasks();
    let metrics = tokio::spawn(metrics_upkeep());
    let _metrics = AbortOnDrop(metrics);
    serve(app, listener, shutdown_signal()).await
}

/// Reads a PEM certificate chain and private key into a rustls configuration (TLS 1.2 and
/// 1.3 only: rustls implements nothing older) that offers HTTP/2 and HTTP/1.1 by ALPN.
fn load_tls(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    // Pick aws-lc-rs (the crypto library Latchkey already signs with) as the process-wide
    // provider; rustls refuses to guess when a build links more than one. Installing twice
    // is harmless: the second call reports the existing provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let invalid = |what: &Path, e: &dyn std::fmt::Display| {
        ServeError::Tls(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", what.display()),
        ))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(cert, &e))?;
    if chain.is_empty() {
        return Err(invalid(cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| invalid(key, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish for at most `SHUTDOWN_GRACE`. Speaks HTTPS when the configuration names a
/// certificate and key.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match &app.config.tls {
        Some((cert, key)) => Some(TlsAcceptor::from(Arc::new(load_tls(cert, key)?))),
        None => None,
    };
    let settings = app.config.connections;
    let max_connections = connection_budget(&app.config);
    let limits =
        limits::ConnectionLimits::new(&settings, max_connections, &app.config.trusted_proxies);
    let mut http = auto::Builder::new(TokioExecutor::new());
    // The connection's watchdog times request heads (see `connection` for why hyper's own
    // timer is not used); switched off here rather than left inert for want of a timer.
    http.http1().header_read_timeout(None);
    let shared = Arc::new(connection::Shared {
        router: crate::http::router(app),
        tls,
        settings,
        http,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut backoff = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = None;
                accepted
            }
            Err(error) => {
                backoff = accept_error_delay(&error, backoff);
                if let Some(delay) = backoff {
                    tracing::error!(%error, retry_in_ms = delay.as_millis() as u64, "cannot accept connections");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                continue;
            }
        };
        let Ok(admission) = limits.admit(peer.ip()) else {
            // Dropped unread: the client sees the connection closed (or reset).
            continue;
        };
        // Answers are written whole; waiting to coalesce them with later writes only adds
        // latency (axum-server, used for TLS before, set it too).
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection::run(
            stream,
            peer,
            shared.clone(),
            stopped.clone(),
            admission,
        ));
    }
    // Closing the listener refuses new connections at once; the open ones finish what
    // they are doing (idle ones close now) within the grace period.
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, limits.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
    Ok(())
}

/// How long to pause accepting after `error`, given the pause after the previous one
/// (`None`: accept again at once). A failure that concerns one connection (it was reset
/// before we took it) is skipped. Anything else, typically running out of descriptors
/// (EMFILE, ENFILE) or memory, would fail again at once: retrying in a loop would spin a
/// core while the condition lasts, so the pause starts at 10 ms and doubles up to one
/// second, letting connections close meanwhile.
fn accept_error_delay(error: &io::Error, previous: Option<Duration>) -> Option<Duration> {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => None,
        _ => Some(previous.map_or(FIRST, |p| (p * 2).min(MAX))),
    }
}

/// The total connection cap to enforce: `LATCHKEY_MAX_CONNECTIONS`, after raising the
/// descriptor limit towards what it needs; lowered (with a warning) when the limit stays
/// too small for it (see `limits::descriptor_budget`).
fn connection_budget(config: &Config) -> usize {
    let configured = config.connections.max_connections;
    let reserved = limits::reserved_descriptors(config.database_max_connections);
    let wanted = (configured as u64).saturating_add(reserved);
    let soft = limits::raise_descriptor_limit(wanted);
    let budget = limits::descriptor_budget(configured, soft, reserved);
    if budget < configured {
        tracing::warn!(
            configured,
            enforced = budget,
            descriptor_limit = soft,
            "LATCHKEY_MAX_CONNECTIONS is more than the descriptor limit allows (raise `ulimit -n` or LimitNOFILE); enforcing a lower cap"
        );
    }
    budget
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining");
}

#[cfg(test)]
mod tests;

/// The Prometheus recorder keeps latency samples until its upkeep folds them into the
/// histograms; without a scrape they would pile up, so upkeep runs on a timer.
pub async fn metrics_upkeep() {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Some(handle) = crate::http::metrics::handle() {
            handle.run_upkeep();
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
