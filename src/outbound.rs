//! Requests Latchkey makes to other servers (a client's `jwks_uri`, back-channel logout
//! deliveries; later upstream identity providers), all through one client with the same rules:
//! 5 s for the whole exchange, no redirects, at most 256 KiB read, and URLs that clients
//! supply may reach only public addresses. A URL's host is checked when it is registered
//! (`check_url`) and again against every address the connection would use (the resolver
//! below), so a name that later resolves to `127.0.0.1` or `169.254.169.254` is refused too.
//! Hosts in `LATCHKEY_REGISTRATION_TRUSTED_HOSTS` are exempt (a test setup, or an operator's
//! internal key server).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openidconnect::http;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The whole exchange, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most read of any answer.
pub const MAX_BODY: usize = 256 * 1024;

/// Why an outbound request failed. The text is safe to show an operator; it never holds the
/// answer's body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    #[error("the URL is not allowed: {0}")]
    Refused(&'static str),
    #[error("the server could not be reached in time")]
    Unreachable,
    #[error("the server answered with status {0}")]
    Status(u16),
    #[error("the answer is larger than 256 KiB")]
    TooLarge,
    #[error("the answer is not valid: {0}")]
    Invalid(&'static str),
}

/// Whether an address is one a client-supplied URL may reach: not loopback, private,
/// link-local, unique-local, shared (CGNAT), documentation, multicast, unspecified or
/// otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b)
                || s[0] == 0x0100)
        }
    }
}

/// The outbound client of a node.
#[derive(Clone)]
pub struct Outbound {
    http: reqwest::Client,
    trusted: Arc<Vec<String>>,
}

impl Outbound {
    /// A client whose guard lets `trusted_hosts` (lower-case names or IP literals) reach any
    /// address.
    pub fn new(trusted_hosts: &[String]) -> Result<Self, OutboundError> {
        // rustls needs its crypto provider chosen once per process; Latchkey uses aws-lc-rs.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let trusted = Arc::new(trusted_hosts.to_vec());
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicOnly {
                trusted: trusted.clone(),
            }))
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| OutboundError::Invalid("the outbound HTTP client cannot be built"))?;
        Ok(Outbound { http, trusted })
    }

    fn is_trusted(&self, host: &str) -> bool {
        is_trusted(&self.trusted, host)
    }

    /// Checks a client-supplied URL before it is stored or fetched: `https` (or `http` to a
    /// trusted host), and a host that is trusted or not an IP literal of a non-public
    /// address. Names are checked again at each fetch, against what they resolve to.
    pub fn check_url(&self, url: &str) -> Result<url::Url, OutboundError> {
        check_url(&self.trusted, url)
    }

    /// GETs `url` (checked as by `check_url`) and returns the body of a 200 answer.
    pub async fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, OutboundError> {
        let url = self.check_url(url)?;
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|_| OutboundError::Unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(OutboundError::Status(response.status().as_u16()));
        }
        read_limited(response).await
    }

    /// POSTs a form to `url` (checked as by `check_url`); any 2xx answer is success. The
    /// answer's body is read (at most 256 KiB) and dropped.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<(), OutboundError> {
        let url = self.check_url(url)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|_| OutboundError::Unreachable)?;
        let status = response.status();
        read_limited(response).await?;
        if !status.is_success() {
            return Err(OutboundError::Status(status.as_u16()));
        }
        Ok(())
    }

    /// Sends any request (the upstream relying party's token and userinfo requests, and
    /// what the `openidconnect` crate asks for: discovery, JWKS) under the same rules as
    /// `get`: checked URL, 5 s, no redirects, at most 256 KiB read. Answers of every status
    /// come back; the caller decides what a status means.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, OutboundError> {
        let (parts, body) = request.into_parts();
        let url = self.check_url(&parts.uri.to_string())?;
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .map_err(|_| OutboundError::Invalid("unsupported method"))?;
        let mut builder = self.http.request(method, url);
        for (name, value) in &parts.headers {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let response = builder
            .body(body)
            .send()
            .await
            .map_err(|_| OutboundError::Unreachable)?;
        let status = response.status().as_u16();
        let mut out = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            out = out.header(name.as_str(), value.as_bytes());
        }
        let body = read_limited(response).await?;
        out.body(body)
            .map_err(|_| OutboundError::Invalid("the answer's headers are not valid"))
    }

    /// Whether a URL's host is exempt from the public-address rule.
    pub fn trusts(&self, url: &url::Url) -> bool {
        url.host_str().is_some_and(|h| self.is_trusted(h))
    }
}

fn is_trusted(trusted: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    trusted.contains(&host)
}

fn check_url(trusted: &[String], raw: &str) -> Result<url::Url, OutboundError> {
    let url = url::Url::parse(raw).map_err(|_| OutboundError::Refused("not an absolute URL"))?;
    if url.username() != "" || url.password().is_some() {
        return Err(OutboundError::Refused("user information is not allowed"));
    }
    let Some(host) = url.host_str() else {
        return Err(OutboundError::Refused("the URL has no host"));
    };
    let trusted_host = is_trusted(trusted, host);
    match url.scheme() {
        "https" => {}
        "http" if trusted_host => {}
        _ => return Err(OutboundError::Refused("the URL must use https")),
    }
    if !trusted_host {
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) {
            return Err(OutboundError::Refused(
                "the URL points at a loopback, private or otherwise non-public address",
            ));
        }
        if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
            return Err(OutboundError::Refused("the URL points at localhost"));
        }
    }
    Ok(url)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, OutboundError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(OutboundError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| OutboundError::Unreachable)?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(OutboundError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Resolves names as the system does, then keeps only public addresses (all of them for a
/// trusted host): the check happens on the addresses the connection will actually use.
struct PublicOnly {
    trusted: Arc<Vec<String>>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let trusted = is_trusted(&self.trusted, name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| trusted || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the name resolves to no public address",
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn client_supplied_urls_are_checked() {
        let trusted = vec!["127.0.0.1".to_owned(), "keys.internal".to_owned()];
        assert!(check_url(&trusted, "https://keys.example.com/jwks").is_ok());
        assert!(check_url(&trusted, "http://keys.example.com/jwks").is_err());
        assert!(check_url(&trusted, "https://10.0.0.1/jwks").is_err());
        assert!(check_url(&trusted, "https://[::1]/jwks").is_err());
        assert!(check_url(&trusted, "https://localhost/jwks").is_err());
        assert!(check_url(&trusted, "https://user:pw@keys.example.com/").is_err());
        assert!(check_url(&trusted, "ftp://keys.example.com/").is_err());
        assert!(check_url(&trusted, "http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url(&trusted, "http://KEYS.internal/jwks").is_ok());
        assert!(check_url(&[], "http://127.0.0.1:8080/jwks").is_err());
    }
}
