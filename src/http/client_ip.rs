//! The client's IP address, for throttling and the audit log: the TCP peer, or, when the peer
//! is a trusted proxy (`LATCHKEY_TRUSTED_PROXIES`), the last address in `X-Forwarded-For`
//! that is not itself a trusted proxy. Without trusted proxies the header is ignored, so a
//! client cannot choose its own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;

use crate::config::Config;

pub fn client_ip(
    config: &Config,
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer.map(|c| c.0.ip())?;
    if !config.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !config.trusted_proxies.contains(ip))
            .unwrap_or(peer),
    )
}

/// Extractor for the client's IP address (`None` when the server was not started with
/// connection info, as in some unit tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl axum::extract::FromRequestParts<crate::app::App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &crate::app::App,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientIp(client_ip(&app.config, peer, &parts.headers)))
    }
}
