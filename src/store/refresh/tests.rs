//! What the contract cannot see through the trait: how many rows a family keeps, and that
//! tokens stored before migration 0080 keep working after it. Both run on both backends.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use sqlx::Executor;

use super::*;
use crate::store::testing::{connect_options, fresh_postgres_url, fresh_sqlite_path};
use crate::store::{GrantRecord, GrantStore, UserStore};

const NOW: i64 = 1_700_000_000;

fn hash(tag: &str) -> Vec<u8> {
    let mut out = vec![0xee];
    out.extend_from_slice(tag.as_bytes());
    out
}

async fn postgres() -> PgStore {
    PgStore::connect(&fresh_postgres_url().await, &connect_options())
        .await
        .unwrap()
}

async fn sqlite() -> SqliteStore {
    SqliteStore::connect(&fresh_sqlite_path(), &connect_options())
        .await
        .unwrap()
}

/// Sets up user `sub-1` with grant `grant_id` (client `client-1`).
async fn grant_for(store: &(impl GrantStore + UserStore), grant_id: &str) {
    if store.get_user("sub-1").await.unwrap().is_none() {
        let user = crate::store::UserRecord {
            sub: "sub-1".to_owned(),
            username: "one".to_owned(),
            password_hash: "x".to_owned(),
            claims: Default::default(),
            disabled: false,
            password_reset_required: false,
            mfa_required: false,
            created_at: NOW,
            updated_at: NOW,
        };
        store.insert_user(&user).await.unwrap();
    }
    store
        .insert_grant(&GrantRecord {
            grant_id: grant_id.to_owned(),
            client_id: "client-1".to_owned(),
            user_sub: "sub-1".to_owned(),
            scope: "openid offline_access".to_owned(),
            created_at: NOW,
            expires_at: NOW + 86_400,
            revoked_at: None,
        })
        .await
        .unwrap();
}

/// Rotates family `grant-1` `rotations` times, one rotation at a time.
async fn rotate_many(store: &(impl RefreshTokenStore + GrantStore + UserStore), rotations: i64) {
    grant_for(store, "grant-1").await;
    store
        .insert_refresh_token(&RefreshTokenRecord {
            grant_id: "grant-1".to_owned(),
            generation: 0,
            token_hash: hash("gen-0"),
            client_id: "client-1".to_owned(),
            user_sub: "sub-1".to_owned(),
            scope: "openid offline_access".to_owned(),
            sid: "sid".to_owned(),
            auth_time: NOW,
            amr: "pwd".to_owned(),
            resource: None,
            created_at: NOW,
            idle_expires_at: NOW + 3_600,
            expires_at: NOW + 86_400,
            dpop_jkt: None,
        })
        .await
        .unwrap();
    for generation in 0..rotations {
        let old = hash(&format!("gen-{generation}"));
        let new = hash(&format!("gen-{}", generation + 1));
        let outcome = store
            .rotate_refresh_token(&RotationRequest {
                presented: PresentedRefresh {
                    grant_id: "grant-1",
                    generation,
                    token_hash: &old,
                },
                client_id: "client-1",
                scope: RefreshScope::Granted,
                dpop_jkt: None,
                new_token_hash: &new,
                now: NOW,
                idle_ttl: 600,
                reuse_grace: 0,
            })
            .await
            .unwrap();
        assert!(
            matches!(outcome, Rotation::Rotated(_)),
            "{generation}: {outcome:?}"
        );
    }
}

const ROTATIONS: i64 = 10_000;
const COUNT_REFRESH_ROWS: &str = "SELECT (SELECT COUNT(*) FROM refresh_family) \
     + (SELECT COUNT(*) FROM legacy_refresh_token) AS n";

#[tokio::test]
async fn ten_thousand_rotations_of_one_family_leave_one_row_on_postgres() {
    let store = postgres().await;
    store.migrate().await.unwrap();
    rotate_many(&store, ROTATIONS).await;
    let n: i64 = sqlx::query_scalar(COUNT_REFRESH_ROWS)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn ten_thousand_rotations_of_one_family_leave_one_row_on_sqlite() {
    let store = sqlite().await;
    store.migrate().await.unwrap();
    rotate_many(&store, ROTATIONS).await;
    let n: i64 = sqlx::query_scalar(COUNT_REFRESH_ROWS)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// The migration files of `dialect`, in order, split at migration 0080.
fn migration_files(dialect: &str) -> (Vec<String>, Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let (before, after): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.file_name().unwrap().to_str().unwrap() < "0080");
    let read = |ps: Vec<PathBuf>| -> Vec<String> {
        ps.iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    (read(before), read(after))
}

/// Rows as Latchkey stored them before migration 0080: family `old-1` with a token rotated
/// out (`old-rotated`) and its current one (`old-current`); family `old-2` with its current
/// one; family `old-revoked`, revoked, with its current one; family `old-bound`, bound to the
/// DPoP key `jkt-old` (migration 0040), with its current one. `blob` spells a hash literal.
fn old_rows(blob: fn(&[u8]) -> String) -> Vec<String> {
    let bound = |tag: &str, grant_id: &str, rotated: bool, jkt: &str| {
        format!(
            "INSERT INTO refresh_token (token_hash, grant_id, client_id, user_sub, scope, sid, \
             auth_time, amr, resource, created_at, idle_expires_at, expires_at, rotated_at, \
             dpop_jkt) \
             VALUES ({}, '{grant_id}', 'client-1', 'sub-1', 'openid offline_access', 'sid', \
             {NOW}, 'pwd', NULL, {NOW}, {}, {}, {}, {jkt})",
            blob(&hash(tag)),
            NOW + 3_600,
            NOW + 86_400,
            if rotated { "1700000000" } else { "NULL" }
        )
    };
    let token = |tag: &str, grant_id: &str, rotated: bool| bound(tag, grant_id, rotated, "NULL");
    let grant = |grant_id: &str, revoked: &str| {
        format!(
            "INSERT INTO auth_grant (grant_id, client_id, user_sub, scope, created_at, \
             expires_at, revoked_at) VALUES ('{grant_id}', 'client-1', 'sub-1', \
             'openid offline_access', {NOW}, {}, {revoked})",
            NOW + 86_400
        )
    };
    vec![
        format!(
            "INSERT INTO app_user (sub, username, password_hash, claims, disabled, created_at, \
             updated_at) VALUES ('sub-1', 'one', 'x', '{{}}', FALSE, {NOW}, {NOW})"
        ),
        grant("old-1", "NULL"),
        grant("old-2", "NULL"),
        grant("old-revoked", "1700000001"),
        grant("old-bound", "NULL"),
        token("old-rotated", "old-2", true),
        token("old-current", "old-1", false),
        token("old-2-current", "old-2", false),
        token("old-revoked-current", "old-revoked", false),
        bound("old-bound-current", "old-bound", false, "'jkt-old'"),
    ]
}

/// The old tokens after migration 0080, through the trait.
async fn check_old_tokens(store: &dyn RefreshTokenStore) {
    let legacy =
        |tag: &'static str| async move { store.legacy_refresh_token(&hash(tag)).await.unwrap() };
    let found = |grant_id: &str, generation| {
        Some(LegacyRefresh {
            grant_id: grant_id.to_owned(),
            generation,
        })
    };
    assert_eq!(legacy("old-current").await, found("old-1", 0));
    assert_eq!(legacy("old-rotated").await, found("old-2", -1));
    assert_eq!(legacy("unknown").await, None);
    let rotate_with = |grant_id: &'static str,
                       generation: i64,
                       tag: &'static str,
                       dpop_jkt: Option<&'static str>| async move {
        let (old, new) = (hash(tag), hash("successor"));
        store
            .rotate_refresh_token(&RotationRequest {
                presented: PresentedRefresh {
                    grant_id,
                    generation,
                    token_hash: &old,
                },
                client_id: "client-1",
                scope: RefreshScope::Granted,
                dpop_jkt,
                new_token_hash: &new,
                now: NOW + 10,
                idle_ttl: 600,
                reuse_grace: 0,
            })
            .await
            .unwrap()
    };
    let rotate = |grant_id, generation, tag| rotate_with(grant_id, generation, tag, None);
    // The token that was current rotates (into generation 1); presenting it again is reuse.
    assert!(matches!(
        rotate("old-1", 0, "old-current").await,
        Rotation::Rotated(_)
    ));
    assert_eq!(
        rotate("old-1", 0, "old-current").await,
        Rotation::Reused {
            grant_id: "old-1".to_owned()
        }
    );
    // A token rotated out before the migration is reuse too.
    assert_eq!(
        rotate("old-2", -1, "old-rotated").await,
        Rotation::Reused {
            grant_id: "old-2".to_owned()
        }
    );
    // A revoked family was not carried over.
    assert_eq!(
        rotate("old-revoked", 0, "old-revoked-current").await,
        Rotation::Invalid
    );
    // A family bound to a DPoP key before the migration stays bound (migration 0081): no
    // proof, or another key's, changes nothing; its own key rotates it.
    assert_eq!(
        rotate("old-bound", 0, "old-bound-current").await,
        Rotation::KeyMismatch
    );
    assert_eq!(
        rotate_with("old-bound", 0, "old-bound-current", Some("jkt-other")).await,
        Rotation::KeyMismatch
    );
    match rotate_with("old-bound", 0, "old-bound-current", Some("jkt-old")).await {
        Rotation::Rotated(family) => assert_eq!(family.dpop_jkt.as_deref(), Some("jkt-old")),
        other => panic!("expected Rotated, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_stored_before_migration_0080_keep_working_on_postgres() {
    let store = postgres().await;
    let (before, after) = migration_files("postgres");
    let rows = old_rows(|b| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("decode('{hex}', 'hex')")
    });
    for statement in before.iter().chain(&rows).chain(&after) {
        store.pool.execute(sqlx::raw_sql(statement)).await.unwrap();
    }
    check_old_tokens(&store).await;
}

#[tokio::test]
async fn tokens_stored_before_migration_0080_keep_working_on_sqlite() {
    let store = sqlite().await;
    let (before, after) = migration_files("sqlite");
    let rows = old_rows(|b| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("X'{hex}'")
    });
    for statement in before.iter().chain(&rows).chain(&after) {
        store.pool.execute(sqlx::raw_sql(statement)).await.unwrap();
    }
    check_old_tokens(&store).await;
}
