//! Matching a requested `redirect_uri` against the registered ones: exact string comparison,
//! with the single exception of RFC 8252 §7.3 (loopback IP redirect URIs may use any port).

/// True when `requested` equals one of `registered` exactly, or both are `http` loopback IP
/// literals (127.0.0.1 or [::1]) that differ only in port.
pub fn matches_registered(requested: &str, registered: &[String]) -> bool {
    registered
        .iter()
        .any(|r| r == requested || loopback_port_variant(r, requested))
}

fn loopback_port_variant(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let is_loopback_ip = |u: &url::Url| {
        u.scheme() == "http"
            && matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST
            )
            || u.scheme() == "http"
                && matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST)
    };
    if !is_loopback_ip(&reg) || !is_loopback_ip(&req) || reg.host() != req.host() {
        return false;
    }
    // Compare everything but the port, as the client wrote it after the authority. Only
    // printable ASCII, and a port of digits only: the URL parser reads `\` as `/` and drops
    // tabs and newlines, so `http://127.0.0.1:5000\@x/cb` (path `/@x/cb` to a browser) must
    // not pass for `http://127.0.0.1:3000/cb`.
    let strip = |raw: &str| -> Option<String> {
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let rest = raw.strip_prefix("http://")?;
        let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..path_start];
        let host = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => {
                let port = &authority[i + 1..];
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                &authority[..i]
            }
            _ => authority,
        };
        Some(format!("{host}{}", &rest[path_start..]))
    };
    match (strip(registered), strip(requested)) {
        (Some(a), Some(b)) => a == b && !requested.contains('#'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(requested: &str, registered: &str, expected: bool) {
        assert_eq!(
            matches_registered(requested, &[registered.to_owned()]),
            expected,
            "{requested} vs {registered}"
        );
    }

    #[test]
    fn exact_match_only_except_loopback_ports() {
        check("https://a.example/cb", "https://a.example/cb", true);
        check("https://a.example/cb/", "https://a.example/cb", false);
        check("https://a.example/cb?x=1", "https://a.example/cb", false);
        check("https://a.example/c", "https://a.example/cb", false);
        check("https://A.example/cb", "https://a.example/cb", false);
        check("https://a.example:8443/cb", "https://a.example/cb", false);
        check("http://127.0.0.1:5000/cb", "http://127.0.0.1/cb", true);
        check("http://127.0.0.1:5000/cb", "http://127.0.0.1:3000/cb", true);
        check("http://[::1]:5000/cb", "http://[::1]:3000/cb", true);
        check(
            "http://127.0.0.1:5000/other",
            "http://127.0.0.1:3000/cb",
            false,
        );
        check(
            "http://localhost:5000/cb",
            "http://localhost:3000/cb",
            false,
        );
        check(
            "http://127.0.0.2:5000/cb",
            "http://127.0.0.1:3000/cb",
            false,
        );
        check("http://[::1]:5000/cb", "http://127.0.0.1:3000/cb", false);
        check(
            "http://127.0.0.1:5000/cb#x",
            "http://127.0.0.1:3000/cb",
            false,
        );
        check(
            "http://user@127.0.0.1:5000/cb",
            "http://127.0.0.1:3000/cb",
            false,
        );
    }

    /// Found by the redirect_uri fuzz target (fuzz/corpus/redirect_uri/loopback-backslash):
    /// the URL parser reads these with the loopback host, so the textual comparison of
    /// everything but the port must not skip what follows a `:` in the authority.
    #[test]
    fn backslash_and_whitespace_in_the_authority_do_not_match() {
        let registered = "http://127.0.0.1:3000/cb";
        check("http://127.0.0.1:5000\\@evil.example/cb", registered, false);
        check("http://127.0.0.1:5000\\/cb", registered, false);
        check("http://127.0.0.1:5000\t/cb", registered, false);
        check("http://127.0.0.1:5000\n/cb", registered, false);
        check("http://127.0.0.1:/cb", registered, false);
        check("http://127.0.0.1:5000x/cb", registered, false);
        check(
            "http://[::1]:5000\\@evil.example/callback",
            "http://[::1]/callback",
            false,
        );
        check("http://127.0.0.1:65535/cb", registered, true);
        check("http://[::1]:5000/callback", "http://[::1]/callback", true);
    }
}
