//! Signing keys: generation, encryption at rest, the in-memory key set, rotation and JWKS.
//!
//! Every node holds the current `KeySet` parsed in memory (signing with a pre-parsed key is
//! what keeps the token endpoint fast) and reloads it when the store's `keys` change version
//! moves, so a rotation made through one node reaches all nodes within the poll interval.
//! Private keys leave this module only as sealed bytes; JWKS carries public parts only.

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
}

/// A published key, as `GET /admin/keys` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishedKey {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub active: bool,
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

/// Builds the key set from stored records. `publish_retired_for` is how long a retired key
/// stays in JWKS: the longest lifetime of any token it may have signed.
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
    // Records come newest first; the newest unretired key of each algorithm signs.
    let mut sorted: Vec<&SigningKeyRecord> = records.iter().collect();
    sorted.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
    for record in sorted {
        let Some(alg) = SigningAlg::parse(&record.alg) else {
            continue;
        };
        if let Some(retired) = record.retired_at
            && retired + publish_retired_for <= now
        {
            continue;
        }
        let jwk: JwkMap = serde_json::from_str(&record.public_jwk)
            .map_err(|_| KeyError::Parse(record.kid.clone()))?;
        let is_active = record.retired_at.is_none() && !active.contains_key(&alg);
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
            created_at: record.created_at,
            retired_at: record.retired_at,
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
    })
}

/// The node's keys: the current `KeySet` plus what it takes to reload and rotate it.
pub struct Keys {
    /// Read on every token and JWKS answer, replaced only on reload: a lock-free swap, so
    /// that readers on different cores do not contend on a lock word.
    current: ArcSwap<KeySet>,
    sealer: Sealer,
    publish_retired_for: i64,
}

impl Keys {
    /// Loads the keys, generating the first set when the store has none (several nodes may
    /// race here; the store lets exactly one set in).
    pub async fn load_or_create(
        store: &dyn KeyStore,
        sealer: Sealer,
        now: i64,
        publish_retired_for: i64,
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
        })
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

    /// Generates a new key for every algorithm, retires the old ones, and reloads.
    pub async fn rotate(&self, store: &dyn KeyStore, now: i64) -> Result<(), KeyError> {
        let fresh = generate_all(&self.sealer, now).await?;
        store.rotate_keys(&fresh, now).await?;
        store
            .delete_retired_keys(now - self.publish_retired_for)
            .await?;
        self.reload(store, now).await
    }
}

/// One key per algorithm. RSA generation takes tens of milliseconds, so it runs off the
/// async executor.
async fn generate_all(sealer: &Sealer, now: i64) -> Result<Vec<SigningKeyRecord>, KeyError> {
    let mut out = Vec::with_capacity(3);
    for alg in SigningAlg::ALL {
        let sealer_ref = sealer.clone();
        let record = tokio::task::spawn_blocking(move || generate_key(alg, &sealer_ref, now))
            .await
            .map_err(|_| KeyError::Generate)??;
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
