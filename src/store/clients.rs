//! Registered clients. Nodes cache client metadata, so every change bumps the `clients`
//! change counter in the same transaction; deleting a client takes its codes, refresh
//! tokens and consents with it and revokes its grants (`grants.rs`, `OwnerDeletion`).
//!
//! Contract: `contract/clients.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::grants::OwnerDeletion;
use super::housekeeping::CLIENTS_VERSION;
use super::postgres::PgStore;
use super::sql::{self, Bind, SqlRow, db_err};
use super::sqlite::SqliteStore;
use crate::protocol::client::ClientMetadata;

/// A registered client. `secret_hash` is `None` for public clients. The record carries
/// every secret that may work (the current one and at most one previous one kept by a
/// rotation), so that checking a secret needs no query beyond loading the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_hash: Option<Vec<u8>>,
    /// When the current secret was made.
    pub secret_created_at: Option<i64>,
    /// When the current secret stops working; `None`: never.
    pub secret_expires_at: Option<i64>,
    /// The secret a rotation kept working for a while.
    pub previous_secret: Option<PreviousSecret>,
    pub metadata: ClientMetadata,
    pub issued_at: i64,
    pub updated_at: i64,
}

/// A replaced secret that still works until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousSecret {
    pub hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A new secret for `set_client_secret`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewClientSecret {
    pub hash: Vec<u8>,
    pub created_at: i64,
    /// `None`: it does not expire.
    pub expires_at: Option<i64>,
}

impl ClientRecord {
    /// The hashes of the secrets that work at `now`, current first: at most two.
    pub fn live_secret_hashes(&self, now: i64) -> impl Iterator<Item = &[u8]> {
        let current = self
            .secret_hash
            .as_deref()
            .filter(|_| self.secret_expires_at.is_none_or(|e| now < e));
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|p| now < p.expires_at)
            .map(|p| p.hash.as_slice());
        current.into_iter().chain(previous)
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Fails with `Conflict("client_id")` when the id exists. Bumps the clients version.
    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    /// Ordered by `client_id`, those strictly after `after`, at most `limit`.
    async fn list_clients(&self, after: Option<&str>, limit: u32)
    -> StoreResult<Vec<ClientRecord>>;
    /// Replaces the metadata; false when there is no such client. Bumps the clients version.
    async fn update_client_metadata(
        &self,
        client_id: &str,
        metadata: &ClientMetadata,
        now: i64,
    ) -> StoreResult<bool>;
    /// Replaces the current secret in one statement; false when there is no such client.
    /// With `previous_until`, the secret being replaced keeps working until then (or until
    /// its own expiry, if sooner) as the previous secret; without, it stops at once. Any
    /// older previous secret is dropped: at most two secrets ever work. Bumps the clients
    /// version.
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret: &NewClientSecret,
        previous_until: Option<i64>,
    ) -> StoreResult<bool>;
    /// Deletes the client with its codes, refresh tokens and consents, and revokes its grants;
    /// false when there was no such client. Bumps the clients version.
    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool>;
}

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, metadata, issued_at, updated_at, secret_created_at, \
         secret_expires_at, previous_secret_hash, previous_secret_created_at, \
         previous_secret_expires_at"
    };
}

pub(super) const INSERT_CLIENT: &str = concat!(
    "INSERT INTO client (",
    client_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
const GET_CLIENT: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM client WHERE client_id = $1"
);
// Keyset pagination; the first page starts after '' (the schema forbids empty ids).
const LIST_CLIENTS: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM client WHERE client_id > $1 ORDER BY client_id"
);
pub(super) const UPDATE_CLIENT_METADATA: &str =
    "UPDATE client SET metadata = $2, updated_at = $3 WHERE client_id = $1";
// Right-hand sides read the row as it was, so the old current secret becomes the previous
// one in the same statement that replaces it.
pub(super) const SET_CLIENT_SECRET: &str = "UPDATE client SET \
     previous_secret_hash = CASE WHEN $5 IS NULL THEN NULL ELSE secret_hash END, \
     previous_secret_created_at = CASE WHEN $5 IS NULL THEN NULL ELSE secret_created_at END, \
     previous_secret_expires_at = CASE WHEN $5 IS NULL THEN NULL \
         WHEN secret_expires_at IS NOT NULL AND secret_expires_at < $5 THEN secret_expires_at \
         ELSE $5 END, \
     secret_hash = $2, secret_created_at = $3, secret_expires_at = $4, updated_at = $3 \
     WHERE client_id = $1";

pub(super) const CLIENT_DELETION: OwnerDeletion = OwnerDeletion {
    delete_owner: "DELETE FROM client WHERE client_id = $1",
    revoke_grants: "UPDATE auth_grant SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
    dependents: &[
        "DELETE FROM auth_code WHERE client_id = $1",
        "DELETE FROM consent WHERE client_id = $1",
    ],
    families: &[
        "DELETE FROM refresh_family WHERE client_id = $1",
        "DELETE FROM legacy_refresh_token WHERE client_id = $1",
    ],
    ends_sessions: false,
    version: Some(CLIENTS_VERSION),
};

fn client_from_row(row: &impl SqlRow) -> StoreResult<ClientRecord> {
    let metadata: String = row.col("metadata")?;
    let previous_hash: Option<Vec<u8>> = row.col("previous_secret_hash")?;
    let previous_created: Option<i64> = row.col("previous_secret_created_at")?;
    let previous_expires: Option<i64> = row.col("previous_secret_expires_at")?;
    Ok(ClientRecord {
        client_id: row.col("client_id")?,
        secret_hash: row.col("secret_hash")?,
        secret_created_at: row.col("secret_created_at")?,
        secret_expires_at: row.col("secret_expires_at")?,
        previous_secret: match (previous_hash, previous_created, previous_expires) {
            (Some(hash), Some(created_at), Some(expires_at)) => Some(PreviousSecret {
                hash,
                created_at,
                expires_at,
            }),
            _ => None,
        },
        metadata: sql::from_json(&metadata, "client metadata")?,
        issued_at: row.col("issued_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// Binds a new client's ten columns (`INSERT_CLIENT`); `metadata` is the metadata as JSON.
/// Shared with `apply.rs`, so a new column is bound in one place.
pub(super) fn bind_new_client<'q, Q: Bind<'q>>(
    query: Q,
    client: &'q ClientRecord,
    metadata: String,
) -> Q {
    let previous = client.previous_secret.as_ref();
    query
        .arg(&client.client_id)
        .arg(client.secret_hash.as_deref())
        .arg(metadata)
        .arg(client.issued_at)
        .arg(client.updated_at)
        .arg(client.secret_created_at)
        .arg(client.secret_expires_at)
        .arg(previous.map(|p| p.hash.as_slice()))
        .arg(previous.map(|p| p.created_at))
        .arg(previous.map(|p| p.expires_at))
}

macro_rules! impl_client_store {
    ($store:ty) => {
        #[async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()> {
                let metadata = sql::to_json(&client.metadata, "client metadata")?;
                let query = bind_new_client(::sqlx::query(INSERT_CLIENT), client, metadata);
                self.write_and_bump(query, CLIENTS_VERSION).await?;
                Ok(())
            }

            async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
                ::sqlx::query(GET_CLIENT)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(client_from_row)
                    .transpose()
            }

            async fn list_clients(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<ClientRecord>> {
                ::sqlx::query(&super::sql::paged(LIST_CLIENTS, limit))
                    .bind(after.unwrap_or(""))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(client_from_row)
                    .collect()
            }

            async fn update_client_metadata(
                &self,
                client_id: &str,
                metadata: &ClientMetadata,
                now: i64,
            ) -> StoreResult<bool> {
                let metadata = sql::to_json(metadata, "client metadata")?;
                let query = ::sqlx::query(UPDATE_CLIENT_METADATA)
                    .bind(client_id)
                    .bind(metadata)
                    .bind(now);
                Ok(self.write_and_bump(query, CLIENTS_VERSION).await? > 0)
            }

            async fn set_client_secret(
                &self,
                client_id: &str,
                secret: &NewClientSecret,
                previous_until: Option<i64>,
            ) -> StoreResult<bool> {
                let query = ::sqlx::query(SET_CLIENT_SECRET)
                    .bind(client_id)
                    .bind(&secret.hash)
                    .bind(secret.created_at)
                    .bind(secret.expires_at)
                    .bind(previous_until);
                Ok(self.write_and_bump(query, CLIENTS_VERSION).await? > 0)
            }

            async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
                self.delete_owner(&CLIENT_DELETION, client_id, now).await
            }
        }
    };
}

impl_client_store!(PgStore);
impl_client_store!(SqliteStore);
