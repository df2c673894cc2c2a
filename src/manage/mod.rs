//! Operations on clients, users and keys, shared by the admin API (`http::admin`) and the
//! command line (`cli`), so that both validate, hash and answer exactly alike.
//!
//! This module knows nothing of HTTP or of the terminal: it takes parsed requests, works
//! through the store traits and the `App` services (secret hasher, password hasher, keys), and
//! returns the `protocol::admin` answers or an `OAuthError`. It never returns or logs a
//! password, a password hash, or a stored secret hash; a client secret leaves it only in the
//! answer that created it.

pub mod access;
pub mod apply;
pub mod clients;
pub mod events;
pub mod keys;
pub mod registration;
pub mod upstreams;
pub mod users;

use crate::protocol::OAuthError;

/// Page size of a list when the caller names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page a caller may ask for, so one request cannot read a whole table.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which page of a list to read: items whose id sorts strictly after `after`, at most
/// `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            after: None,
            limit: DEFAULT_PAGE_SIZE,
        }
    }
}

impl Page {
    /// Checks a requested page. An empty cursor means the first page; a limit outside
    /// 1..=`MAX_PAGE_SIZE` is refused rather than clamped, so the caller learns the bound.
    pub fn new(after: Option<String>, limit: Option<u32>) -> Result<Page, OAuthError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(OAuthError::invalid_request(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        Ok(Page {
            after: after.filter(|a| !a.is_empty()),
            limit,
        })
    }

    /// The cursor for the following page: the last id when this page is full (there may be
    /// more), else none.
    fn next<T>(&self, items: &[T], id: impl Fn(&T) -> &str) -> Option<String> {
        if items.len() as u64 == u64::from(self.limit) {
            items.last().map(|last| id(last).to_owned())
        } else {
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The operations against a real (SQLite) store; the admin API and CLI tests in
    //! `tests/it` cover both backends over HTTP and the binary.

    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::app::App;
    use crate::clock::SystemClock;
    use crate::protocol::ErrorCode;
    use crate::protocol::admin::{UserPatch, parse_client_registration, parse_user_create};
    use crate::store::SessionRecord;

    async fn app() -> App {
        let path = crate::store::testing::fresh_sqlite_path();
        let env = vec![
            (
                "LATCHKEY_DATABASE_URL".to_owned(),
                format!("sqlite://{}", path.display()),
            ),
            (
                "LATCHKEY_MASTER_KEY".to_owned(),
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
            ),
        ];
        let config =
            crate::config::Config::load_from(Some(std::path::Path::new("/dev/null")), &env)
                .expect("test configuration is valid");
        App::start(config, Arc::new(SystemClock), true)
            .await
            .expect("app starts")
    }

    fn registration(value: serde_json::Value) -> crate::protocol::client::ClientRegistration {
        parse_client_registration(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn page_limits_are_checked() {
        assert_eq!(Page::new(None, None).unwrap().limit, DEFAULT_PAGE_SIZE);
        assert_eq!(
            Page::new(Some(String::new()), Some(200)).unwrap().after,
            None
        );
        assert!(Page::new(None, Some(0)).is_err());
        assert!(Page::new(None, Some(201)).is_err());
        let page = Page::new(None, Some(2)).unwrap();
        assert_eq!(page.next(&["a", "b"], |s| s), Some("b".to_owned()));
        assert_eq!(page.next(&["a"], |s| s), None);
    }

    #[tokio::test]
    async fn confidential_clients_get_a_hashed_secret_and_public_ones_none() {
        let app = app().await;
        let created = clients::create(
            &app,
            registration(json!({"redirect_uris": ["https://a.example/cb"]})),
        )
        .await
        .unwrap();
        let secret = created.client_secret.clone().unwrap();
        assert_eq!(created.client_secret_expires_at, Some(0));
        let stored = app
            .store
            .get_client(&created.client_id)
            .await
            .unwrap()
            .unwrap();
        let hash = stored.secret_hash.unwrap();
        assert_ne!(hash, secret.as_bytes());
        assert!(app.hasher.verify(&secret, &hash));
        assert!(
            clients::get(&app, &created.client_id)
                .await
                .unwrap()
                .client_secret
                .is_none()
        );

        let rotated = clients::rotate_secret(&app, &created.client_id, Default::default())
            .await
            .unwrap();
        let new_secret = rotated.client_secret.unwrap();
        let stored = app
            .store
            .get_client(&created.client_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            app.hasher
                .verify(&new_secret, stored.secret_hash.as_deref().unwrap())
        );
        assert!(
            !app.hasher
                .verify(&secret, stored.secret_hash.as_deref().unwrap())
        );

        let public = clients::create(
            &app,
            registration(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"})),
        )
        .await
        .unwrap();
        assert!(public.client_secret.is_none());
        assert!(
            app.store
                .get_client(&public.client_id)
                .await
                .unwrap()
                .unwrap()
                .secret_hash
                .is_none()
        );
        let err = clients::rotate_secret(&app, &public.client_id, Default::default())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn replace_checks_the_id_and_the_client_kind() {
        let app = app().await;
        let created = clients::create(
            &app,
            registration(json!({"redirect_uris": ["https://a.example/cb"]})),
        )
        .await
        .unwrap();
        let id = created.client_id.as_str();
        let replaced = clients::replace(
            &app,
            id,
            registration(json!({"client_id": id, "client_secret": "ignored", "redirect_uris": ["https://b.example/cb"], "client_name": "B"})),
        )
        .await
        .unwrap();
        assert_eq!(
            replaced.metadata.redirect_uris,
            vec!["https://b.example/cb"]
        );
        assert!(replaced.client_secret.is_none());
        let stored = app.store.get_client(id).await.unwrap().unwrap();
        assert_eq!(stored.metadata.client_name, "B");
        assert!(
            !app.hasher
                .verify("ignored", stored.secret_hash.as_deref().unwrap())
        );

        let cases = [
            json!({"client_id": "other", "redirect_uris": ["https://b.example/cb"]}),
            json!({"redirect_uris": ["https://b.example/cb"], "token_endpoint_auth_method": "none"}),
            json!({"redirect_uris": ["https://b.example/cb#x"]}),
        ];
        for case in cases {
            assert!(
                clients::replace(&app, id, registration(case.clone()))
                    .await
                    .is_err(),
                "{case}"
            );
        }
        let missing = clients::replace(
            &app,
            "nope",
            registration(json!({"redirect_uris": ["https://b.example/cb"]})),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
        clients::delete(&app, id).await.unwrap();
        assert_eq!(
            clients::delete(&app, id).await.unwrap_err().code,
            ErrorCode::NotFound
        );
    }

    #[tokio::test]
    async fn users_are_created_patched_and_disabled() {
        let app = app().await;
        let body =
            json!({"username": "alice", "password": "correct horse", "email": "a@example.test"});
        let alice = users::create(
            &app,
            parse_user_create(body.to_string().as_bytes()).unwrap(),
        )
        .await
        .unwrap();
        let stored = app.store.get_user(&alice.sub).await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        let again = users::create(
            &app,
            parse_user_create(body.to_string().as_bytes()).unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(again.code, ErrorCode::Conflict);
        let short = json!({"username": "bob", "password": "short"});
        let err = users::create(
            &app,
            parse_user_create(short.to_string().as_bytes()).unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);

        let now = app.now();
        app.store
            .insert_session(&SessionRecord {
                session_hash: vec![1; 32],
                sid: "sid-1".into(),
                user_sub: alice.sub.clone(),
                auth_time: now,
                amr: "pwd".into(),
                created_at: now,
                expires_at: now + 3600,
                ..SessionRecord::default()
            })
            .await
            .unwrap();
        let mut claims = serde_json::Map::new();
        claims.insert("email".into(), serde_json::Value::Null);
        claims.insert("name".into(), json!("Alice"));
        let patched = users::patch(
            &app,
            &alice.sub,
            UserPatch {
                disabled: Some(true),
                claims,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(patched.disabled);
        assert_eq!(patched.claims.email, None);
        assert_eq!(patched.claims.name.as_deref(), Some("Alice"));
        assert!(
            app.store
                .get_session(&[1; 32], now)
                .await
                .unwrap()
                .is_none()
        );

        let bad = users::patch(
            &app,
            &alice.sub,
            UserPatch {
                username: Some(" alice".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidRequest);
        users::set_password(&app, &alice.sub, "another good password")
            .await
            .unwrap();
        let stored_after = app.store.get_user(&alice.sub).await.unwrap().unwrap();
        assert_ne!(stored_after.password_hash, stored.password_hash);
        users::delete(&app, &alice.sub).await.unwrap();
        assert_eq!(
            users::get(&app, &alice.sub).await.unwrap_err().code,
            ErrorCode::NotFound
        );
    }

    #[test]
    fn usernames_are_checked() {
        for (name, stored) in [
            ("alice", Some("alice")),
            ("alice@example.com", Some("alice@example.com")),
            ("Zoë", Some("Zoë")),
            ("ａｌｉｃｅ", Some("alice")),
            ("Zoë Ω", None),
            ("\u{430}lice", None),
            ("", None),
            (" alice", None),
            ("alice\n", None),
            ("a\u{7}b", None),
        ] {
            assert_eq!(
                users::check_username(name).ok().as_deref(),
                stored,
                "{name:?}"
            );
        }
        assert!(users::check_username(&"a".repeat(256)).is_ok());
        assert!(users::check_username(&"a".repeat(257)).is_err());
        assert!(users::check_username(&"é".repeat(129)).is_err());
    }
}
