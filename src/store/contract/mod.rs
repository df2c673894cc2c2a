//! The contract every backend must pass: one generic suite of cases, each an `async fn` taking
//! an `Arc<dyn Store>`, run against a fresh Postgres database and a fresh SQLite file by
//! `contract_tests!`. The cases check behaviour through the traits only, never through SQL,
//! and the concurrency cases race real tasks on a multi-threaded runtime.
//!
//! One file per concern holds that concern's cases (`refresh.rs` for `store/refresh.rs`, …);
//! this one the runner, the records they build from, `race`, and the few plain tests of error
//! mapping. A case `NAME` of `refresh.rs` runs as `store::contract::refresh::sqlite::NAME`
//! and `store::contract::refresh::postgres::NAME`.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::protocol::client::{ClientMetadata, TokenEndpointAuthMethod};
use crate::protocol::user::UserClaims;

const NOW: i64 = 1_700_000_000;
const RACERS: usize = 20;
/// Racers for the token-family races, which must hold under heavier contention.
const FAMILY_RACERS: usize = 50;

/// Generates, for each case, a test per backend: `postgres::case` and `sqlite::case`.
macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(crate::store::testing::postgres_store().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(crate::store::testing::sqlite_store().await).await;
                }
            )*
        }
    };
}

mod apply;
mod audit;
mod clients;
mod codes;
mod consents;
mod devices;
mod email_tokens;
mod factors;
mod grants;
mod housekeeping;
mod interactions;
mod keys;
mod outbox;
mod passkeys;
mod pushed;
mod refresh;
mod registrations;
mod replay;
mod revocations;
mod sessions;
mod throttle;
mod upstreams;
mod users;

/// A stand-in for a SecretHasher output: distinct per tag, and binary like the real thing.
fn hash(tag: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0x00];
    out.extend_from_slice(tag.as_bytes());
    out
}

fn metadata(name: &str) -> ClientMetadata {
    ClientMetadata {
        redirect_uris: vec!["https://app.example.com/cb".to_owned()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        scope: "openid profile offline_access".to_owned(),
        client_name: name.to_owned(),
        client_uri: Some("https://app.example.com".to_owned()),
        logo_uri: None,
        id_token_signed_response_alg: "RS256".to_owned(),
        first_party: false,
        allowed_resources: vec!["https://api.example.com".to_owned()],
        introspection: crate::protocol::client::IntrospectionAccess::Own,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        request_object_signing_alg: None,
        require_signed_request_object: false,
        require_pushed_authorization_requests: false,
        dpop_bound_access_tokens: false,
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        token_exchange_audiences: vec![],
    }
}

fn client(client_id: &str) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        secret_hash: Some(hash(&format!("secret-{client_id}"))),
        secret_created_at: Some(NOW),
        secret_expires_at: None,
        previous_secret: None,
        metadata: metadata(client_id),
        issued_at: NOW,
        updated_at: NOW,
    }
}

fn user(sub: &str, username: &str) -> UserRecord {
    UserRecord {
        sub: sub.to_owned(),
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        claims: UserClaims {
            name: Some(format!("User {username}")),
            email: Some(format!("{username}@example.com")),
            email_verified: Some(true),
            ..UserClaims::default()
        },
        disabled: false,
        password_reset_required: false,
        mfa_required: false,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn session(tag: &str, user_sub: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        session_hash: hash(tag),
        sid: format!("sid-{tag}"),
        user_sub: user_sub.to_owned(),
        auth_time: NOW,
        amr: "pwd".to_owned(),
        created_at: NOW,
        expires_at,
        device: "Firefox, Linux".to_owned(),
        ip: Some("192.0.2.7".to_owned()),
        last_used_at: NOW,
    }
}

fn grant(grant_id: &str, client_id: &str, user_sub: &str, expires_at: i64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        scope: "openid offline_access".to_owned(),
        created_at: NOW,
        expires_at,
        revoked_at: None,
    }
}

fn code(
    tag: &str,
    grant_id: &str,
    client_id: &str,
    user_sub: &str,
    expires_at: i64,
) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash(tag),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        redirect_uri: "https://app.example.com/cb".to_owned(),
        scope: "openid offline_access".to_owned(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        sid: "sid-1".to_owned(),
        auth_time: NOW - 5,
        amr: "pwd".to_owned(),
        acr: None,
        resource: Some("https://api.example.com".to_owned()),
        created_at: NOW,
        expires_at,
        dpop_jkt: None,
    }
}

/// Family `grant_id` at generation 0, its current token `tag`.
fn refresh(tag: &str, grant_id: &str, client_id: &str, user_sub: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        generation: 0,
        token_hash: hash(tag),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_sub: user_sub.to_owned(),
        scope: "openid offline_access".to_owned(),
        sid: "sid-1".to_owned(),
        auth_time: NOW - 5,
        amr: "pwd".to_owned(),
        resource: None,
        created_at: NOW,
        idle_expires_at: NOW + 3_600,
        expires_at: NOW + 86_400,
        dpop_jkt: None,
    }
}

/// Presenting generation `generation` of family `grant_id`, a token hashed to `token_hash`.
fn presented<'a>(grant_id: &'a str, generation: i64, token_hash: &'a [u8]) -> PresentedRefresh<'a> {
    PresentedRefresh {
        grant_id,
        generation,
        token_hash,
    }
}

fn key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        private_sealed: hash(&format!("sealed-{kid}")),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        created_at,
        activates_at: created_at,
        retired_at: None,
    }
}

fn event(kind: &str, user_sub: &str) -> AuditEvent {
    AuditEvent {
        event_id: 0,
        occurred_at: NOW,
        kind: kind.to_owned(),
        user_sub: Some(user_sub.to_owned()),
        client_id: Some("client-f".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
        detail: r#"{"scope":"openid"}"#.to_owned(),
    }
}

async fn events_of(store: &Arc<dyn Store>, kind: &str) -> Vec<AuditEvent> {
    store
        .list_events(&AuditFilter {
            kind: Some(kind.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Runs `RACERS` copies of `f` at once on separate tasks and collects their results.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>> + Send + 'static,
{
    race_n(store, RACERS, f).await
}

/// Runs `racers` copies of `f` at once on separate tasks and collects their results.
async fn race_n<T, F, Fut>(store: &Arc<dyn Store>, racers: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = f(store.clone(), i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(racers);
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results
}

// Error mapping, which needs a broken database rather than the traits alone.

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    let options = ConnectOptions {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(2),
    };
    // Nothing listens on port 1.
    let result = crate::store::postgres::PgStore::connect(
        "postgres://postgres@127.0.0.1:1/postgres",
        &options,
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn undecodable_json_is_corrupt_and_not_quoted() {
    use sqlx::Connection;
    let path = crate::store::testing::fresh_sqlite_path();
    let store = crate::store::sqlite::SqliteStore::connect(
        &path,
        &crate::store::testing::connect_options(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store.insert_client(&client("client-1")).await.unwrap();
    store.insert_user(&user("sub-1", "alice")).await.unwrap();

    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE client SET metadata = '{\"redirect_uris\": \"secret-value\"}'")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE app_user SET claims = '{\"email\": 42, \"x\": \"secret-value\"}'")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    for result in [
        store.get_client("client-1").await.map(|_| ()),
        store.get_user("sub-1").await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt(message)) => {
                assert!(!message.contains("secret-value"), "{message}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
