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
use super::sql::{self, SqlRow, db_err};
use super::sqlite::SqliteStore;
use crate::protocol::client::ClientMetadata;

/// A registered client. `secret_hash` is `None` for public clients.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_hash: Option<Vec<u8>>,
    pub metadata: ClientMetadata,
    pub issued_at: i64,
    pub updated_at: i64,
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
    /// Replaces the secret hash; false when there is no such client. Bumps the clients version.
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes the client with its codes, refresh tokens and consents, and revokes its grants;
    /// false when there was no such client. Bumps the clients version.
    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool>;
}

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, metadata, issued_at, updated_at"
    };
}

const INSERT_CLIENT: &str = concat!(
    "INSERT INTO client (",
    client_columns!(),
    ") VALUES ($1, $2, $3, $4, $5)"
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
    " FROM client WHERE client_id > $1 ORDER BY client_id LIMIT $2"
);
const UPDATE_CLIENT_METADATA: &str =
    "UPDATE client SET metadata = $2, updated_at = $3 WHERE client_id = $1";
const SET_CLIENT_SECRET: &str =
    "UPDATE client SET secret_hash = $2, updated_at = $3 WHERE client_id = $1";

const CLIENT_DELETION: OwnerDeletion = OwnerDeletion {
    delete_owner: "DELETE FROM client WHERE client_id = $1",
    revoke_grants: "UPDATE auth_grant SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
    dependents: &[
        "DELETE FROM auth_code WHERE client_id = $1",
        "DELETE FROM refresh_family WHERE client_id = $1",
        "DELETE FROM legacy_refresh_token WHERE client_id = $1",
        "DELETE FROM consent WHERE client_id = $1",
    ],
    version: Some(CLIENTS_VERSION),
};

fn client_from_row(row: &impl SqlRow) -> StoreResult<ClientRecord> {
    let metadata: String = row.col("metadata")?;
    Ok(ClientRecord {
        client_id: row.col("client_id")?,
        secret_hash: row.col("secret_hash")?,
        metadata: sql::from_json(&metadata, "client metadata")?,
        issued_at: row.col("issued_at")?,
        updated_at: row.col("updated_at")?,
    })
}

macro_rules! impl_client_store {
    ($store:ty) => {
        #[async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &ClientRecord) -> StoreResult<()> {
                let metadata = sql::to_json(&client.metadata, "client metadata")?;
                let query = ::sqlx::query(INSERT_CLIENT)
                    .bind(&client.client_id)
                    .bind(client.secret_hash.as_deref())
                    .bind(metadata)
                    .bind(client.issued_at)
                    .bind(client.updated_at);
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
                ::sqlx::query(LIST_CLIENTS)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
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
                secret_hash: &[u8],
                now: i64,
            ) -> StoreResult<bool> {
                let query = ::sqlx::query(SET_CLIENT_SECRET)
                    .bind(client_id)
                    .bind(secret_hash)
                    .bind(now);
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
