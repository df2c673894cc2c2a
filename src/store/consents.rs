//! Remembered consent of one user to one client. The consent page's Allow writes it together
//! with its code (`interactions.rs`, which uses `SAVE_CONSENT` on SQLite and merges scopes in
//! SQL on Postgres).
//!
//! Contract: `contract/consents.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{SqlRow, db_err};
use super::sqlite::SqliteStore;

/// Remembered consent of one user to one client.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRecord {
    pub user_sub: String,
    pub client_id: String,
    pub scope: String,
    pub updated_at: i64,
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn get_consent(&self, sub: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>>;
    /// Inserts or replaces the consent row.
    async fn save_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    /// False when there was none.
    async fn delete_consent(&self, sub: &str, client_id: &str) -> StoreResult<bool>;
    async fn list_consents(&self, sub: &str) -> StoreResult<Vec<ConsentRecord>>;
}

macro_rules! consent_columns {
    () => {
        "user_sub, client_id, scope, updated_at"
    };
}
pub(super) use consent_columns;

const GET_CONSENT: &str = concat!(
    "SELECT ",
    consent_columns!(),
    " FROM consent WHERE user_sub = $1 AND client_id = $2"
);
pub(super) const SAVE_CONSENT: &str = concat!(
    "INSERT INTO consent (",
    consent_columns!(),
    ") VALUES ($1, $2, $3, $4) ON CONFLICT (user_sub, client_id) \
     DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at"
);
const DELETE_CONSENT: &str = "DELETE FROM consent WHERE user_sub = $1 AND client_id = $2";
const LIST_CONSENTS: &str = concat!(
    "SELECT ",
    consent_columns!(),
    " FROM consent WHERE user_sub = $1 ORDER BY client_id"
);

fn consent_from_row(row: &impl SqlRow) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        user_sub: row.col("user_sub")?,
        client_id: row.col("client_id")?,
        scope: row.col("scope")?,
        updated_at: row.col("updated_at")?,
    })
}

macro_rules! impl_consent_store {
    ($store:ty) => {
        #[async_trait]
        impl ConsentStore for $store {
            async fn get_consent(
                &self,
                sub: &str,
                client_id: &str,
            ) -> StoreResult<Option<ConsentRecord>> {
                ::sqlx::query(GET_CONSENT)
                    .bind(sub)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(consent_from_row)
                    .transpose()
            }

            async fn save_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
                ::sqlx::query(SAVE_CONSENT)
                    .bind(&consent.user_sub)
                    .bind(&consent.client_id)
                    .bind(&consent.scope)
                    .bind(consent.updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn delete_consent(&self, sub: &str, client_id: &str) -> StoreResult<bool> {
                let result = ::sqlx::query(DELETE_CONSENT)
                    .bind(sub)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(result.rows_affected() > 0)
            }

            async fn list_consents(&self, sub: &str) -> StoreResult<Vec<ConsentRecord>> {
                ::sqlx::query(LIST_CONSENTS)
                    .bind(sub)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(consent_from_row)
                    .collect()
            }
        }
    };
}

impl_consent_store!(PgStore);
impl_consent_store!(SqliteStore);
