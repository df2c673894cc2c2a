//! Assurance: what a session's authentication methods are worth, in one place. The methods a
//! login used become the session's `amr` (RFC 8176), the `amr` decides the `acr` level put in
//! tokens, and the policies (the user's `mfa_required`, the client's `require_mfa`, the
//! request's `acr_values`) decide the level a flow owes. Passkeys plug in as `Method::Hwk`, a
//! login at an upstream identity provider as `Method::Fed`.
//!
//! A federated session's stored `amr` also carries what only the ID token needs: the upstream's
//! id (`idp:ID`) and the `amr` values the upstream reported (`up:VALUE`). Those never count
//! towards the level here: Latchkey did not see those factors, so a local policy that asks for
//! two factors asks for a local one after `fed` (`with_method` keeps them across a step-up).

use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::client::ClientMetadata;
use crate::store::FactorKind;

/// An authentication method (RFC 8176 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// A login at an upstream identity provider (federation): one factor, as a password.
    Fed,
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
            Method::Fed => "fed",
            Method::Pwd => "pwd",
            Method::Otp => "otp",
            Method::Hwk => "hwk",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "fed" => Some(Method::Fed),
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

/// The stored value naming the upstream of a federated login: `idp:ID`.
const IDP_PREFIX: &str = "idp:";
/// The stored values an upstream reported in its own `amr`: `up:VALUE`.
const UPSTREAM_PREFIX: &str = "up:";

/// The stored `amr` of a login at upstream `upstream` that reported `upstream_amr`: `fed`, the
/// upstream id, and the upstream's values (RFC 8176 tokens only: up to 8, each 1 to 32 of
/// `A-Za-z0-9_-`, anything else dropped).
pub fn federated(upstream: &str, upstream_amr: &[String]) -> String {
    let mut values = vec![
        Method::Fed.as_str().to_owned(),
        format!("{IDP_PREFIX}{upstream}"),
    ];
    let mut reported: Vec<&str> = Vec::new();
    for value in upstream_amr {
        let token = !value.is_empty()
            && value.len() <= 32
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if token && !reported.contains(&value.as_str()) && reported.len() < 8 {
            reported.push(value);
        }
    }
    values.extend(reported.iter().map(|v| format!("{UPSTREAM_PREFIX}{v}")));
    values.join(" ")
}

/// The stored `amr` of a session that adds `method` (a second factor, a step-up) to the one
/// whose `amr` is `stored`: the local methods as `amr` writes them, then whatever `stored`
/// carried of a federated login (`idp:`, `up:`), unchanged.
pub fn with_method(stored: &str, method: Method) -> String {
    let mut used = methods(stored);
    used.push(method);
    let mut out = amr(&used);
    for value in stored.split(' ') {
        if value.starts_with(IDP_PREFIX) || value.starts_with(UPSTREAM_PREFIX) {
            out.push(' ');
            out.push_str(value);
        }
    }
    out
}

/// A stored `amr` as the ID token carries it: the `amr` values (the local ones, then those the
/// upstream reported that are not among them), and the `idp` of a federated login.
pub fn id_token_claims(stored: &str) -> (Vec<String>, Option<String>) {
    let mut amr: Vec<String> = Vec::new();
    let mut reported = Vec::new();
    let mut idp = None;
    for value in stored.split(' ').filter(|s| !s.is_empty()) {
        if let Some(id) = value.strip_prefix(IDP_PREFIX) {
            idp = Some(id.to_owned());
        } else if let Some(v) = value.strip_prefix(UPSTREAM_PREFIX) {
            reported.push(v.to_owned());
        } else {
            amr.push(value.to_owned());
        }
    }
    for value in reported {
        if !amr.contains(&value) {
            amr.push(value);
        }
    }
    (amr, idp)
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

    #[test]
    fn a_federated_login_is_one_factor_whatever_the_upstream_reports() {
        let reported = ["pwd", "mfa", "otp", "bad value", "fed", "x:y", "otp"].map(String::from);
        let stored = federated("corp", &reported);
        assert_eq!(stored, "fed idp:corp up:pwd up:mfa up:otp up:fed");
        assert_eq!(
            acr(&stored),
            "pwd",
            "the upstream's factors are not Latchkey's"
        );
        assert!(!meets(&stored, Level::Mfa));
        let (amr, idp) = id_token_claims(&stored);
        assert_eq!(amr, ["fed", "pwd", "mfa", "otp"]);
        assert_eq!(idp.as_deref(), Some("corp"));
    }

    #[test]
    fn a_local_factor_after_fed_reaches_mfa_and_keeps_the_upstream() {
        let stored = with_method(&federated("corp", &["pwd".into()]), Method::Otp);
        assert_eq!(stored, "fed otp mfa idp:corp up:pwd");
        assert_eq!(acr(&stored), "mfa");
        let (amr, idp) = id_token_claims(&stored);
        assert_eq!(amr, ["fed", "otp", "mfa", "pwd"]);
        assert_eq!(idp.as_deref(), Some("corp"));
        let passkey = with_method(&federated("corp", &[]), Method::Hwk);
        assert_eq!(passkey, "fed hwk mfa idp:corp");
        assert_eq!(acr(&passkey), "phr");
    }

    #[test]
    fn a_local_login_has_no_idp() {
        assert_eq!(with_method("pwd", Method::Otp), "pwd otp mfa");
        assert_eq!(id_token_claims("pwd"), (vec!["pwd".to_owned()], None));
        assert_eq!(id_token_claims(""), (vec![], None));
    }
}
