//! Wire types of the admin API (and of the CLI, which prints the same JSON): what it answers
//! for clients, users and keys, and the parsing of its JSON request bodies.
//!
//! Parsing lives here, not in `http/`, so that the admin API and `latchkey client create
//! --json` refuse exactly the same documents with exactly the same messages. Nothing here
//! touches the database; `manage` does that.
//!
//! Secrets never pass through `serde` error messages: a password is taken out of the body by
//! hand before the rest is deserialized, so a wrong-typed value cannot be echoed back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::client::{ClientMetadata, ClientRegistration};
use super::error::{ErrorCode, OAuthError};
use super::user::UserClaims;
use crate::keys::PublishedKey;

/// A client as the admin API answers it: the registered metadata (RFC 7591 §3.2.1) plus its
/// identifier. The secret appears only in the answers that create it (registration and
/// rotation), and is never stored in readable form, so it cannot be shown again.
#[derive(Clone, Serialize, ToSchema)]
pub struct ClientResponse {
    pub client_id: String,
    pub client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the current secret stops working, 0 when it does not (RFC 7591 §3.2.1);
    /// present for clients that have a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// The secrets that may work (the current one first, then one a rotation kept): ids and
    /// times, never values. Absent for clients without a secret.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_secrets: Vec<ClientSecretInfo>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

/// A stored client secret as the admin API describes it. The id is derived from the stored
/// hash (not from the secret), so it names a secret without revealing anything about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientSecretInfo {
    pub id: String,
    pub created_at: i64,
    /// 0: it does not expire.
    pub expires_at: i64,
    pub current: bool,
}

/// `POST /admin/clients/{client_id}/secret`: how long the replaced secret keeps working
/// (default 0: it stops at once) and how long the new one lives (default: for ever).
///
/// Parsed by hand (`parse_secret_rotation`) for its error messages; the schema is derived
/// from this type all the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, ToSchema)]
pub struct SecretRotation {
    /// Seconds the replaced secret keeps working.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 31_622_400)]
    pub previous_secret_valid_for: i64,
    /// Seconds the new secret works; absent or `null`: it does not expire.
    #[schema(minimum = 1, maximum = 31_622_400)]
    pub secret_valid_for: Option<i64>,
}

/// The longest a rotation may keep the old secret or give the new one: a year. Longer
/// overlaps defeat the point of rotating.
pub const MAX_SECRET_VALIDITY: i64 = 366 * 86_400;

/// The rotation body; an empty body is a rotation without overlap.
pub fn parse_secret_rotation(body: &[u8]) -> Result<SecretRotation, OAuthError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(SecretRotation::default());
    }
    let mut map = json_object(body)?;
    let mut seconds = |name: &str, min: i64| -> Result<Option<i64>, OAuthError> {
        match map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=MAX_SECRET_VALIDITY).contains(&v) => Ok(Some(v)),
                _ => Err(OAuthError::invalid_request(format!(
                    "`{name}` must be a whole number of seconds from {min} to {MAX_SECRET_VALIDITY}"
                ))),
            },
            Some(_) => Err(OAuthError::invalid_request(format!(
                "`{name}` must be a number of seconds"
            ))),
        }
    };
    let rotation = SecretRotation {
        previous_secret_valid_for: seconds("previous_secret_valid_for", 0)?.unwrap_or(0),
        secret_valid_for: seconds("secret_valid_for", 1)?,
    };
    if let Some(field) = map.keys().next() {
        return Err(OAuthError::invalid_request(format!(
            "unknown field `{field}`"
        )));
    }
    Ok(rotation)
}

/// A dynamically registered client, as the registration endpoint answers it (RFC 7591 §3.2.1,
/// RFC 7592 §3): the registration plus where and with what token it is managed. No `Debug`:
/// it holds secrets.
#[derive(Clone, Serialize)]
pub struct RegistrationResponse {
    #[serde(flatten)]
    pub client: ClientResponse,
    pub registration_client_uri: String,
    pub registration_access_token: String,
}

/// An initial access token, shown this once. No `Debug`: it is a secret.
#[derive(Clone, Serialize, ToSchema)]
pub struct InitialAccessTokenResponse {
    pub token: String,
    pub expires_at: i64,
    pub max_uses: i64,
}

/// A user as the admin API answers it. There is deliberately no field for the password or
/// its hash: what is not in this type cannot leak through the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserResponse {
    pub sub: String,
    pub username: String,
    #[serde(flatten)]
    pub claims: UserClaims,
    pub disabled: bool,
    pub password_reset_required: bool,
    /// The user must use a second factor.
    pub mfa_required: bool,
    /// The user's second factors (`GET /admin/users/{sub}` only; never their secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factors: Option<Vec<FactorResponse>>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The upstream identities linked to the user (answered by `GET /admin/users/{sub}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<IdentityResponse>>,
}

/// An upstream identity linked to a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityResponse {
    pub upstream: String,
    pub subject: String,
}

/// One second factor of a user, as the admin API lists it: what it is, never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FactorResponse {
    pub id: String,
    /// `totp`, `recovery_codes` or `passkey`.
    pub kind: &'static str,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A TOTP authenticator provisioned by an operator (`POST /admin/users/{sub}/totp`): its
/// secret is shown this once. No `Debug`: it is a secret.
#[derive(Clone, Serialize, ToSchema)]
pub struct TotpProvisioned {
    pub id: String,
    /// Base32 (RFC 4648, no padding).
    pub secret: String,
    pub otpauth_uri: String,
}

/// One page of a list. `next` is the cursor to pass as `?after=` for the following page,
/// or `null` when this page is the last.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// One back-channel logout notification to a client, as
/// `GET /admin/clients/{client_id}/logout-deliveries` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogoutDelivery {
    pub id: i64,
    /// `pending` (waiting or under way), `delivered`, or `failed` (given up after 24 hours,
    /// or the client no longer takes notifications).
    pub status: String,
    pub attempts: i64,
    /// The session that ended and its user.
    pub sid: Option<String>,
    pub sub: Option<String>,
    pub created_at: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The newest notifications first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogoutDeliveryList {
    pub items: Vec<LogoutDelivery>,
}

/// The signing keys currently published (active ones and retired ones still in JWKS).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyListResponse {
    pub keys: Vec<PublishedKey>,
}

/// `POST /admin/keys/rotate`: by default the new keys are published for the publish-ahead
/// window (`LATCHKEY_KEY_PUBLISH_AHEAD`) before they sign, as in an automatic rotation;
/// `"now": true` makes them sign at once (a suspected compromise), which breaks relying
/// parties' JWKS caches until they fetch it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRotation {
    pub now: bool,
}

/// The rotation body; an empty body is a rotation published ahead.
pub fn parse_key_rotation(body: &[u8]) -> Result<KeyRotation, OAuthError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(KeyRotation::default());
    }
    // Through an object first: serde would also take `[true]` for the struct.
    serde_json::from_value(Value::Object(json_object(body)?))
        .map_err(|_| OAuthError::invalid_request("expected {\"now\": true|false}"))
}

/// A request to create a user: the login name, the password, and the OpenID claims.
///
/// Parsed by hand (`parse_user_create`), so that a password never reaches a serde error
/// message; the schema is derived from this type all the same.
#[derive(Clone, ToSchema)]
pub struct UserCreate {
    pub username: String,
    #[schema(write_only)]
    pub password: String,
    #[serde(default)]
    pub disabled: bool,
    /// The user must choose a new password at the first login.
    #[serde(default)]
    pub password_reset_required: bool,
    /// The user must use a second factor.
    #[serde(default)]
    pub mfa_required: bool,
    #[serde(flatten)]
    pub claims: UserClaims,
}

/// A partial update of a user. Claims follow JSON Merge Patch (RFC 7396): a member replaces
/// the stored value, `null` removes it, an absent member leaves it alone.
///
/// Parsed by hand (`parse_user_patch`); the schema is derived from this type all the same.
#[derive(Clone, Default, ToSchema)]
pub struct UserPatch {
    pub username: Option<String>,
    #[schema(write_only)]
    pub password: Option<String>,
    pub disabled: Option<bool>,
    /// `true` forces a password change at the next login.
    pub password_reset_required: Option<bool>,
    pub mfa_required: Option<bool>,
    /// The claims to merge: a member replaces the stored value, `null` removes it.
    #[serde(flatten)]
    #[schema(value_type = UserClaims)]
    pub claims: Map<String, Value>,
}

// Hand-written Debug impls: these types carry secrets, and a stray `{:?}` in a log line must
// not print them.

impl std::fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResponse")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UserCreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreate")
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Fields the server assigns; a body that sets them is refused rather than silently
/// ignored, so that nobody believes they changed a `sub`.
const READ_ONLY_USER_FIELDS: [&str; 3] = ["sub", "created_at", "updated_at"];

fn client_metadata_error(description: String) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// RFC 7591 client metadata from a JSON document. Malformed JSON, wrong types and unknown
/// fields are all `invalid_client_metadata` (RFC 7591 §3.2.2), with serde's description of
/// what is wrong and where.
pub fn parse_client_registration(body: &[u8]) -> Result<ClientRegistration, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|e| client_metadata_error(format!("invalid client metadata: {e}")))
}

/// The top-level JSON object of a user request, or `invalid_request`.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, OAuthError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OAuthError::invalid_request(
            "the body must be a JSON object",
        )),
        Err(e) => Err(OAuthError::invalid_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

fn refuse_read_only(map: &Map<String, Value>) -> Result<(), OAuthError> {
    for field in READ_ONLY_USER_FIELDS {
        if map.contains_key(field) {
            return Err(OAuthError::invalid_request(format!(
                "`{field}` is assigned by the server and cannot be set"
            )));
        }
    }
    Ok(())
}

/// Takes a string member out of the body. The message never quotes the value, which may be
/// a password.
fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "`{field}` must be a string"
        ))),
    }
}

fn take_disabled(map: &mut Map<String, Value>) -> Result<Option<bool>, OAuthError> {
    take_bool(map, "disabled")
}

fn take_bool(map: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, OAuthError> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "`{name}` must be true or false"
        ))),
    }
}

/// The OpenID standard claims of a user document (`latchkey apply` reads them too).
pub fn claims_from(map: Map<String, Value>) -> Result<UserClaims, OAuthError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| OAuthError::invalid_request(format!("invalid user claims: {e}")))
}

/// `POST /admin/users`: `{"username", "password", <OpenID standard claims>}`.
pub fn parse_user_create(body: &[u8]) -> Result<UserCreate, OAuthError> {
    let mut map = json_object(body)?;
    refuse_read_only(&map)?;
    let username = take_string(&mut map, "username")?
        .ok_or_else(|| OAuthError::invalid_request("`username` is required"))?;
    let password = take_string(&mut map, "password")?
        .ok_or_else(|| OAuthError::invalid_request("`password` is required"))?;
    // Not a claim: an operator may provision an account disabled and enable it later.
    let disabled = take_disabled(&mut map)?.unwrap_or(false);
    let password_reset_required = take_bool(&mut map, "password_reset_required")?.unwrap_or(false);
    let mfa_required = take_bool(&mut map, "mfa_required")?.unwrap_or(false);
    let claims = claims_from(map)?;
    Ok(UserCreate {
        username,
        password,
        disabled,
        password_reset_required,
        mfa_required,
        claims,
    })
}

/// `PATCH /admin/users/{sub}`: any of `username`, `password`, `disabled` and the claims.
pub fn parse_user_patch(body: &[u8]) -> Result<UserPatch, OAuthError> {
    let mut map = json_object(body)?;
    refuse_read_only(&map)?;
    let username = take_string(&mut map, "username")?;
    let password = take_string(&mut map, "password")?;
    let disabled = take_disabled(&mut map)?;
    let password_reset_required = take_bool(&mut map, "password_reset_required")?;
    let mfa_required = take_bool(&mut map, "mfa_required")?;
    // The claims are checked (types, unknown names) when merged onto the stored ones; check
    // the patch alone here too, so that a bad name is refused even before the user is read.
    let without_nulls: Map<String, Value> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    claims_from(without_nulls)?;
    Ok(UserPatch {
        username,
        password,
        disabled,
        password_reset_required,
        mfa_required,
        claims: map,
    })
}

/// Applies a merge patch (RFC 7396) of claims to stored claims. The result is checked like a
/// new set of claims, so a patch cannot store a wrong type or an unknown claim.
pub fn merge_claims(
    current: &UserClaims,
    patch: &Map<String, Value>,
) -> Result<UserClaims, OAuthError> {
    let mut target = serde_json::to_value(current).map_err(OAuthError::server_error)?;
    merge_patch(&mut target, Value::Object(patch.clone()));
    match target {
        Value::Object(map) => claims_from(map),
        _ => Err(OAuthError::invalid_request(
            "the claims must be a JSON object",
        )),
    }
}

/// RFC 7396 §2, verbatim in Rust.
fn merge_patch(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(members) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (name, value) in members {
                    if value.is_null() {
                        t.remove(&name);
                    } else {
                        merge_patch(t.entry(name).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_replaces_removes_and_recurses() {
        let current = UserClaims {
            name: Some("Old".into()),
            email: Some("a@example.test".into()),
            address: Some(super::super::user::Address {
                locality: Some("Paris".into()),
                country: Some("FR".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let patch = json!({"name": "New", "email": null, "address": {"locality": "Lyon"}});
        let Value::Object(patch) = patch else {
            unreachable!()
        };
        let merged = merge_claims(&current, &patch).unwrap();
        assert_eq!(merged.name.as_deref(), Some("New"));
        assert_eq!(merged.email, None);
        let address = merged.address.unwrap();
        assert_eq!(address.locality.as_deref(), Some("Lyon"));
        assert_eq!(address.country.as_deref(), Some("FR"));
    }

    #[test]
    fn user_bodies_are_checked_without_echoing_passwords() {
        let err = parse_user_create(br#"{"username": "a", "password": 12345678}"#).unwrap_err();
        assert!(!err.description.contains("12345678"));
        assert!(
            parse_user_create(br#"{"username": "a", "password": "x", "colour": "red"}"#).is_err()
        );
        assert!(parse_user_create(br#"{"username": "a", "password": "x", "sub": "s"}"#).is_err());
        assert!(parse_user_create(br#"["a"]"#).is_err());
        assert!(parse_user_create(b"{").is_err());
        let ok =
            parse_user_create(br#"{"username": "a", "password": "x", "email": "a@b"}"#).unwrap();
        assert_eq!(ok.claims.email.as_deref(), Some("a@b"));
        assert!(parse_user_patch(br#"{"disabled": "yes"}"#).is_err());
        assert!(parse_user_patch(br#"{"nickname": 3}"#).is_err());
        assert!(parse_user_patch(br#"{"nickname": null}"#).is_ok());
    }
}

/// One audit event as `GET /admin/events` answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventResponse {
    pub event_id: i64,
    pub occurred_at: i64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
