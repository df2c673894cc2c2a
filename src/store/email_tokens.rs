//! Links sent by mail (`accounts::email_links`): password reset and email verification. Only
//! the hash of a link's token is stored, with what it is bound to (`bound_to`).
//!
//! Bounded by construction: a user has at most one outstanding link per purpose. Issuing one
//! is one upsert on the primary key (user, purpose), so a flood of "Forgot password?"
//! requests, however concurrent, rewrites one row instead of adding rows (and kills the older
//! link, which the pages say). Redeeming is one `DELETE … RETURNING`: of racing redemptions
//! on any number of nodes exactly one gets the row.
//!
//! Also here, because only mail needs them: finding users by their email claim, and the
//! compare-and-swap update of a user's claims that a redeemed verification link makes. A
//! redeemed reset link changes the password through the one path every change by its user
//! takes (`UserStore::change_password`).
//!
//! Contract: `contract/email_tokens.rs`.

use async_trait::async_trait;

use super::StoreResult;
use super::postgres::PgStore;
use super::sql::{self, SqlRow, db_err};
use super::sqlite::SqliteStore;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    PasswordReset,
    EmailVerification,
    /// A sign-up waiting for its address to be confirmed; the account does not exist yet
    /// (`accounts::signup`).
    Signup,
}

impl EmailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailPurpose::PasswordReset => "password_reset",
            EmailPurpose::EmailVerification => "email_verification",
            EmailPurpose::Signup => "signup",
        }
    }
}

/// A redeemed link: whose it was and what it was bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedLink {
    pub user_sub: String,
    pub bound_to: String,
}

#[async_trait]
pub trait EmailTokenStore: Send + Sync {
    /// Stores the link `token_hash` for `user_sub` and `purpose`, replacing any earlier one of
    /// the same purpose (one row per user and purpose, whatever the concurrency).
    async fn issue_email_token(
        &self,
        user_sub: &str,
        purpose: EmailPurpose,
        token_hash: &[u8],
        bound_to: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The user a live link belongs to and what it is bound to, without using it up (the
    /// page that a link opens shows a form first).
    async fn peek_email_token(
        &self,
        token_hash: &[u8],
        purpose: EmailPurpose,
        now: i64,
    ) -> StoreResult<Option<RedeemedLink>>;
    /// Uses up a live link: of racing calls exactly one gets `Some`.
    async fn redeem_email_token(
        &self,
        token_hash: &[u8],
        purpose: EmailPurpose,
        now: i64,
    ) -> StoreResult<Option<RedeemedLink>>;
    /// Drops a user's outstanding link of `purpose` (the address it was for changed).
    async fn drop_email_token(&self, user_sub: &str, purpose: EmailPurpose) -> StoreResult<()>;
    /// The subs of at most `limit` users whose email claim is `email`, in any case.
    async fn find_users_by_email(&self, email: &str, limit: u32) -> StoreResult<Vec<String>>;
    /// Replaces a user's claims only while the user is unchanged since `read_at` (their
    /// `updated_at`) and their email claim is still `email`; false otherwise.
    async fn swap_claims(
        &self,
        sub: &str,
        read_at: i64,
        email: &str,
        new_claims: &crate::protocol::user::UserClaims,
        now: i64,
    ) -> StoreResult<bool>;
}

const ISSUE: &str = "INSERT INTO email_token \
     (user_sub, purpose, token_hash, bound_to, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (user_sub, purpose) DO UPDATE SET token_hash = excluded.token_hash, \
     bound_to = excluded.bound_to, created_at = excluded.created_at, \
     expires_at = excluded.expires_at";
// A live link: its hash, its purpose, not expired. Peeking reads it, redeeming deletes it
// in the same statement that reads it (so of racing redemptions exactly one gets the row).
macro_rules! live_link {
    () => {
        "FROM email_token WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3"
    };
}
const PEEK: &str = concat!("SELECT user_sub, bound_to ", live_link!());
const REDEEM: &str = concat!("DELETE ", live_link!(), " RETURNING user_sub, bound_to");
const DROP: &str = "DELETE FROM email_token WHERE user_sub = $1 AND purpose = $2";
// The expression matches the index of migration 0090 in each dialect.
const FIND_BY_EMAIL_PG: &str = "SELECT sub FROM app_user \
     WHERE lower(claims::jsonb ->> 'email') = lower($1) ORDER BY sub LIMIT $2";
const FIND_BY_EMAIL_SQLITE: &str = "SELECT sub FROM app_user \
     WHERE lower(json_extract(claims, '$.email')) = lower($1) ORDER BY sub LIMIT $2";
const SWAP_CLAIMS_PG: &str = "UPDATE app_user SET claims = $4, updated_at = $5 \
     WHERE sub = $1 AND updated_at = $2 AND claims::jsonb ->> 'email' = $3";
const SWAP_CLAIMS_SQLITE: &str = "UPDATE app_user SET claims = $4, updated_at = $5 \
     WHERE sub = $1 AND updated_at = $2 AND json_extract(claims, '$.email') = $3";

fn link_from_row(row: &impl SqlRow) -> StoreResult<RedeemedLink> {
    Ok(RedeemedLink {
        user_sub: row.col("user_sub")?,
        bound_to: row.col("bound_to")?,
    })
}

macro_rules! impl_email_token_store {
    ($store:ty, $find_by_email:expr, $swap_claims:expr) => {
        impl $store {
            /// The live link `token_hash` of `purpose`, read (`PEEK`) or used up (`REDEEM`).
            async fn live_link(
                &self,
                statement: &'static str,
                token_hash: &[u8],
                purpose: EmailPurpose,
                now: i64,
            ) -> StoreResult<Option<RedeemedLink>> {
                ::sqlx::query(statement)
                    .bind(token_hash)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .as_ref()
                    .map(link_from_row)
                    .transpose()
            }
        }

        #[async_trait]
        impl EmailTokenStore for $store {
            async fn issue_email_token(
                &self,
                user_sub: &str,
                purpose: EmailPurpose,
                token_hash: &[u8],
                bound_to: &str,
                now: i64,
                expires_at: i64,
            ) -> StoreResult<()> {
                ::sqlx::query(ISSUE)
                    .bind(user_sub)
                    .bind(purpose.as_str())
                    .bind(token_hash)
                    .bind(bound_to)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn peek_email_token(
                &self,
                token_hash: &[u8],
                purpose: EmailPurpose,
                now: i64,
            ) -> StoreResult<Option<RedeemedLink>> {
                self.live_link(PEEK, token_hash, purpose, now).await
            }

            async fn redeem_email_token(
                &self,
                token_hash: &[u8],
                purpose: EmailPurpose,
                now: i64,
            ) -> StoreResult<Option<RedeemedLink>> {
                self.live_link(REDEEM, token_hash, purpose, now).await
            }

            async fn drop_email_token(
                &self,
                user_sub: &str,
                purpose: EmailPurpose,
            ) -> StoreResult<()> {
                ::sqlx::query(DROP)
                    .bind(user_sub)
                    .bind(purpose.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn find_users_by_email(
                &self,
                email: &str,
                limit: u32,
            ) -> StoreResult<Vec<String>> {
                ::sqlx::query($find_by_email)
                    .bind(email)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(|row| row.col("sub"))
                    .collect()
            }

            async fn swap_claims(
                &self,
                sub: &str,
                read_at: i64,
                email: &str,
                new_claims: &crate::protocol::user::UserClaims,
                now: i64,
            ) -> StoreResult<bool> {
                let claims = sql::to_json(new_claims, "user claims")?;
                let done = ::sqlx::query($swap_claims)
                    .bind(sub)
                    .bind(read_at)
                    .bind(email)
                    .bind(claims)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_email_token_store!(PgStore, FIND_BY_EMAIL_PG, SWAP_CLAIMS_PG);
impl_email_token_store!(SqliteStore, FIND_BY_EMAIL_SQLITE, SWAP_CLAIMS_SQLITE);
