//! Signing keys: generation, encryption at rest, the in-memory key set, rotation and JWKS.
//!
//! Every node holds the current `KeySet` parsed in memory (signing with a pre-parsed key is
//! what keeps the token endpoint fast) and reloads it when the store's `keys` change version
//! moves, so a rotation made through one node reaches all nodes within the poll interval.
//! Private keys leave this module only as sealed bytes; JWKS carries public parts only.
//!
//! Per algorithm a key goes through three states, decided by its own times alone so that
//! every node agrees without talking to the others: `next` (published, not yet signing,
//! until `activates_at`), `active`, and `retired` (from `retired_at`, the moment its
//! successor activates, until every token it signed has expired). A scheduled rotation
//! (`Keys::schedule_due`) inserts the successor `publish_ahead` seconds before it activates;
//! a rotation by hand (`Keys::rotate`) takes effect at once. The set is rebuilt when one of
//! those moments passes (`KeySet::valid_until`), without any write.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::crypto::{SealError, Sealer};
use crate::protocol::alg::SigningAlg;
use crate::store::{KeyStore, SigningKeyRecord, StoreError};

/// Key handling failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("signing failed")]
    Sign,
    #[error("stored key {0} could not be parsed")]
    Parse(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no active {0} signing key")]
    NoActiveKey(&'static str),
}

impl From<KeyError> for crate::protocol::OAuthError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(StoreError::Unavailable(_)) => {
                crate::protocol::OAuthError::unavailable(e)
            }
            _ => crate::protocol::OAuthError::server_error(e),
        }
    }
}

/// A private key, parsed once.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// An active signing key with its JOSE headers pre-encoded.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    signer: Signer,
    /// base64url of `{"alg","kid","typ":"at+jwt"}` (RFC 9068 §2.1).
    pub access_token_header: String,
    /// base64url of `{"alg","kid","typ":"JWT"}`.
    pub jwt_header: String,
    /// base64url of `{"alg","kid","typ":"logout+jwt"}` (Back-Channel Logout 1.0 §2.4).
    pub logout_token_header: String,
}

impl SigningKey {
    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            Signer::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Signer::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// A public key that verifies tokens, current or retired.
pub struct VerifyingKey {
    pub alg: SigningAlg,
    pub decoding: jsonwebtoken::DecodingKey,
}

/// The keys one node works with at one moment: immutable, swapped whole on reload.
pub struct KeySet {
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    verifying: HashMap<String, VerifyingKey>,
    /// The JWKS document, serialized once per reload.
    pub jwks_json: bytes::Bytes,
    /// Public view of every published key, for `keys list` and the admin API.
    pub published: Vec<PublishedKey>,
    /// The first moment after the build at which a key changes state or leaves JWKS: the set
    /// must be rebuilt then. `None` when nothing is scheduled.
    pub valid_until: Option<i64>,
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Signing.
    Active,
    /// No longer signing; published until the tokens it signed have expired.
    Retired,
}

impl KeyState {
    /// A record's state at `now`, from its own times.
    pub fn of(record: &SigningKeyRecord, now: i64) -> KeyState {
        if now < record.activates_at {
            KeyState::Next
        } else if record.retired_at.is_some_and(|r| r <= now) {
            KeyState::Retired
        } else {
            KeyState::Active
        }
    }
}

/// A published key, as `GET /admin/keys` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PublishedKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: i64,
    /// When it starts (or started) signing.
    pub activates_at: i64,
    /// When its successor takes (or took) over; for an active key a time in the future
    /// means the successor is already published.
    pub retired_at: Option<i64>,
    /// When it leaves JWKS: `retired_at` plus the longest token lifetime.
    pub unpublished_at: Option<i64>,
    /// True for the key that signs now (`state == active`); kept for existing scripts.
    pub active: bool,
}

/// JWKS order: RSA and EC keys before OKP keys, since some relying-party libraries stop at
/// the first key they cannot parse, and Ed25519 is the one older libraries lack.
fn jwks_rank(alg: SigningAlg) -> u8 {
    match alg {
        SigningAlg::Rs256 => 0,
        SigningAlg::Es256 => 1,
        SigningAlg::EdDsa => 2,
    }
}

impl KeySet {
    pub fn signing_key(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, KeyError> {
        self.active
            .get(&alg)
            .cloned()
            .ok_or(KeyError::NoActiveKey(alg.as_str()))
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }
}

/// A newly generated key: the record to store, and nothing secret left in plain memory
/// beyond this call.
pub fn generate_key(
    alg: SigningAlg,
    sealer: &Sealer,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let (pkcs8, jwk_parts) = match alg {
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der = pair.as_der().map_err(|_| KeyError::Generate)?;
            (der.as_ref().to_vec(), public_jwk_parts_rsa(&pair))
        }
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| KeyError::Generate)?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
            (der.as_ref().to_vec(), public_jwk_parts_ec(&pair)?)
        }
        SigningAlg::EdDsa => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
            let der = pair.to_pkcs8().map_err(|_| KeyError::Generate)?;
            (der.as_ref().to_vec(), public_jwk_parts_ed(&pair))
        }
    };
    let kid = thumbprint(&jwk_parts);
    let mut jwk = jwk_parts;
    jwk.insert("kid".into(), json!(kid));
    jwk.insert("alg".into(), json!(alg.as_str()));
    jwk.insert("use".into(), json!("sig"));
    let private_sealed = sealer.seal(&pkcs8, kid.as_bytes())?;
    Ok(SigningKeyRecord {
        kid,
        alg: alg.as_str().to_owned(),
        private_sealed,
        public_jwk: serde_json::Value::Object(jwk).to_string(),
        created_at: now,
        activates_at: now,
        retired_at: None,
    })
}

type JwkMap = serde_json::Map<String, serde_json::Value>;

fn b64(bytes: &[u8]) -> serde_json::Value {
    json!(URL_SAFE_NO_PAD.encode(bytes))
}

fn public_jwk_parts_rsa(pair: &RsaKeyPair) -> JwkMap {
    let public = pair.public_key();
    let mut m = JwkMap::new();
    m.insert("kty".into(), json!("RSA"));
    m.insert(
        "n".into(),
        b64(public.modulus().big_endian_without_leading_zero()),
    );
    m.insert(
        "e".into(),
        b64(public.exponent().big_endian_without_leading_zero()),
    );
    m
}

fn public_jwk_parts_ec(pair: &EcdsaKeyPair) -> Result<JwkMap, KeyError> {
    // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err(KeyError::Generate);
    }
    let mut m = JwkMap::new();
    m.insert("kty".into(), json!("EC"));
    m.insert("crv".into(), json!("P-256"));
    m.insert("x".into(), b64(&point[1..33]));
    m.insert("y".into(), b64(&point[33..65]));
    Ok(m)
}

fn public_jwk_parts_ed(pair: &Ed25519KeyPair) -> JwkMap {
    let mut m = JwkMap::new();
    m.insert("kty".into(), json!("OKP"));
    m.insert("crv".into(), json!("Ed25519"));
    m.insert("x".into(), b64(pair.public_key().as_ref()));
    m
}

/// RFC 7638 JWK thumbprint (SHA-256): the required members in lexicographic order. serde_json's
/// map is ordered by key, so serializing the required-members map gives the canonical form.
fn thumbprint(required: &JwkMap) -> String {
    let canonical = serde_json::Value::Object(required.clone()).to_string();
    crate::crypto::sha256_b64(canonical.as_bytes())
}

fn parse_signer(alg: SigningAlg, pkcs8: &[u8], kid: &str) -> Result<Signer, KeyError> {
    let err = |_| KeyError::Parse(kid.to_owned());
    Ok(match alg {
        SigningAlg::Rs256 => Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(err)?),
        SigningAlg::Es256 => Signer::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(err)?,
        ),
        SigningAlg::EdDsa => {
            Signer::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(err)?)
        }
    })
}

fn decoding_key(
    alg: SigningAlg,
    jwk: &JwkMap,
    kid: &str,
) -> Result<jsonwebtoken::DecodingKey, KeyError> {
    let get = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| KeyError::Parse(kid.to_owned()))
    };
    let err = |_| KeyError::Parse(kid.to_owned());
    match alg {
        SigningAlg::Rs256 => {
            jsonwebtoken::DecodingKey::from_rsa_components(get("n")?, get("e")?).map_err(err)
        }
        SigningAlg::Es256 => {
            jsonwebtoken::DecodingKey::from_ec_components(get("x")?, get("y")?).map_err(err)
        }
        SigningAlg::EdDsa => jsonwebtoken::DecodingKey::from_ed_components(get("x")?).map_err(err),
    }
}

fn encode_header(alg: SigningAlg, kid: &str, typ: &str) -> String {
    let header = json!({"alg": alg.as_str(), "kid": kid, "typ": typ});
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// Builds the key set from stored records as it stands at `now`. `publish_retired_for` is how
/// long a retired key stays in JWKS: the longest lifetime of any token it may have signed.
pub fn build_key_set(
    records: &[SigningKeyRecord],
    sealer: &Sealer,
    now: i64,
    publish_retired_for: i64,
) -> Result<KeySet, KeyError> {
    let mut active: HashMap<SigningAlg, Arc<SigningKey>> = HashMap::new();
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    let mut published = Vec::new();
    let mut valid_until: Option<i64> = None;
    let mut until = |t: i64| {
        if t > now {
            valid_until = Some(valid_until.map_or(t, |v| v.min(t)));
        }
    };
    let mut sorted: Vec<(SigningAlg, &SigningKeyRecord)> = records
        .iter()
        .filter_map(|r| SigningAlg::parse(&r.alg).map(|alg| (alg, r)))
        .collect();
    // Latest activation first within an algorithm: should two keys ever both be in their
    // active window, the later one signs.
    sorted.sort_by(|(a_alg, a), (b_alg, b)| {
        jwks_rank(*a_alg)
            .cmp(&jwks_rank(*b_alg))
            .then(b.activates_at.cmp(&a.activates_at))
            .then(b.created_at.cmp(&a.created_at))
            .then(b.kid.cmp(&a.kid))
    });
    for (alg, record) in sorted {
        let unpublished_at = record.retired_at.map(|r| r + publish_retired_for);
        if unpublished_at.is_some_and(|u| u <= now) {
            continue;
        }
        until(record.activates_at);
        if let Some(r) = record.retired_at {
            until(r);
        }
        if let Some(u) = unpublished_at {
            until(u);
        }
        let jwk: JwkMap = serde_json::from_str(&record.public_jwk)
            .map_err(|_| KeyError::Parse(record.kid.clone()))?;
        let state = KeyState::of(record, now);
        let is_active = state == KeyState::Active && !active.contains_key(&alg);
        if is_active {
            let pkcs8 = sealer.open(&record.private_sealed, record.kid.as_bytes())?;
            let signer = parse_signer(alg, &pkcs8, &record.kid)?;
            active.insert(
                alg,
                Arc::new(SigningKey {
                    kid: record.kid.clone(),
                    alg,
                    signer,
                    access_token_header: encode_header(alg, &record.kid, "at+jwt"),
                    jwt_header: encode_header(alg, &record.kid, "JWT"),
                    logout_token_header: encode_header(alg, &record.kid, "logout+jwt"),
                }),
            );
        }
        verifying.insert(
            record.kid.clone(),
            VerifyingKey {
                alg,
                decoding: decoding_key(alg, &jwk, &record.kid)?,
            },
        );
        published.push(PublishedKey {
            kid: record.kid.clone(),
            alg: record.alg.clone(),
            state,
            created_at: record.created_at,
            activates_at: record.activates_at,
            retired_at: record.retired_at,
            unpublished_at,
            active: is_active,
        });
        jwks.push(serde_json::Value::Object(jwk));
    }
    let jwks_json =
        serde_json::to_vec(&json!({ "keys": jwks })).map_err(|_| KeyError::Parse("jwks".into()))?;
    Ok(KeySet {
        active,
        verifying,
        jwks_json: jwks_json.into(),
        published,
        valid_until,
    })
}

/// When keys rotate by themselves: every `interval` seconds, each successor published
/// `publish_ahead` seconds before it signs. An interval of 0 turns scheduling off.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub interval: i64,
    pub publish_ahead: i64,
}

impl Schedule {
    pub fn from_config(config: &crate::config::Config) -> Schedule {
        Schedule {
            interval: config.key_rotation_interval,
            publish_ahead: config.key_publish_ahead,
        }
    }

    /// How long relying parties may cache JWKS: never longer than the publish-ahead window
    /// (less one second for the other nodes to reload), so that a cached copy always holds
    /// the next key before it signs anything; at most a minute either way.
    pub fn jwks_max_age(&self) -> i64 {
        if self.interval == 0 {
            return 60;
        }
        (self.publish_ahead - 1).clamp(0, 60)
    }

    /// When the key that started signing at `activates_at` gets its successor, if scheduling
    /// is on: (the moment to insert it, the moment it activates). A node that comes late
    /// still gives relying parties the whole publish-ahead window.
    pub fn successor(&self, activates_at: i64, now: i64) -> Option<(i64, i64)> {
        if self.interval == 0 {
            return None;
        }
        let due = activates_at + self.interval - self.publish_ahead;
        let starts = (activates_at + self.interval).max(now + self.publish_ahead);
        Some((due, starts))
    }
}

/// The node's keys: the current `KeySet` plus what it takes to reload and rotate it.
pub struct Keys {
    /// Read on every token and JWKS answer, replaced only on reload: a lock-free swap, so
    /// that readers on different cores do not contend on a lock word.
    current: ArcSwap<KeySet>,
    sealer: Sealer,
    publish_retired_for: i64,
    /// The JWKS `Cache-Control` value, fixed by the schedule (`Schedule::jwks_max_age`).
    jwks_cache_control: bytes::Bytes,
}

impl Keys {
    /// Loads the keys, generating the first set when the store has none (several nodes may
    /// race here; the store lets exactly one set in).
    pub async fn load_or_create(
        store: &dyn KeyStore,
        sealer: Sealer,
        now: i64,
        publish_retired_for: i64,
        schedule: Schedule,
    ) -> Result<Keys, KeyError> {
        let mut records = store.list_keys().await?;
        if records.is_empty() {
            let fresh = generate_all(&sealer, now).await?;
            store.insert_initial_keys(&fresh).await?;
            records = store.list_keys().await?;
        }
        let set = build_key_set(&records, &sealer, now, publish_retired_for)?;
        Ok(Keys {
            current: ArcSwap::from_pointee(set),
            sealer,
            publish_retired_for,
            jwks_cache_control: format!("public, max-age={}", schedule.jwks_max_age()).into(),
        })
    }

    /// How long relying parties may cache JWKS, as a `Cache-Control` value.
    pub fn jwks_cache_control(&self) -> bytes::Bytes {
        self.jwks_cache_control.clone()
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// The published key set, serialised (without taking a reference to the whole set).
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.current.load().jwks_json.clone()
    }

    /// Re-reads the keys from the store and swaps the in-memory set.
    pub async fn reload(&self, store: &dyn KeyStore, now: i64) -> Result<(), KeyError> {
        let records = store.list_keys().await?;
        let set = Arc::new(build_key_set(
            &records,
            &self.sealer,
            now,
            self.publish_retired_for,
        )?);
        self.current.store(set);
        Ok(())
    }

    /// True when a key changed state (or left JWKS) since the set was built.
    pub fn is_stale(&self, now: i64) -> bool {
        self.current.load().valid_until.is_some_and(|t| now >= t)
    }

    /// Inserts the successor of every active key whose rotation is due under `schedule`,
    /// as a `next` key. Any number of nodes may call this at once: the store lets exactly one
    /// successor per key in. Returns how many this node inserted.
    pub async fn schedule_due(
        &self,
        store: &dyn KeyStore,
        now: i64,
        schedule: Schedule,
    ) -> Result<usize, KeyError> {
        let set = self.current();
        let mut attempted = false;
        let mut inserted = 0;
        // An active key with a `retired_at` already has its successor.
        for key in set
            .published
            .iter()
            .filter(|k| k.active && k.retired_at.is_none())
        {
            let Some((due, starts)) = schedule.successor(key.activates_at, now) else {
                continue;
            };
            let Some(alg) = SigningAlg::parse(&key.alg) else {
                continue;
            };
            if now < due {
                continue;
            }
            attempted = true;
            let mut next = generate_one(alg, &self.sealer, now).await?;
            next.activates_at = starts;
            if store.schedule_next_key(&next, &key.kid).await? {
                inserted += 1;
            }
        }
        if attempted {
            // Winner or not, the set in the store moved on: this node's view follows at once.
            self.reload(store, now).await?;
        }
        Ok(inserted)
    }

    /// A rotation by hand: a new key for every algorithm, published at once and signing
    /// `publish_ahead` seconds from `now`, when the current keys retire (they stay published
    /// for the tokens they signed). Keys not yet signing (a scheduled successor, or an
    /// earlier hand rotation's) are dropped: they never signed anything. With
    /// `publish_ahead` 0 the new keys sign at once (a suspected compromise), and relying
    /// parties whose JWKS cache predates them must fetch it again. The schedule counts from
    /// the new keys. Answers when they start signing.
    pub async fn rotate(
        &self,
        store: &dyn KeyStore,
        now: i64,
        publish_ahead: i64,
    ) -> Result<i64, KeyError> {
        let starts = now + publish_ahead.max(0);
        let mut fresh = generate_all(&self.sealer, now).await?;
        for key in &mut fresh {
            key.activates_at = starts;
        }
        store.rotate_keys(&fresh, now, starts).await?;
        store
            .delete_retired_keys(now - self.publish_retired_for)
            .await?;
        self.reload(store, now).await?;
        Ok(starts)
    }
}

/// One key per algorithm. RSA generation takes tens of milliseconds, so it runs off the
/// async executor.
async fn generate_all(sealer: &Sealer, now: i64) -> Result<Vec<SigningKeyRecord>, KeyError> {
    let mut out = Vec::with_capacity(3);
    for alg in SigningAlg::ALL {
        out.push(generate_one(alg, sealer, now).await?);
    }
    Ok(out)
}

async fn generate_one(
    alg: SigningAlg,
    sealer: &Sealer,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let sealer = sealer.clone();
    tokio::task::spawn_blocking(move || generate_key(alg, &sealer, now))
        .await
        .map_err(|_| KeyError::Generate)?
}

#[cfg(test)]
mod tests;
