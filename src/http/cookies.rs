//! The two browser cookies: the session (after login) and the interaction binding (ties a
//! pending login or consent to the browser that started it). Both `HttpOnly`,
//! `SameSite=Lax`, `Path=/`; with an https issuer also `Secure` and `__Host-` prefixed.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::config::Config;

pub fn session_name(config: &Config) -> &'static str {
    if config.issuer_is_https {
        "__Host-latchkey_session"
    } else {
        "latchkey_session"
    }
}

pub fn binding_name(config: &Config) -> &'static str {
    if config.issuer_is_https {
        "__Host-latchkey_interaction"
    } else {
        "latchkey_interaction"
    }
}

fn build(config: &Config, name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(config.issuer_is_https);
    cookie.set_max_age(time_duration(max_age));
    cookie
}

fn time_duration(seconds: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(seconds)
}

pub fn session_cookie(config: &Config, value: String) -> Cookie<'static> {
    build(config, session_name(config), value, config.session_ttl)
}

pub fn binding_cookie(config: &Config, value: String) -> Cookie<'static> {
    build(
        config,
        binding_name(config),
        value,
        crate::authorize::interaction::INTERACTION_TTL,
    )
}

/// The upstream round trip's cookie (`upstream::flow`): what the callback must check,
/// sealed. `SameSite=Lax` so that it comes back with the upstream's top-level redirect.
pub fn upstream_name(secure: bool) -> &'static str {
    if secure {
        "__Host-latchkey_upstream"
    } else {
        "latchkey_upstream"
    }
}

/// The upstream cookie holding `value` (`secure` when the issuer is https).
pub fn upstream_cookie(secure: bool, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(upstream_name(secure), value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(secure);
    cookie.set_max_age(time_duration(crate::upstream::flow::TRIP_TTL));
    cookie
}

/// The upstream cookie, expired: sent with the callback's answer.
pub fn upstream_cookie_removal(secure: bool) -> Cookie<'static> {
    let mut cookie = upstream_cookie(secure, String::new());
    cookie.set_max_age(time_duration(0));
    cookie
}

/// A cookie value, when present and of sane length.
pub fn read<'a>(jar: &'a CookieJar, name: &str) -> Option<&'a str> {
    jar.get(name)
        .map(|c| c.value())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}
