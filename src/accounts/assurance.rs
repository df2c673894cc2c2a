//! Assurance: what a session's authentication methods are worth, in one place. The methods a
//! login used become the session's `amr` (RFC 8176), the `amr` decides the `acr` level put in
//! tokens, and the policies (the user's `mfa_required`, the client's `require_mfa`, the
//! request's `acr_values`) decide the level a flow owes. Passkeys plug in as `Method::Hwk`.

use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::client::ClientMetadata;
use crate::store::FactorKind;

/// An authentication method (RFC 8176 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// A password.
    Pwd,
    /// A one-time password: a TOTP code or a recovery code.
    Otp,
    /// A hardware-bound key (a passkey) with user verification.
    Hwk,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pwd => "pwd",
            Method::Otp => "otp",
            Method::Hwk => "hwk",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pwd" => Some(Method::Pwd),
            "otp" => Some(Method::Otp),
            "hwk" => Some(Method::Hwk),
            _ => None,
        }
    }
}

/// Assurance levels, as `acr` values (`acr_values_supported`), weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A password (one factor).
    Pwd,
    /// Two factors.
    Mfa,
    /// Phishing-resistant: a passkey.
    Phr,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Pwd => "pwd",
            Level::Mfa => "mfa",
            Level::Phr => "phr",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pwd" => Some(Level::Pwd),
            "mfa" => Some(Level::Mfa),
            "phr" => Some(Level::Phr),
            _ => None,
        }
    }
}

/// The methods recorded in an `amr` string (space-separated), unknown ones skipped.
pub fn methods(amr: &str) -> Vec<Method> {
    let mut out: Vec<Method> = amr.split(' ').filter_map(Method::parse).collect();
    out.sort();
    out.dedup();
    out
}

/// The `amr` string of a set of methods: each method, plus `mfa` when two independent
/// factors were used (a password and a one-time code) or one that is two by itself (a
/// passkey with user verification: possession and the user's PIN or biometric).
pub fn amr(methods: &[Method]) -> String {
    let mut sorted = methods.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut parts: Vec<&str> = sorted.iter().map(|m| m.as_str()).collect();
    let multi = sorted.len() >= 2 || sorted.contains(&Method::Hwk);
    if multi {
        parts.push("mfa");
    }
    parts.join(" ")
}

/// The level an `amr` string reaches.
pub fn level(amr: &str) -> Level {
    let used = methods(amr);
    if used.contains(&Method::Hwk) {
        Level::Phr
    } else if used.len() >= 2 {
        Level::Mfa
    } else {
        Level::Pwd
    }
}

/// The `acr` of a session with this `amr`.
pub fn acr(amr: &str) -> &'static str {
    level(amr).as_str()
}

/// What a user has towards a second factor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The operator requires a second factor of this user.
    pub mfa_required: bool,
    /// The kinds of factor the user has.
    pub kinds: Vec<FactorKind>,
}

impl Standing {
    /// Whether the user has a factor a login can use as its second one (a TOTP or a passkey;
    /// recovery codes alone are only the way back to one).
    pub fn has_second_factor(&self) -> bool {
        self.kinds
            .iter()
            .any(|k| matches!(k, FactorKind::Totp | FactorKind::Passkey))
    }

    /// The strongest level this user's factors can reach.
    fn reachable(&self) -> Level {
        if self.kinds.contains(&FactorKind::Passkey) {
            Level::Phr
        } else {
            Level::Mfa
        }
    }
}

/// The level a flow owes for `request` by `client` of the user with `standing`. A user with a
/// second factor always uses it; `mfa_required` and `require_mfa` ask for two factors; the
/// request's `acr_values` (OpenID Connect Core §3.1.2.1, in order of preference) ask for the
/// weakest level they name that Latchkey knows. A level the user's factors cannot reach (`phr`
/// without a passkey) is capped at what they can reach, and the token's `acr` tells the
/// client what it got.
pub fn required(
    standing: &Standing,
    client: &ClientMetadata,
    request: &AuthorizationRequest,
) -> Level {
    let mut level = Level::Pwd;
    if standing.mfa_required || client.require_mfa || standing.has_second_factor() {
        level = Level::Mfa;
    }
    if let Some(asked) = request
        .acr_values
        .as_deref()
        .and_then(|v| v.split(' ').filter_map(Level::parse).min())
    {
        level = level.max(asked);
    }
    if level > Level::Mfa {
        level = level.min(standing.reachable());
    }
    level
}

/// Whether `amr` reaches `level`.
pub fn meets(amr: &str, level_owed: Level) -> bool {
    level(amr) >= level_owed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_advertises_every_level() {
        let levels = [Level::Pwd, Level::Mfa, Level::Phr].map(Level::as_str);
        assert_eq!(levels, crate::protocol::discovery::ACR_VALUES_SUPPORTED);
    }

    #[test]
    fn amr_and_acr_follow_the_methods() {
        assert_eq!(amr(&[Method::Pwd]), "pwd");
        assert_eq!(amr(&[Method::Otp, Method::Pwd]), "pwd otp mfa");
        assert_eq!(amr(&[Method::Hwk]), "hwk mfa");
        assert_eq!(acr("pwd"), "pwd");
        assert_eq!(acr("pwd otp mfa"), "mfa");
        assert_eq!(acr("hwk mfa"), "phr");
        assert_eq!(acr(""), "pwd");
        assert!(meets("pwd otp mfa", Level::Mfa));
        assert!(!meets("pwd", Level::Mfa));
        assert!(!meets("pwd otp mfa", Level::Phr));
    }
}
