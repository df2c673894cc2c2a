//! The client's IP address, for throttling and the audit log: the TCP peer, or, when the peer
//! is a trusted proxy (`LATCHKEY_TRUSTED_PROXIES`), the last address in `X-Forwarded-For`
//! that is not itself a trusted proxy. Without trusted proxies the header is ignored, so a
//! client cannot choose its own address.
//!
//! Also where a session starts from (`StartedFrom`: that address and the summarised
//! `User-Agent`), extracted for the handlers that start sessions.

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

/// A handler that starts a session takes where the browser is: its address (as `ClientIp`)
/// and its `User-Agent`, summarised (`accounts::user_agent`).
impl axum::extract::FromRequestParts<crate::app::App> for crate::accounts::session::StartedFrom {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &crate::app::App,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Self::request(
            client_ip(&app.config, peer, &parts.headers),
            user_agent,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(trusted: &str) -> Config {
        let env = [("LATCHKEY_TRUSTED_PROXIES".to_owned(), trusted.to_owned())];
        Config::load_from(Some(Path::new("/dev/null")), &env).unwrap()
    }

    fn ip(config: &Config, peer: &str, forwarded: &[&str]) -> Option<IpAddr> {
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        client_ip(config, Some(&ConnectInfo(peer)), &headers)
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = config("");
        assert_eq!(
            ip(&none, "203.0.113.9", &["198.51.100.1"]),
            Some("203.0.113.9".parse().unwrap())
        );
        let trusted = config("10.0.0.1,10.0.0.2");
        // From an untrusted peer the header is the client's own claim: ignored.
        assert_eq!(
            ip(&trusted, "203.0.113.9", &["198.51.100.1"]),
            Some("203.0.113.9".parse().unwrap())
        );
        // From a trusted proxy: the last address that is not itself a trusted proxy, so a
        // client cannot slip its own choice in at the front of the list.
        assert_eq!(
            ip(
                &trusted,
                "10.0.0.1",
                &["192.0.2.66, 198.51.100.1", "10.0.0.2"]
            ),
            Some("198.51.100.1".parse().unwrap())
        );
        // Garbage entries are skipped; with nothing usable the proxy itself is the client.
        assert_eq!(
            ip(&trusted, "10.0.0.1", &["not-an-ip, 198.51.100.7"]),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(
            ip(&trusted, "10.0.0.1", &["garbage"]),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            ip(&trusted, "10.0.0.1", &[]),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(client_ip(&trusted, None, &HeaderMap::new()), None);
    }
}
