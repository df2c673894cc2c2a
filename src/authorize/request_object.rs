//! Signed authorization requests (JAR, RFC 9101): the `request` parameter, a JWT signed with
//! one of the client's keys (`client_auth::keys`), whose claims are the request's parameters.
//!
//! Only the request object's parameters count (RFC 9101 §5); `response_type`, `client_id` and
//! `scope` may also stand outside it, but must then be equal (OpenID Connect Core §6.1).
//! `alg: none`, symmetric algorithms, a `typ` other than `oauth-authz-req+jwt`, a bad
//! signature, an `iss`, `aud` or `client_id` that is not this client and this server, or an
//! expired object are `invalid_request_object`.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::app::App;
use crate::protocol::client::CLIENT_SIGNING_ALGS;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::ClientRecord;

/// How far in the future a request object's `nbf` may be.
const MAX_SKEW: i64 = 60;
/// Claims about the object itself, not parameters of the request.
const ENVELOPE: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];
/// Parameters that may stand outside the object when equal to the inside ones.
const ALSO_OUTSIDE: [&str; 3] = ["response_type", "client_id", "scope"];

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestObject, description)
}

/// The parameters of the request that `outside` (the request as sent, with its `request`)
/// stands for, once `client`'s signature on the object checks out.
pub async fn merge(
    app: &App,
    client: &ClientRecord,
    outside: &Params,
) -> Result<Params, OAuthError> {
    let Some(jwt) = outside.get("request") else {
        return Err(invalid("the request parameter is missing"));
    };
    let claims = verify(app, client, jwt).await?;
    let mut pairs = Vec::with_capacity(claims.len());
    for (name, value) in claims {
        if ENVELOPE.contains(&name.as_str()) {
            continue;
        }
        if name == "request" || name == "request_uri" {
            return Err(invalid("a request object cannot hold another request"));
        }
        let value = match value {
            Value::String(s) => s,
            Value::Null => continue,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        pairs.push((name, value));
    }
    let inside = Params::from_pairs(pairs)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidRequestObject, e.to_string()))?;
    for name in ALSO_OUTSIDE {
        if let (Some(out), Some(inn)) = (outside.get(name), inside.get(name))
            && out != inn
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequestObject,
                format!("{name} outside the request object differs from the one inside"),
            ));
        }
    }
    if inside
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(invalid(
            "the request object's client_id is not the client's",
        ));
    }
    Ok(inside.with("client_id", &client.client_id))
}

fn algorithm(name: &str) -> Option<Algorithm> {
    if !CLIENT_SIGNING_ALGS.contains(&name) {
        return None;
    }
    name.parse().ok()
}

/// The claims of `jwt`, signed by `client`.
async fn verify(
    app: &App,
    client: &ClientRecord,
    jwt: &str,
) -> Result<Map<String, Value>, OAuthError> {
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|_| invalid("the request object is not a signed JWT"))?;
    let alg_name = format!("{:?}", header.alg);
    let alg = algorithm(&alg_name)
        .ok_or_else(|| invalid("the request object's algorithm is not accepted"))?;
    if client
        .metadata
        .request_object_signing_alg
        .as_ref()
        .is_some_and(|required| *required != alg_name)
    {
        return Err(invalid(
            "the request object is not signed with the registered request_object_signing_alg",
        ));
    }
    if let Some(typ) = &header.typ {
        let typ = typ.to_ascii_lowercase();
        if typ != "oauth-authz-req+jwt" && typ != "application/oauth-authz-req+jwt" {
            return Err(invalid(
                "the request object's typ must be oauth-authz-req+jwt",
            ));
        }
    }
    let now = app.now();
    let keys = app
        .client_keys
        .keys_for(&app.outbound, client, header.kid.as_deref(), now)
        .await
        .map_err(|_| invalid("the client's keys are not available"))?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = keys.decode::<Map<String, Value>>(jwt, header.kid.as_deref(), &validation);
    let claims = claims.ok_or_else(|| invalid("the request object's signature does not verify"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    if text("iss").is_some_and(|iss| iss != client.client_id) {
        return Err(invalid("the request object's iss is not the client"));
    }
    let issuer = app.config.issuer.as_str();
    let aud_ok = match claims.get("aud") {
        None => true,
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(invalid("the request object's aud is not this server"));
    }
    if claims.contains_key("exp") && number("exp").is_none_or(|exp| exp <= now) {
        return Err(invalid("the request object has expired"));
    }
    if number("nbf").is_some_and(|nbf| nbf > now + MAX_SKEW) {
        return Err(invalid("the request object is not valid yet"));
    }
    Ok(claims)
}
