//! A client's public keys, for `private_key_jwt` (and later signed request objects): the
//! `jwks` registered inline, or the set published at its `jwks_uri`, fetched under the
//! outbound rules (`outbound`), cached per node, and fetched again when an assertion names a
//! key the cached set lacks (the client rotated its keys), at most once per
//! `REFETCH_AFTER`. The cache is emptied whenever the clients change (`upkeep`), so a new
//! `jwks_uri` or `jwks` takes effect within the change-poll bound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::JwkSet;

use crate::clients::Client;
use crate::outbound::{Outbound, OutboundError};

/// How long a fetched key set is used before it is fetched again.
pub const KEEP_FOR: i64 = 300;
/// An unknown `kid` fetches the set again, but not more often than this, so that assertions
/// naming made-up keys cannot turn Latchkey into a request generator against the client.
pub const REFETCH_AFTER: i64 = 30;
/// Upper bound on cached key sets.
const CAPACITY: usize = 10_000;

/// Key sets fetched from `jwks_uri`s, by client id.
#[derive(Default)]
pub struct ClientKeyCache {
    entries: RwLock<HashMap<String, Fetched>>,
}

#[derive(Clone)]
struct Fetched {
    uri: String,
    keys: Arc<JwkSet>,
    fetched_at: i64,
}

/// Why a client's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the client registered no keys")]
    None,
    #[error("the client's registered jwks is not a JWK Set")]
    Invalid,
    #[error("the client's jwks_uri: {0}")]
    Fetch(#[from] OutboundError),
}

impl ClientKeyCache {
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The keys of `client` at `now`. With `want_kid` a key id the usable set lacks, a
    /// `jwks_uri` set is fetched again (rate-limited by `REFETCH_AFTER`).
    pub async fn keys_for(
        &self,
        outbound: &Outbound,
        client: &Client,
        want_kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<JwkSet>, KeysError> {
        if let Some(inline) = &client.metadata.jwks {
            let set: JwkSet =
                serde_json::from_value(inline.clone()).map_err(|_| KeysError::Invalid)?;
            return Ok(Arc::new(set));
        }
        let Some(uri) = &client.metadata.jwks_uri else {
            return Err(KeysError::None);
        };
        let cached = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client.client_id)
            .filter(|f| &f.uri == uri)
            .cloned();
        if let Some(f) = &cached {
            let fresh = now - f.fetched_at < KEEP_FOR;
            let lacks_kid = want_kid.is_some_and(|kid| f.keys.find(kid).is_none());
            let may_refetch = now - f.fetched_at >= REFETCH_AFTER;
            if fresh && !(lacks_kid && may_refetch) {
                return Ok(f.keys.clone());
            }
        }
        let body = outbound
            .get(uri, "application/jwk-set+json, application/json")
            .await?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|_| KeysError::Fetch(OutboundError::Invalid("not a JWK Set")))?;
        let keys = Arc::new(set);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            client.client_id.clone(),
            Fetched {
                uri: uri.clone(),
                keys: keys.clone(),
                fetched_at: now,
            },
        );
        Ok(keys)
    }
}
