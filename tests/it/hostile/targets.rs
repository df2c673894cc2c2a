//! What the hostile requests aim at: every endpoint with the methods it serves and how its
//! errors look (`Kind`), and a realistic parameter list for each, from the live values of the
//! server under test (`Ctx`). No tests here.

use super::rng::Rng;
use super::wire::Kind;

/// What the generator knows about the server under test.
pub(super) struct Ctx {
    pub(super) authorize: String,
    pub(super) token: String,
    pub(super) revoke: String,
    pub(super) introspect: String,
    pub(super) userinfo: String,
    pub(super) end_session: String,
    pub(super) jwks: String,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) redirect_uri: String,
    pub(super) user_sub: String,
    pub(super) access_token: String,
    pub(super) interaction: String,
    pub(super) csrf: String,
}

pub(super) fn path_of(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    parsed.path().to_owned()
}

pub(super) fn pct(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A realistic parameter list for the endpoint at `path`.
pub(super) fn realistic_params(rng: &mut Rng, ctx: &Ctx, path: &str) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
    if path == ctx.authorize {
        add(
            "response_type",
            rng.one(&["code", "token", "code id_token", "", "none"]),
        );
        add(
            "client_id",
            rng.one(&[ctx.client_id.as_str(), "unknown-client", ""]),
        );
        add(
            "redirect_uri",
            rng.one(&[
                ctx.redirect_uri.as_str(),
                "https://evil.example/cb",
                "http://127.0.0.1:9/cb",
                "javascript:alert(1)",
                "",
            ]),
        );
        add(
            "scope",
            rng.one(&["openid", "openid profile email offline_access", "x y z", ""]),
        );
        add("state", &rng.word(12));
        if rng.chance(50) {
            add("code_challenge", &rng.word(43));
            add("code_challenge_method", rng.one(&["S256", "plain", "S512"]));
        }
        if rng.chance(40) {
            add(
                "prompt",
                rng.one(&["none", "login", "consent", "select_account", "none login"]),
            );
        }
        if rng.chance(30) {
            add(
                "max_age",
                rng.one(&["0", "-1", "99999999999999999999", "abc"]),
            );
        }
        if rng.chance(30) {
            add(
                "id_token_hint",
                rng.one(&[
                    "a.b.c",
                    "eyJhbGciOiJub25lIn0.e30.",
                    ctx.access_token.as_str(),
                ]),
            );
        }
        if rng.chance(20) {
            add("request", "eyJhbGciOiJub25lIn0.e30.");
        }
    } else if path == ctx.token {
        let grant = rng.one(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code",
            "",
        ]);
        add("grant_type", grant);
        match grant {
            "authorization_code" => {
                add("code", &rng.word(22));
                add("redirect_uri", &ctx.redirect_uri);
                add("code_verifier", &rng.word_in(0, 130));
            }
            "refresh_token" => {
                add("refresh_token", &rng.word(22));
                add("scope", "openid");
            }
            "password" => {
                add("username", "alice");
                add("password", &rng.word(10));
            }
            _ => add(
                "scope",
                rng.one(&["api.read", "api.read api.write", "openid", "admin"]),
            ),
        }
        if rng.chance(20) {
            add(
                "resource",
                rng.one(&["https://api.example", "not a uri", "https://x#frag"]),
            );
        }
    } else if path == ctx.revoke || path == ctx.introspect {
        let junk = rng.word(30);
        add(
            "token",
            rng.one(&[ctx.access_token.as_str(), junk.as_str(), ""]),
        );
        if rng.chance(50) {
            add(
                "token_type_hint",
                rng.one(&["access_token", "refresh_token", "id_token", "x"]),
            );
        }
    } else if path == "/login" {
        add(
            "interaction",
            rng.one(&[ctx.interaction.as_str(), "nope", ""]),
        );
        add("csrf_token", rng.one(&[ctx.csrf.as_str(), "forged", ""]));
        add("username", rng.one(&["alice", "bob", "", "alice\u{0}"]));
        add("password", &rng.word(12));
    } else if path == "/consent" {
        add(
            "interaction",
            rng.one(&[ctx.interaction.as_str(), "nope", ""]),
        );
        add("csrf_token", rng.one(&[ctx.csrf.as_str(), "forged", ""]));
        add("decision", rng.one(&["allow", "deny", "maybe", ""]));
    } else if path == ctx.end_session {
        add(
            "id_token_hint",
            rng.one(&["a.b.c", ctx.access_token.as_str(), ""]),
        );
        add(
            "post_logout_redirect_uri",
            rng.one(&["https://evil.example/", ctx.redirect_uri.as_str()]),
        );
        add("client_id", &ctx.client_id);
        add("state", &rng.word(8));
    } else if path == ctx.userinfo {
        add(
            "access_token",
            rng.one(&[ctx.access_token.as_str(), "junk"]),
        );
    } else {
        add("after", &rng.word(10));
        add("limit", rng.one(&["1", "0", "-5", "100000", "x"]));
    }
    if p.is_empty() {
        p.push(("x".into(), "y".into()));
    }
    p
}

pub(super) fn encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every endpoint: (label, path, the methods it serves, kind).
pub(super) fn endpoints(ctx: &Ctx) -> Vec<(String, String, Vec<&'static str>, Kind)> {
    vec![
        (
            "authorize".into(),
            ctx.authorize.clone(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        ("token".into(), ctx.token.clone(), vec!["POST"], Kind::Json),
        (
            "revoke".into(),
            ctx.revoke.clone(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "introspect".into(),
            ctx.introspect.clone(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "userinfo".into(),
            ctx.userinfo.clone(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "login".into(),
            "/login".into(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "consent".into(),
            "/consent".into(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "logout".into(),
            ctx.end_session.clone(),
            vec!["GET", "POST"],
            Kind::Page,
        ),
        (
            "discovery".into(),
            "/.well-known/openid-configuration".into(),
            vec!["GET"],
            Kind::Other,
        ),
        (
            "as-metadata".into(),
            "/.well-known/oauth-authorization-server".into(),
            vec!["GET"],
            Kind::Other,
        ),
        ("jwks".into(), ctx.jwks.clone(), vec!["GET"], Kind::Other),
        (
            "healthz".into(),
            "/healthz".into(),
            vec!["GET"],
            Kind::Other,
        ),
        ("readyz".into(), "/readyz".into(), vec!["GET"], Kind::Other),
        (
            "admin-clients".into(),
            "/admin/clients".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "admin-client".into(),
            "/admin/clients/no-such-client".into(),
            vec!["GET", "PUT", "DELETE"],
            Kind::Json,
        ),
        (
            "admin-client-secret".into(),
            "/admin/clients/no-such-client/secret".into(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "admin-users".into(),
            "/admin/users".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "admin-user".into(),
            format!("/admin/users/{}", ctx.user_sub),
            vec!["GET", "PATCH"],
            Kind::Json,
        ),
        (
            "admin-keys".into(),
            "/admin/keys".into(),
            vec!["GET"],
            Kind::Json,
        ),
        (
            "admin-events".into(),
            "/admin/events".into(),
            vec!["GET"],
            Kind::Json,
        ),
        (
            "admin-unknown".into(),
            "/admin/nope".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "unknown".into(),
            "/nope".into(),
            vec!["GET", "POST"],
            Kind::Json,
        ),
        (
            "unknown-deep".into(),
            "/token/extra".into(),
            vec!["POST"],
            Kind::Json,
        ),
        (
            "password-change".into(),
            "/password".into(),
            vec!["POST"],
            Kind::Page,
        ),
        ("account".into(), "/account".into(), vec!["GET"], Kind::Page),
        (
            "account-login".into(),
            "/account/login".into(),
            vec!["POST"],
            Kind::Page,
        ),
        (
            "account-consents".into(),
            "/account/consents".into(),
            vec!["POST"],
            Kind::Page,
        ),
        (
            "metrics".into(),
            "/metrics".into(),
            vec!["GET"],
            Kind::Other,
        ),
        (
            "static".into(),
            "/static/latchkey.css".into(),
            vec!["GET"],
            Kind::Other,
        ),
    ]
}
