//! Small, audited building blocks over well-kept crates: random secrets, keyed hashing of
//! high-entropy secrets, constant-time comparison, and authenticated encryption of data at rest
//! under the master key. No cryptographic primitive is implemented here.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A random 256-bit secret, base64url without padding (43 characters). Used for client
/// secrets, authorization codes, refresh tokens and session cookies.
pub fn random_secret() -> String {
    random_token(32)
}

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Hashes server-generated, high-entropy secrets (client secrets, codes, refresh tokens,
/// session ids) with HMAC-SHA-256 under a key derived from the master key.
///
/// A password KDF would be wasted here: the inputs carry 256 bits of entropy, so there is
/// nothing to brute-force, and the token endpoint must stay in microseconds. The key means a
/// stolen database alone cannot even be used to test guesses.
#[derive(Clone)]
pub struct SecretHasher {
    key: HmacSha256,
}

impl SecretHasher {
    pub fn new(master_key: &[u8; 32]) -> Self {
        Self::for_purpose(master_key, b"latchkey secret hashing v1")
    }

    /// A hasher under its own subkey: what one purpose MACs, no other reproduces (DPoP
    /// nonces, `token::dpop::nonce`).
    pub fn for_purpose(master_key: &[u8; 32], purpose: &[u8]) -> Self {
        let derived = derive_key(master_key, purpose);
        // HMAC accepts keys of any length, so this cannot fail.
        let key =
            <HmacSha256 as Mac>::new_from_slice(&derived).unwrap_or_else(|_| unreachable_hmac());
        Self { key }
    }

    /// The stored form of a secret: 32 bytes.
    pub fn hash(&self, secret: &str) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of `secret` against a stored hash.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        let mut mac = self.key.clone();
        mac.update(secret.as_bytes());
        mac.verify_slice(stored).is_ok()
    }

    /// A MAC over several parts, for tokens the server checks without storing them (CSRF
    /// tokens). Parts are length-prefixed so that no two part lists produce the same input.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.key.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> HmacSha256 {
    panic!("HMAC-SHA-256 accepts keys of every length")
}

/// Derives a purpose-bound subkey from the master key (HMAC-SHA-256 as a PRF).
fn derive_key(master_key: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(master_key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

/// Encrypting or decrypting under the master key failed: wrong key or tampered data.
#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened with this master key")]
pub struct SealError;

/// AES-256-GCM under a subkey of the master key; protects private signing keys at rest and
/// pending interactions in transit.
/// The output is `nonce || ciphertext || tag`; `aad` binds the ciphertext to its row.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl Sealer {
    /// The sealer of private signing keys.
    pub fn new(master_key: &[u8; 32]) -> Result<Self, SealError> {
        Self::for_purpose(master_key, b"latchkey key encryption v1")
    }

    /// A sealer under its own subkey: what one purpose seals, no other opens.
    pub fn for_purpose(master_key: &[u8; 32], purpose: &[u8]) -> Result<Self, SealError> {
        let derived = derive_key(master_key, purpose);
        let unbound = UnboundKey::new(&AES_256_GCM, &derived).map_err(|_| SealError)?;
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce_bytes);
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| SealError)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError);
        }
        let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| SealError)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| SealError)?;
        Ok(plain.to_vec())
    }
}

/// SHA-256, base64url: for `at_hash`-style digests and the stored form of cookie values.
pub fn sha256_b64(input: &[u8]) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(Sha256::digest(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_aad() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal(b"private key", b"kid-1").unwrap();
        assert_eq!(sealer.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(sealer.open(&sealed, b"kid-2").is_err());
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        let other_purpose = Sealer::for_purpose(&[7u8; 32], b"another purpose").unwrap();
        assert!(other_purpose.open(&sealed, b"kid-1").is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(sealer.open(&tampered, b"kid-1").is_err());
    }

    #[test]
    fn secret_hash_verifies_only_the_same_secret() {
        let hasher = SecretHasher::new(&[1u8; 32]);
        let secret = random_secret();
        assert_eq!(secret.len(), 43);
        let stored = hasher.hash(&secret);
        assert!(hasher.verify(&secret, &stored));
        assert!(!hasher.verify("other", &stored));
        assert!(!SecretHasher::new(&[2u8; 32]).verify(&secret, &stored));
    }
}
