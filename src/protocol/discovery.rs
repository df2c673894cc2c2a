//! Discovery metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), built from the
//! configuration's `Features` so that what is advertised is exactly what is served.

use serde::Serialize;

use super::client::CLIENT_SIGNING_ALGS;

/// The algorithms DPoP proofs may be signed with (RFC 9449 §5.1): asymmetric only, since the
/// proof carries its key.
pub const DPOP_SIGNING_ALGS: [&str; 6] = ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"];

/// Paths of the protocol endpoints and pages, relative to the issuer. The router uses the
/// same constants.
pub mod paths {
    pub const AUTHORIZE: &str = "/authorize";
    pub const TOKEN: &str = "/token";
    pub const USERINFO: &str = "/userinfo";
    pub const JWKS: &str = "/jwks";
    pub const REVOCATION: &str = "/revoke";
    pub const INTROSPECTION: &str = "/introspect";
    pub const PAR: &str = "/par";
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    pub const DEVICE: &str = "/device";
    pub const REGISTRATION: &str = "/register";
    pub const LOGIN: &str = "/login";
    pub const CONSENT: &str = "/consent";
    pub const END_SESSION: &str = "/logout";
    pub const PASSWORD: &str = "/password";
    pub const PASSWORD_FORGOT: &str = "/password/forgot";
    pub const PASSWORD_RESET: &str = "/password/reset";
    pub const EMAIL_VERIFY: &str = "/email/verify";
    pub const EMAIL_PENDING: &str = "/email/pending";
    pub const SIGNUP: &str = "/signup";
    pub const ACCOUNT: &str = "/account";
    pub const ACCOUNT_LOGIN: &str = "/account/login";
    pub const ACCOUNT_CONSENTS: &str = "/account/consents";
    pub const ACCOUNT_PASSKEYS_REMOVE: &str = "/account/passkeys/remove";
    /// The account page's own sections: password change, email address, profile, sessions.
    pub const ACCOUNT_PASSWORD: &str = "/account/password";
    pub const ACCOUNT_EMAIL: &str = "/account/email";
    pub const ACCOUNT_PROFILE: &str = "/account/profile";
    pub const ACCOUNT_SESSIONS_END: &str = "/account/sessions/end";
    pub const ACCOUNT_SESSIONS_END_OTHERS: &str = "/account/sessions/end-others";
    pub const WEBAUTHN_REGISTER_OPTIONS: &str = "/webauthn/register/options";
    pub const WEBAUTHN_REGISTER: &str = "/webauthn/register";
    pub const WEBAUTHN_LOGIN_OPTIONS: &str = "/webauthn/login/options";
    pub const WEBAUTHN_LOGIN: &str = "/webauthn/login";
    /// The second-factor step of a login, and its continuation after an enrolment.
    pub const LOGIN_OTP: &str = "/login/otp";
    pub const LOGIN_RESUME: &str = "/login/resume";
    /// TOTP enrolment (also inside a flow, with `?interaction=`), the account page's
    /// second-factor step-up, recovery codes and factor removal.
    pub const ACCOUNT_TOTP: &str = "/account/totp";
    pub const ACCOUNT_OTP: &str = "/account/otp";
    pub const ACCOUNT_RECOVERY_CODES: &str = "/account/recovery-codes";
    pub const ACCOUNT_FACTORS_REMOVE: &str = "/account/factors/remove";
    /// The pages' language switcher (`http::ui::chrome::switch`).
    pub const LANGUAGE: &str = "/language";
    /// Linking an upstream identity to the signed-in user, and removing a link.
    pub const ACCOUNT_IDENTITIES_LINK: &str = "/account/identities/link";
    pub const ACCOUNT_IDENTITIES_UNLINK: &str = "/account/identities/unlink";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
}

/// Languages the login, consent and account pages are translated into (`http::ui::text`
/// holds one text set per tag), advertised as `ui_locales_supported`.
pub const UI_LOCALES: [&str; 2] = ["en", "de"];

/// Scopes with a meaning of their own; clients may register any others.
pub const STANDARD_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The `acr` levels (`accounts::assurance::Level`): a password, two factors, a
/// phishing-resistant factor (a passkey).
pub const ACR_VALUES_SUPPORTED: [&str; 3] = ["pwd", "mfa", "phr"];

pub const CLAIMS_SUPPORTED: [&str; 31] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
];

#[derive(Debug, Serialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub end_session_endpoint: String,
    pub pushed_authorization_request_endpoint: String,
    pub device_authorization_endpoint: String,
    pub registration_endpoint: String,
    pub require_pushed_authorization_requests: bool,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    pub claim_types_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub ui_locales_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.1.
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
}

/// What the configuration switches on, as far as discovery tells (`Config::features`).
#[derive(Debug, Clone, Copy)]
pub struct Features<'a> {
    pub issuer: &'a str,
    pub password_grant: bool,
    pub require_par: bool,
}

impl Metadata {
    pub fn new(features: &Features<'_>) -> Self {
        let url = |path: &str| format!("{}{}", features.issuer, path);
        let mut grants = vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ];
        if features.password_grant {
            grants.push("password");
        }
        grants.push("urn:ietf:params:oauth:grant-type:token-exchange");
        Metadata {
            issuer: features.issuer.to_owned(),
            authorization_endpoint: url(paths::AUTHORIZE),
            token_endpoint: url(paths::TOKEN),
            userinfo_endpoint: url(paths::USERINFO),
            jwks_uri: url(paths::JWKS),
            revocation_endpoint: url(paths::REVOCATION),
            introspection_endpoint: url(paths::INTROSPECTION),
            end_session_endpoint: url(paths::END_SESSION),
            pushed_authorization_request_endpoint: url(paths::PAR),
            device_authorization_endpoint: url(paths::DEVICE_AUTHORIZATION),
            registration_endpoint: url(paths::REGISTRATION),
            require_pushed_authorization_requests: features.require_par,
            scopes_supported: STANDARD_SCOPES.to_vec(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query", "form_post"],
            grant_types_supported: grants,
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: vec!["RS256", "ES256", "EdDSA"],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            revocation_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            token_endpoint_auth_signing_alg_values_supported: CLIENT_SIGNING_ALGS.to_vec(),
            revocation_endpoint_auth_signing_alg_values_supported: CLIENT_SIGNING_ALGS.to_vec(),
            introspection_endpoint_auth_signing_alg_values_supported: CLIENT_SIGNING_ALGS.to_vec(),
            code_challenge_methods_supported: vec!["S256"],
            claims_supported: CLAIMS_SUPPORTED.to_vec(),
            acr_values_supported: ACR_VALUES_SUPPORTED.to_vec(),
            claim_types_supported: vec!["normal"],
            prompt_values_supported: vec!["none", "login", "consent"],
            ui_locales_supported: UI_LOCALES.to_vec(),
            claims_parameter_supported: false,
            request_parameter_supported: true,
            // request_uri only from the PAR endpoint, never fetched from the client.
            request_uri_parameter_supported: false,
            request_object_signing_alg_values_supported: CLIENT_SIGNING_ALGS.to_vec(),
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: DPOP_SIGNING_ALGS.to_vec(),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
        }
    }
}

/// The discovery document, serialized once (both well-known URLs serve the same metadata).
pub struct Documents {
    pub json: bytes::Bytes,
}

impl Documents {
    pub fn new(features: &Features<'_>) -> Self {
        let json = serde_json::to_vec(&Metadata::new(features)).unwrap_or_default();
        Documents { json: json.into() }
    }
}
