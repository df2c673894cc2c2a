//! Running the server: bind, serve until SIGTERM or Ctrl-C, then drain in-flight requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;
use std::path::Path;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

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
    Tls(std::io::Error),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
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
        load_tls(cert, key).await?;
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
    serve(app, listener, shutdown_signal()).await
}

/// Reads a PEM certificate chain and private key into a rustls configuration (TLS 1.2 and
/// 1.3 only: rustls implements nothing older).
async fn load_tls(cert: &Path, key: &Path) -> Result<RustlsConfig, ServeError> {
    // Pick aws-lc-rs (the crypto library Latchkey already signs with) as the process-wide
    // provider; rustls refuses to guess when a build links more than one. Installing twice
    // is harmless: the second call reports the existing provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(ServeError::Tls)
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
        Some((cert, key)) => Some(load_tls(cert, key).await?),
        None => None,
    };
    let router = crate::http::router(app);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    if let Some(tls) = tls {
        let handle = axum_server::Handle::new();
        let signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
        return axum_server::from_tcp_rustls(listener.into_std()?, tls)
            .handle(handle)
            .serve(service)
            .await
            .map_err(ServeError::Io);
    }
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Io),
        _ = signalled_rx => {}
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.map_err(ServeError::Io),
        Err(_) => {
            tracing::warn!("grace period over; closing remaining connections");
            Ok(())
        }
    }
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
