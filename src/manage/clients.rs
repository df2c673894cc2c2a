//! Client registration and management (RFC 7591 registration, RFC 7592 read, replace and
//! delete, plus secret rotation).
//!
//! A confidential client gets a 256-bit random secret, stored only as its keyed hash; the
//! plain secret is returned once, in the answer of `create` or `rotate_secret`, and cannot be
//! recovered afterwards. A public client (`token_endpoint_auth_method: none`) has no secret.

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::{random_secret, random_token};
use crate::protocol::admin::{
    ClientResponse, ClientSecretInfo, ListResponse, LogoutDelivery, LogoutDeliveryList,
    SecretRotation,
};
use crate::protocol::client::{ClientMetadata, ClientRegistration};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{ClientRecord, LOGOUT_KIND, NewClientSecret};

use super::Page;

/// Bytes of randomness in a client id: 128 bits, 22 base64url characters. Ids are not
/// secrets, but unguessable ids keep enumeration of the authorize endpoint pointless.
const CLIENT_ID_BYTES: usize = 16;

fn not_found(client_id: &str) -> OAuthError {
    OAuthError::new(
        ErrorCode::NotFound,
        format!("no client with id `{client_id}`"),
    )
}

fn answer(record: ClientRecord, secret: Option<String>) -> ClientResponse {
    // Beside a secret only (RFC 7591 §3.2.1); a read shows expiries in `client_secrets`.
    let client_secret_expires_at = secret
        .as_ref()
        .map(|_| record.secret_expires_at.unwrap_or(0));
    ClientResponse {
        client_secrets: secret_infos(&record),
        client_id: record.client_id,
        client_id_issued_at: record.issued_at,
        client_secret: secret,
        client_secret_expires_at,
        metadata: record.metadata,
    }
}

/// The stored secrets' ids and times. An id is a digest of the stored hash: stable, and it
/// reveals nothing the hash does not (and the hash reveals nothing of a 256-bit secret).
fn secret_infos(record: &ClientRecord) -> Vec<ClientSecretInfo> {
    let id = |hash: &[u8]| crate::crypto::sha256_b64(hash)[..16].to_owned();
    let mut out = Vec::new();
    if let Some(hash) = &record.secret_hash {
        out.push(ClientSecretInfo {
            id: id(hash),
            created_at: record.secret_created_at.unwrap_or(record.issued_at),
            expires_at: record.secret_expires_at.unwrap_or(0),
            current: true,
        });
    }
    if let Some(previous) = &record.previous_secret {
        out.push(ClientSecretInfo {
            id: id(&previous.hash),
            created_at: previous.created_at,
            expires_at: previous.expires_at,
            current: false,
        });
    }
    out
}

/// The node that made a change answers from fresh data at once; other nodes drop their
/// cached copy within `CHANGE_POLL_INTERVAL`, when the store's change version moves. Without
/// this, a rotated-out secret would keep working here until the next poll.
pub(super) fn forget_cached(app: &App) {
    app.clients.clear();
    app.client_keys.clear();
}

/// RFC 7591 §3.1: validates the metadata and registers a new client. The answer carries the
/// secret for a confidential client; it is never shown again.
pub async fn create(
    app: &App,
    registration: ClientRegistration,
) -> Result<ClientResponse, OAuthError> {
    let metadata = registration.validate()?;
    check_key_source(app, &metadata)?;
    let secret = metadata
        .token_endpoint_auth_method
        .uses_secret()
        .then(random_secret);
    let now = app.now();
    let record = ClientRecord {
        client_id: random_token(CLIENT_ID_BYTES),
        secret_hash: secret.as_deref().map(|s| app.hasher.hash(s)),
        secret_created_at: secret.as_ref().map(|_| now),
        secret_expires_at: None,
        previous_secret: None,
        metadata,
        issued_at: now,
        updated_at: now,
    };
    // A collision of 128 random bits does not happen; if the store ever reports one, it is
    // a fault worth a 500, not a retry loop.
    app.store.insert_client(&record).await?;
    forget_cached(app);
    let event = Event::new(Kind::ClientCreated)
        .client(&record.client_id)
        .detail("public", record.metadata.is_public());
    audit::record(app, event).await;
    Ok(answer(record, secret))
}

/// One page of clients, ordered by id. Never carries secrets.
pub async fn list(app: &App, page: &Page) -> Result<ListResponse<ClientResponse>, OAuthError> {
    let records = app
        .store
        .list_clients(page.after.as_deref(), page.limit)
        .await?;
    let next = page.next(&records, |r| r.client_id.as_str());
    Ok(ListResponse {
        items: records.into_iter().map(|r| answer(r, None)).collect(),
        next,
    })
}

/// RFC 7592 §2.1: the client's current metadata, without its secret.
pub async fn get(app: &App, client_id: &str) -> Result<ClientResponse, OAuthError> {
    match app.store.get_client(client_id).await? {
        Some(record) => Ok(answer(record, None)),
        None => Err(not_found(client_id)),
    }
}

/// The most logout notifications `logout_deliveries` lists.
pub const DELIVERIES_LISTED: u32 = 100;

/// The newest back-channel logout notifications to a client and how each went.
pub async fn logout_deliveries(
    app: &App,
    client_id: &str,
) -> Result<LogoutDeliveryList, OAuthError> {
    if app.store.get_client(client_id).await?.is_none() {
        return Err(not_found(client_id));
    }
    let items = app
        .store
        .list_outbox(LOGOUT_KIND, client_id, DELIVERIES_LISTED)
        .await?;
    let items = items
        .into_iter()
        .map(|item| {
            let notice: serde_json::Value = serde_json::from_str(&item.payload).unwrap_or_default();
            let text = |key: &str| notice.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            LogoutDelivery {
                id: item.outbox_id,
                sid: text("sid"),
                sub: text("sub"),
                next_attempt_at: (item.status == "pending").then_some(item.next_attempt_at),
                status: item.status,
                attempts: item.attempts,
                created_at: item.created_at,
                finished_at: item.finished_at,
                last_error: item.last_error,
            }
        })
        .collect();
    Ok(LogoutDeliveryList { items })
}

/// RFC 7592 §2.2: replaces the whole metadata, validated as on registration (a field left
/// out takes its default, as it would on registration). A `client_id` in the body must name
/// this client; a `client_secret` in the body is ignored, as §2.2 allows, so a secret can
/// only change through `rotate_secret`.
///
/// Switching between a public and a confidential client is refused: making a public client
/// confidential would need a new secret handed out here, and making a confidential one public
/// would silently drop client authentication for every token it requests. Register a new
/// client instead.
pub async fn replace(
    app: &App,
    client_id: &str,
    registration: ClientRegistration,
) -> Result<ClientResponse, OAuthError> {
    if registration
        .client_id
        .as_deref()
        .is_some_and(|given| given != client_id)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "client_id in the body does not match the client being updated (RFC 7592 §2.2)",
        ));
    }
    let metadata = registration.validate()?;
    check_key_source(app, &metadata)?;
    let current = app
        .store
        .get_client(client_id)
        .await?
        .ok_or_else(|| not_found(client_id))?;
    check_same_kind(&current.metadata, &metadata)?;
    let now = app.now();
    if !app
        .store
        .update_client_metadata(client_id, &metadata, now)
        .await?
    {
        // Deleted between the read and the write.
        return Err(not_found(client_id));
    }
    forget_cached(app);
    audit::record(app, Event::new(Kind::ClientUpdated).client(client_id)).await;
    Ok(answer(
        ClientRecord {
            metadata,
            updated_at: now,
            ..current
        },
        None,
    ))
}

/// A `jwks_uri` or `backchannel_logout_uri` must obey the outbound rules: https, and a public
/// host unless the operator trusts it (`LATCHKEY_REGISTRATION_TRUSTED_HOSTS`).
pub(super) fn check_key_source(app: &App, metadata: &ClientMetadata) -> Result<(), OAuthError> {
    let urls = [
        ("jwks_uri", &metadata.jwks_uri),
        ("backchannel_logout_uri", &metadata.backchannel_logout_uri),
    ];
    for (name, uri) in urls {
        if let Some(uri) = uri {
            app.outbound.check_url(uri).map_err(|e| {
                OAuthError::new(ErrorCode::InvalidClientMetadata, format!("{name}: {e}"))
            })?;
        }
    }
    Ok(())
}

pub(super) fn check_same_kind(
    current: &ClientMetadata,
    new: &ClientMetadata,
) -> Result<(), OAuthError> {
    let (was, will) = (
        current.token_endpoint_auth_method.uses_secret(),
        new.token_endpoint_auth_method.uses_secret(),
    );
    if !current.is_public() && !new.is_public() && was != will {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "a client cannot switch between a client secret and private_key_jwt; register a \
             new client instead",
        ));
    }
    match (current.is_public(), new.is_public()) {
        (true, false) => Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "this is a public client (token_endpoint_auth_method none); it cannot become \
             confidential. Register a new confidential client instead",
        )),
        (false, true) => Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "this is a confidential client; it cannot become public \
             (token_endpoint_auth_method none). Register a new public client instead",
        )),
        _ => Ok(()),
    }
}

/// RFC 7592 §2.3: deletes the client; the store deletes its codes, refresh tokens and
/// consents and revokes its grants, so its access tokens stop introspecting as active.
pub async fn delete(app: &App, client_id: &str) -> Result<(), OAuthError> {
    if !app.store.delete_client(client_id, app.now()).await? {
        return Err(not_found(client_id));
    }
    // A dynamically registered client's registration access token goes with it.
    app.store.delete_registration(client_id).await?;
    forget_cached(app);
    audit::record(app, Event::new(Kind::ClientDeleted).client(client_id)).await;
    Ok(())
}

/// Gives a confidential client a new secret. The old one stops working at once on this node
/// and within the cache poll interval on the others, or, with `previous_secret_valid_for`,
/// keeps working that many seconds more (never past its own expiry) so that the client can
/// be redeployed meanwhile; a secret kept by an earlier rotation is dropped. Tokens already
/// issued stay valid: a secret rotation is not a revocation.
pub async fn rotate_secret(
    app: &App,
    client_id: &str,
    rotation: SecretRotation,
) -> Result<ClientResponse, OAuthError> {
    let current = app
        .store
        .get_client(client_id)
        .await?
        .ok_or_else(|| not_found(client_id))?;
    if !current.metadata.token_endpoint_auth_method.uses_secret() {
        return Err(OAuthError::invalid_request(
            "this client authenticates without a client secret (token_endpoint_auth_method \
             none or private_key_jwt); it has no secret to rotate",
        ));
    }
    let secret = random_secret();
    let now = app.now();
    let new = NewClientSecret {
        hash: app.hasher.hash(&secret),
        created_at: now,
        expires_at: rotation.secret_valid_for.map(|s| now + s),
    };
    let previous_until =
        (rotation.previous_secret_valid_for > 0).then(|| now + rotation.previous_secret_valid_for);
    if !app
        .store
        .set_client_secret(client_id, &new, previous_until)
        .await?
    {
        return Err(not_found(client_id));
    }
    forget_cached(app);
    let event = Event::new(Kind::ClientSecretRotated)
        .client(client_id)
        .detail(
            "previous_secret_valid_for",
            rotation.previous_secret_valid_for,
        );
    audit::record(app, event).await;
    // Read back: the previous secret's expiry is the store's to decide (never past its own).
    let record = app
        .store
        .get_client(client_id)
        .await?
        .ok_or_else(|| not_found(client_id))?;
    Ok(answer(record, Some(secret)))
}
