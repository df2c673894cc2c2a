//! Configuration as code (`latchkey apply`): a batch of client, user and upstream changes written in
//! one transaction, so that a file is applied whole or not at all. Each change runs the same
//! statements as the single operations of `clients.rs` and `users.rs` (deleting takes the
//! dependents with it, disabling ends sessions and token families), and a change whose row is
//! gone (or already there) fails the whole batch: the plan was made from a state that has
//! moved, and applying half of it would be worse than asking the operator to run it again.
//!
//! Contract: `contract/apply.rs`.

use async_trait::async_trait;

use super::clients::{
    CLIENT_DELETION, ClientRecord, INSERT_CLIENT, NewClientSecret, SET_CLIENT_SECRET,
    UPDATE_CLIENT_METADATA, bind_new_client,
};
use super::grants::{DELETE_REFRESH_TOKENS_OF_USER, REVOKE_GRANTS_OF_USER};
use super::housekeeping::CLIENTS_VERSION;
use super::postgres::PgStore;
use super::registrations::DELETE_REGISTRATION;
use super::sessions::Which;
use super::sql::{self, db_err};
use super::sqlite::SqliteStore;
use super::upstreams::{
    DELETE_IDENTITIES_OF_UPSTREAM, DELETE_UPSTREAM, INSERT_UPSTREAM, UPDATE_UPSTREAM,
    UpstreamRecord,
};
use super::users::{
    INSERT_USER, SET_PASSWORD, UPDATE_USER, USER_DELETION, UserRecord, bind_new_user,
    bind_user_update,
};
use super::{StoreError, StoreResult};
use crate::protocol::client::ClientMetadata;

/// One write of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    InsertClient(ClientRecord),
    UpdateClientMetadata {
        client_id: String,
        metadata: ClientMetadata,
    },
    /// Replaces the secret; the old one stops at once (a file states what is, not a
    /// transition).
    SetClientSecret {
        client_id: String,
        secret: NewClientSecret,
    },
    DeleteClient(String),
    InsertUser(UserRecord),
    /// Username, claims, disabled and password_reset_required. With `end_access`, the
    /// user's sessions end and token families are revoked in the same transaction.
    UpdateUser {
        user: UserRecord,
        end_access: bool,
    },
    /// A new password hash; the user's sessions end.
    SetPassword {
        sub: String,
        password_hash: String,
    },
    DeleteUser(String),
    InsertUpstream(UpstreamRecord),
    /// Settings, sealed secret and `updated_at`.
    UpdateUpstream(UpstreamRecord),
    /// The upstream and every identity linked through it.
    DeleteUpstream(String),
}

/// What `apply_changes` reports when the batch did not fit the database it met.
pub const STALE_PLAN: &str = "the database changed while the plan was made";

#[async_trait]
pub trait ApplyStore: Send + Sync {
    /// Applies `changes` in order, in one transaction: all or nothing. Fails with
    /// `Conflict(STALE_PLAN)` when an update or deletion finds no row, and with the usual
    /// `Conflict("client_id")` / `Conflict("username")` on a taken id or name. Bumps the
    /// clients version when a client changed.
    async fn apply_changes(&self, changes: &[Change], now: i64) -> StoreResult<()>;
}

fn stale(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::Conflict(STALE_PLAN))
    } else {
        Ok(())
    }
}

macro_rules! impl_apply_store {
    ($store:ty, $db:ty) => {
        #[async_trait]
        impl ApplyStore for $store {
            async fn apply_changes(&self, changes: &[Change], now: i64) -> StoreResult<()> {
                if changes.is_empty() {
                    return Ok(());
                }
                let mut tx = sql::begin_write(&self.pool).await?;
                let mut clients_changed = false;
                for change in changes {
                    match change {
                        Change::InsertClient(client) => {
                            clients_changed = true;
                            let metadata = sql::to_json(&client.metadata, "client metadata")?;
                            bind_new_client(::sqlx::query(INSERT_CLIENT), client, metadata)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                        Change::UpdateClientMetadata {
                            client_id,
                            metadata,
                        } => {
                            clients_changed = true;
                            let metadata = sql::to_json(metadata, "client metadata")?;
                            let rows = ::sqlx::query(UPDATE_CLIENT_METADATA)
                                .bind(client_id)
                                .bind(metadata)
                                .bind(now)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                        }
                        Change::SetClientSecret { client_id, secret } => {
                            clients_changed = true;
                            let rows = ::sqlx::query(SET_CLIENT_SECRET)
                                .bind(client_id)
                                .bind(&secret.hash)
                                .bind(secret.created_at)
                                .bind(secret.expires_at)
                                .bind(None::<i64>)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                        }
                        Change::DeleteClient(client_id) => {
                            clients_changed = true;
                            if !Self::delete_owner_in(&mut tx, &CLIENT_DELETION, client_id, now)
                                .await?
                            {
                                return Err(StoreError::Conflict(STALE_PLAN));
                            }
                            ::sqlx::query(DELETE_REGISTRATION)
                                .bind(client_id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                        Change::InsertUser(user) => {
                            let claims = sql::to_json(&user.claims, "user claims")?;
                            bind_new_user(::sqlx::query(INSERT_USER), user, claims)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                        Change::UpdateUser { user, end_access } => {
                            let claims = sql::to_json(&user.claims, "user claims")?;
                            let rows = bind_user_update(::sqlx::query(UPDATE_USER), user, claims)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                            if *end_access {
                                Self::end_user_access(&mut tx, &user.sub, true, now).await?;
                            }
                        }
                        Change::SetPassword { sub, password_hash } => {
                            let rows = ::sqlx::query(SET_PASSWORD)
                                .bind(sub)
                                .bind(password_hash)
                                .bind(now)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                            Self::end_user_access(&mut tx, sub, false, now).await?;
                        }
                        Change::DeleteUser(sub) => {
                            if !Self::delete_owner_in(&mut tx, &USER_DELETION, sub, now).await? {
                                return Err(StoreError::Conflict(STALE_PLAN));
                            }
                        }
                        Change::InsertUpstream(upstream) => {
                            let settings = sql::to_json(&upstream.settings, "upstream settings")?;
                            ::sqlx::query(INSERT_UPSTREAM)
                                .bind(&upstream.settings.id)
                                .bind(settings)
                                .bind(&upstream.secret_sealed)
                                .bind(upstream.created_at)
                                .bind(upstream.updated_at)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                        Change::UpdateUpstream(upstream) => {
                            let settings = sql::to_json(&upstream.settings, "upstream settings")?;
                            let rows = ::sqlx::query(UPDATE_UPSTREAM)
                                .bind(&upstream.settings.id)
                                .bind(settings)
                                .bind(&upstream.secret_sealed)
                                .bind(upstream.updated_at)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                        }
                        Change::DeleteUpstream(id) => {
                            ::sqlx::query(DELETE_IDENTITIES_OF_UPSTREAM)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            let rows = ::sqlx::query(DELETE_UPSTREAM)
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?
                                .rows_affected();
                            stale(rows)?;
                        }
                    }
                }
                if clients_changed {
                    Self::bump_version(&mut tx, CLIENTS_VERSION).await?;
                }
                sql::commit(tx).await
            }
        }

        impl $store {
            /// Ends a user's sessions (their clients notified) and, with `revoke`, every token
            /// family of theirs.
            async fn end_user_access(
                tx: &mut ::sqlx::Transaction<'static, $db>,
                sub: &str,
                revoke: bool,
                now: i64,
            ) -> StoreResult<()> {
                // As every session ends (`DELETE /admin/users/{sub}/sessions` too): the
                // clients that took part in them get a back-channel logout, queued here.
                Self::end_sessions_in(tx, Which::User(sub), now).await?;
                if revoke {
                    ::sqlx::query(REVOKE_GRANTS_OF_USER)
                        .bind(sub)
                        .bind(None::<String>)
                        .bind(now)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    ::sqlx::query(DELETE_REFRESH_TOKENS_OF_USER)
                        .bind(sub)
                        .bind(None::<String>)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                Ok(())
            }
        }
    };
}

impl_apply_store!(PgStore, sqlx::Postgres);
impl_apply_store!(SqliteStore, sqlx::Sqlite);
