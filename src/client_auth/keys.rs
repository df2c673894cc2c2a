//! A client's public keys, for `private_key_jwt` and signed request objects: the `jwks`
//! registered inline, or the set published at its `jwks_uri`, fetched under the outbound rules
//! (`outbound`), and fetched again when an assertion names a key the cached set lacks (the
//! client rotated its keys), at most once per `REFETCH_AFTER`.
//!
//! Both kinds are cached per node as parsed verification keys (`ClientKeys`), so that a
//! request verifies a signature without parsing JSON or key material first. An inline set is
//! used from the cache only while the client's registered `jwks` is the very set it was parsed
//! from; the cache is also emptied whenever the clients change (`upkeep`), so a new `jwks_uri`
//! takes effect within the change-poll bound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use serde::de::DeserializeOwned;

use crate::clients::Client;
use crate::outbound::{Outbound, OutboundError};

/// How long a fetched key set is used before it is fetched again.
pub const KEEP_FOR: i64 = 300;
/// An unknown `kid` fetches the set again, but not more often than this, so that assertions
/// naming made-up keys cannot turn Latchkey into a request generator against the client.
pub const REFETCH_AFTER: i64 = 30;
/// Upper bound on cached key sets.
const CAPACITY: usize = 10_000;

/// A client's keys, parsed for verification. Keys of the set that are not usable verification
/// keys (a symmetric key, a malformed one) are left out.
pub struct ClientKeys {
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl ClientKeys {
    fn parse(set: &JwkSet) -> Self {
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((jwk.common.key_id.clone(), key))
            })
            .collect();
        ClientKeys { keys }
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k.as_deref() == Some(kid))
    }

    /// Whether the signature of the compact JWS `jwt` verifies under one of the keys (only
    /// the key named `kid`, when it names one) with `alg`. Nothing else is checked: for a
    /// caller that reads and checks the claims itself, without `decode`'s second reading of
    /// the header and two of the payload.
    pub fn verifies(&self, jwt: &str, kid: Option<&str>, alg: Algorithm) -> bool {
        let Some((message, signature)) = jwt.rsplit_once('.') else {
            return false;
        };
        self.keys
            .iter()
            .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .any(|(_, key)| {
                jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg)
                    .unwrap_or(false)
            })
    }

    /// The claims of `jwt` when its signature verifies under one of the keys (only the key
    /// named `kid`, when the JWT names one) and `validation` holds.
    pub fn decode<T: DeserializeOwned>(
        &self,
        jwt: &str,
        kid: Option<&str>,
        validation: &Validation,
    ) -> Option<T> {
        self.keys
            .iter()
            .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .find_map(|(_, key)| {
                jsonwebtoken::decode::<T>(jwt, key, validation)
                    .ok()
                    .map(|data: TokenData<T>| data.claims)
            })
    }
}

/// Parsed key sets, by client id.
#[derive(Default)]
pub struct ClientKeyCache {
    entries: RwLock<HashMap<String, Cached>>,
}

#[derive(Clone)]
struct Cached {
    source: Source,
    keys: Arc<ClientKeys>,
    fetched_at: i64,
}

/// Where a cached set came from: the registered set itself (compared on every use), or the
/// URI it was fetched from.
#[derive(Clone)]
enum Source {
    Inline(serde_json::Value),
    Uri(String),
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

    fn cached(&self, client_id: &str) -> Option<Cached> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned()
    }

    fn keep(&self, client_id: &str, entry: Cached) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), entry);
    }

    /// The keys of `client` at `now`. With `want_kid` a key id the usable set lacks, a
    /// `jwks_uri` set is fetched again (rate-limited by `REFETCH_AFTER`).
    pub async fn keys_for(
        &self,
        outbound: &Outbound,
        client: &Client,
        want_kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<ClientKeys>, KeysError> {
        let cached = self.cached(&client.client_id);
        if let Some(inline) = &client.metadata.jwks {
            if let Some(Cached {
                source: Source::Inline(parsed_from),
                keys,
                ..
            }) = cached
                && parsed_from == *inline
            {
                return Ok(keys);
            }
            let set: JwkSet =
                serde_json::from_value(inline.clone()).map_err(|_| KeysError::Invalid)?;
            let keys = Arc::new(ClientKeys::parse(&set));
            let entry = Cached {
                source: Source::Inline(inline.clone()),
                keys: keys.clone(),
                fetched_at: now,
            };
            self.keep(&client.client_id, entry);
            return Ok(keys);
        }
        let Some(uri) = &client.metadata.jwks_uri else {
            return Err(KeysError::None);
        };
        if let Some(Cached {
            source: Source::Uri(from),
            keys,
            fetched_at,
        }) = &cached
            && from == uri
        {
            let fresh = now - fetched_at < KEEP_FOR;
            let lacks_kid = want_kid.is_some_and(|kid| !keys.has_kid(kid));
            let may_refetch = now - fetched_at >= REFETCH_AFTER;
            if fresh && !(lacks_kid && may_refetch) {
                return Ok(keys.clone());
            }
        }
        let body = outbound
            .get(uri, "application/jwk-set+json, application/json")
            .await?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|_| KeysError::Fetch(OutboundError::Invalid("not a JWK Set")))?;
        let keys = Arc::new(ClientKeys::parse(&set));
        let entry = Cached {
            source: Source::Uri(uri.clone()),
            keys: keys.clone(),
            fetched_at: now,
        };
        self.keep(&client.client_id, entry);
        Ok(keys)
    }
}
