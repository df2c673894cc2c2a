//! Pushed authorization requests (PAR, RFC 9126) and what `/authorize` does with the
//! `request_uri` and `request` parameters before its pipeline runs.
//!
//! A client pushes its request (optionally as a signed request object) to the PAR endpoint,
//! authenticated as at the token endpoint; the request is validated exactly as `/authorize`
//! would validate it and held in the database for `PUSHED_TTL` under a random `request_uri`.
//! `/authorize` then takes it, once, on any node; only the pushed parameters count. A server
//! (`LATCHKEY_REQUIRE_PAR`) or a client (`require_pushed_authorization_requests`) may refuse
//! requests that were not pushed; a client may require signed request objects.
//!
//! A client using DPoP may bind the code to its key here (RFC 9449 §10.1) with a `DPoP`
//! proof, checked as at the token endpoint: its key's thumbprint becomes the request's
//! `dpop_jkt` (a `dpop_jkt` sent beside it must name the same key).

use std::borrow::Cow;

use crate::app::App;
use crate::config::DpopNonceMode;
use crate::crypto::random_token;
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{ClientRecord, PushedRequest};
use crate::token::dpop;

use super::{AuthorizeError, request, request_object};

/// The prefix of every `request_uri` Latchkey hands out (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for the browser.
pub const PUSHED_TTL: i64 = 60;
/// Parameters of client authentication, which are not part of the pushed request.
const CLIENT_AUTH: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// What the PAR endpoint answers.
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// Checks the `DPoP` proof sent to the PAR endpoint, if any (RFC 9449 §10.1), as the token
/// endpoint does (`htu` the PAR endpoint, a server nonce when the configuration requires
/// one); its `jti` is spent.
pub async fn check_proof(
    app: &App,
    proof: Option<&str>,
) -> Result<Option<dpop::Proof>, OAuthError> {
    let Some(proof) = proof else {
        return Ok(None);
    };
    let url = format!("{}{}", app.config.issuer, paths::PAR);
    let expected = dpop::Expected {
        method: "POST",
        url: &url,
        access_token: None,
        nonce_required: app.config.dpop_nonce == DpopNonceMode::Required,
    };
    dpop::check(app, proof, &expected).await.map(Some)
}

/// Validates and stores the request `client` (authenticated) pushed; `proof` is the request's
/// checked DPoP proof, whose key the code will be bound to.
pub async fn push(
    app: &App,
    client: &ClientRecord,
    params: &Params,
    proof: Option<&dpop::Proof>,
) -> Result<Pushed, OAuthError> {
    let params = params.without(&CLIENT_AUTH);
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "a pushed request cannot itself name a request_uri",
        ));
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id is not the authenticated client",
        ));
    }
    let merged = if params.contains("request") {
        request_object::merge(app, client, &params).await?
    } else if client.metadata.require_signed_request_object {
        return Err(signed_required());
    } else {
        params.with("client_id", &client.client_id)
    };
    // RFC 9449 §10.1: the proof's key binds the code; a `dpop_jkt` beside it (in the form or
    // the request object) must name the same key.
    let merged = match proof {
        None => merged,
        Some(proof) => match merged.get("dpop_jkt") {
            Some(jkt) if jkt != proof.jkt => {
                return Err(OAuthError::invalid_request(
                    "dpop_jkt does not name the key of the DPoP proof",
                ));
            }
            _ => merged.with("dpop_jkt", &proof.jkt),
        },
    };
    // Validated now exactly as /authorize would, so that errors reach the client at once.
    let target = request::resolve_target(app, &merged)
        .await
        .map_err(|e| match e {
            AuthorizeError::Page(e) => e,
            AuthorizeError::Redirect(_) => OAuthError::invalid_request("the request is invalid"),
        })?;
    request::validate(app, &target, &merged)?;
    let id = random_token(32);
    let expires_at = app.now() + PUSHED_TTL;
    app.store
        .insert_pushed(
            &app.hasher.hash(&id),
            &PushedRequest {
                client_id: client.client_id.clone(),
                params: merged.to_form(),
                expires_at,
            },
        )
        .await?;
    Ok(Pushed {
        request_uri: format!("{REQUEST_URI_PREFIX}{id}"),
        expires_in: PUSHED_TTL,
    })
}

fn signed_required() -> OAuthError {
    OAuthError::invalid_request("this client's requests must be signed request objects")
}

fn pushed_required() -> OAuthError {
    OAuthError::invalid_request("authorization requests must be pushed first (RFC 9126)")
}

/// The parameters `/authorize` works on: the pushed request a `request_uri` names (taken
/// once), the contents of a signed `request`, or the parameters as sent. Errors here are
/// shown as a page: until the request is known, its redirect URI is not to be trusted.
pub async fn effective_params<'p>(
    app: &App,
    sent: &'p Params,
) -> Result<Cow<'p, Params>, OAuthError> {
    let client_id = sent.get("client_id");
    if let Some(uri) = sent.get("request_uri") {
        let Some(id) = uri.strip_prefix(REQUEST_URI_PREFIX) else {
            return Err(OAuthError::new(
                ErrorCode::RequestUriNotSupported,
                "only request_uri values from the pushed authorization request endpoint are accepted",
            ));
        };
        let Some(client_id) = client_id else {
            return Err(OAuthError::invalid_request("the request has no client_id"));
        };
        if id.len() > 128 {
            return Err(unknown_request_uri());
        }
        let pushed = app
            .store
            .take_pushed(&app.hasher.hash(id), app.now())
            .await?
            .ok_or_else(unknown_request_uri)?;
        if pushed.client_id != client_id {
            return Err(unknown_request_uri());
        }
        return Params::parse(pushed.params.as_bytes())
            .map(Cow::Owned)
            .map_err(|e| OAuthError::server_error(std::io::Error::other(e.to_string())));
    }
    let Some(client_id) = client_id else {
        // Nothing more to find out here; the pipeline answers a missing client_id.
        return Ok(Cow::Borrowed(sent));
    };
    let Some(client) = app.client(client_id).await? else {
        return Ok(Cow::Borrowed(sent));
    };
    if app.config.require_par || client.metadata.require_pushed_authorization_requests {
        return Err(pushed_required());
    }
    if sent.contains("request") {
        return request_object::merge(app, &client, sent)
            .await
            .map(Cow::Owned);
    }
    if client.metadata.require_signed_request_object {
        return Err(signed_required());
    }
    Ok(Cow::Borrowed(sent))
}

fn unknown_request_uri() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidRequestUri,
        "the request_uri is unknown, expired, was used before, or belongs to another client",
    )
}
