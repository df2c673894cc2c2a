//! Redirect URI rules: `validate_redirect_uri` (registration) and `matches_registered`
//! (the authorization request) on arbitrary strings.
//!
//! Properties: neither panics; a registered URI is canonical (the URL parser serialises it
//! back byte for byte) and carries no user information; against a registered https URI only
//! that exact string matches; against a registered loopback URI a match is the same URI but for the port (the
//! one RFC 8252 §7.3 exception), as the browser will read it; nothing that matches carries a
//! fragment.

#![no_main]

use latchkey::authorize::redirect_uri::matches_registered;
use latchkey::protocol::client::validate_redirect_uri;
use libfuzzer_sys::fuzz_target;

const REGISTERED: [&str; 6] = [
    "https://app.example/cb",
    "https://app.example/cb?tenant=a",
    "http://127.0.0.1:3000/cb",
    "http://[::1]/callback",
    "http://localhost:8080/cb",
    "com.example.app:/oauth2redirect",
];

fuzz_target!(|data: &[u8]| {
    let uri = String::from_utf8_lossy(data);
    let uri = uri.as_ref();
    if validate_redirect_uri(uri).is_ok() {
        assert!(!uri.contains('#'), "{uri:?} registered with a fragment");
        assert!(
            !uri.chars().any(|c| c.is_control() || c == ' '),
            "{uri:?} registered with characters a URI cannot hold"
        );
        let parsed = url::Url::parse(uri).expect("a registered URI parses");
        assert_eq!(
            parsed.as_str(),
            uri,
            "{uri:?} registered though the parser reads it as another URI"
        );
        assert!(
            parsed.username().is_empty() && parsed.password().is_none(),
            "{uri:?} registered with user information"
        );
        match parsed.scheme() {
            "https" => assert!(parsed.host().is_some()),
            "http" => assert!(
                match parsed.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                },
                "{uri:?}: http on a host that is not loopback"
            ),
            scheme => assert!(scheme.contains('.'), "{uri:?}: scheme {scheme}"),
        }
    }

    let all: Vec<String> = REGISTERED.iter().map(|s| (*s).to_owned()).collect();
    let any = matches_registered(uri, &all);
    for registered in REGISTERED {
        let matched = matches_registered(uri, &[registered.to_owned()]);
        assert!(!matched || any, "matches one but not the list");
        if !matched {
            continue;
        }
        assert!(!uri.contains('#'), "{uri:?} has a fragment yet matched");
        if uri == registered {
            continue;
        }
        // Only the loopback IP literals may differ, and then only in the port.
        let reg = url::Url::parse(registered).expect("registered URI parses");
        let req = url::Url::parse(uri).expect("a port variant parses");
        assert!(
            registered.starts_with("http://127.0.0.1") || registered.starts_with("http://[::1]"),
            "{uri:?} matched {registered:?} without being equal"
        );
        assert_eq!(req.scheme(), "http");
        assert_eq!(req.host(), reg.host(), "{uri:?}");
        assert_eq!(req.username(), "", "{uri:?}");
        assert_eq!(req.password(), None, "{uri:?}");
        assert_eq!(req.path(), reg.path(), "{uri:?} reaches another path");
        assert_eq!(req.query(), reg.query(), "{uri:?}");
        // What the server redirects to is the URI as sent: every byte but the port must be
        // the registered URI's, so no parser can read it differently.
        assert!(
            uri.bytes().all(|b| b.is_ascii_graphic()),
            "{uri:?} has bytes a parser drops or rewrites"
        );
    }
});
