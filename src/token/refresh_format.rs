//! The refresh token's wire format: `family.generation.secret`. The family is the grant the
//! token descends from and the generation counts its rotations, so the store keeps one row
//! per family (the current generation and the current token's keyed hash) and still
//! recognises any older token of the family as reuse (`store::refresh`).
//!
//! The secret is a random nonce followed by a MAC over the family, generation and nonce under
//! a key derived from the master key. The MAC is what lets the store call an older generation
//! "reuse": a token whose MAC holds was issued by Latchkey, so if it is not its family's
//! current token it was rotated out (or lost a race). A token whose MAC fails was never
//! issued, whatever family it names (grant ids appear in audit events and logs), and is
//! refused without touching the store, so nobody can revoke a family by naming it.
//!
//! Tokens issued before this format (one opaque secret without dots) are still accepted: the
//! store maps their hash to their family and generation (`legacy_refresh_token`).
//!
//! Owns the format only; what a token means is the store's decision.

use crate::crypto::{SecretHasher, constant_time_eq, random_token};
use crate::store::{PresentedRefresh, RefreshTokenStore, StoreResult};

/// Separates this MAC's inputs from every other use of the secret-hashing key.
const TAG_LABEL: &[u8] = b"latchkey refresh token v2";
/// Separates the derivation of a successor's nonce from the tag and every other MAC.
const SUCCESSOR_LABEL: &[u8] = b"latchkey refresh token successor v1";
/// `random_token(16)`: 22 base64url characters.
const NONCE_CHARS: usize = 22;
/// `SecretHasher::mac_parts`: 43 base64url characters.
const TAG_CHARS: usize = 43;

/// A new token and the hash the store keeps of it.
pub struct Issued {
    pub token: String,
    pub hash: Vec<u8>,
}

/// Issues the token of `generation` of family `grant_id`.
pub fn issue(hasher: &SecretHasher, grant_id: &str, generation: i64) -> Issued {
    with_nonce(hasher, grant_id, generation, &random_token(16))
}

/// The successor of `presented` (a token of family `grant_id` at `generation - 1`): the token
/// of `generation`, its nonce derived from the presented token under the master key. The
/// same presented token always has the same successor, so a client that retries a rotation
/// whose answer it lost can be given that successor again (the reuse grace of
/// `store::RotationRequest`); only Latchkey can derive it, and only from the token itself.
pub fn successor(
    hasher: &SecretHasher,
    grant_id: &str,
    generation: i64,
    presented: &str,
) -> Issued {
    let derived = hasher.mac_parts(&[SUCCESSOR_LABEL, presented.as_bytes()]);
    // Base64url text, so any prefix is ASCII: 22 characters, like a random nonce.
    let nonce = derived.get(..NONCE_CHARS).unwrap_or(&derived);
    with_nonce(hasher, grant_id, generation, nonce)
}

fn with_nonce(hasher: &SecretHasher, grant_id: &str, generation: i64, nonce: &str) -> Issued {
    let tag = tag(hasher, grant_id, generation, nonce);
    let token = format!("{grant_id}.{generation}.{nonce}{tag}");
    Issued {
        hash: hasher.hash(&token),
        token,
    }
}

fn tag(hasher: &SecretHasher, grant_id: &str, generation: i64, nonce: &str) -> String {
    hasher.mac_parts(&[
        TAG_LABEL,
        grant_id.as_bytes(),
        generation.to_string().as_bytes(),
        nonce.as_bytes(),
    ])
}

/// What a presented string is, before the store is asked.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A token of this format whose MAC holds.
    Family { grant_id: &'a str, generation: i64 },
    /// No dots: perhaps a token issued before this format.
    Legacy,
    /// Anything else, a token with a wrong MAC included: never issued.
    Unknown,
}

pub fn parse<'a>(hasher: &SecretHasher, token: &'a str) -> Parsed<'a> {
    if !token.contains('.') {
        return Parsed::Legacy;
    }
    let mut parts = token.split('.');
    let (Some(grant_id), Some(generation_text), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Unknown;
    };
    // Only the canonical decimal form, so that one token has one spelling.
    let Ok(generation) = generation_text.parse::<i64>() else {
        return Parsed::Unknown;
    };
    if grant_id.is_empty()
        || generation < 0
        || generation.to_string() != generation_text
        || secret.len() != NONCE_CHARS + TAG_CHARS
        || !secret.is_char_boundary(NONCE_CHARS)
    {
        return Parsed::Unknown;
    }
    let (nonce, presented_tag) = secret.split_at(NONCE_CHARS);
    let expected = tag(hasher, grant_id, generation, nonce);
    if !constant_time_eq(expected.as_bytes(), presented_tag.as_bytes()) {
        return Parsed::Unknown;
    }
    Parsed::Family {
        grant_id,
        generation,
    }
}

/// A presented token resolved to the family and generation it names, with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub grant_id: String,
    pub generation: i64,
    pub token_hash: Vec<u8>,
}

impl Resolved {
    pub fn presented(&self) -> PresentedRefresh<'_> {
        PresentedRefresh {
            grant_id: &self.grant_id,
            generation: self.generation,
            token_hash: &self.token_hash,
        }
    }
}

/// The family and generation `token` names, when Latchkey issued it: checked by its MAC, or
/// (a token of the old format) found in the legacy table. `None` for anything else.
pub async fn resolve(
    hasher: &SecretHasher,
    store: &dyn RefreshTokenStore,
    token: &str,
) -> StoreResult<Option<Resolved>> {
    let token_hash = hasher.hash(token);
    Ok(match parse(hasher, token) {
        Parsed::Family {
            grant_id,
            generation,
        } => Some(Resolved {
            grant_id: grant_id.to_owned(),
            generation,
            token_hash,
        }),
        Parsed::Legacy => store
            .legacy_refresh_token(&token_hash)
            .await?
            .map(|legacy| Resolved {
                grant_id: legacy.grant_id,
                generation: legacy.generation,
                token_hash,
            }),
        Parsed::Unknown => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hasher() -> SecretHasher {
        SecretHasher::new(&[7; 32])
    }

    #[test]
    fn an_issued_token_parses_to_its_family_and_generation() {
        let h = hasher();
        let issued = issue(&h, "fam-1", 42);
        assert!(issued.token.starts_with("fam-1.42."));
        assert_eq!(issued.hash, h.hash(&issued.token));
        assert_eq!(
            parse(&h, &issued.token),
            Parsed::Family {
                grant_id: "fam-1",
                generation: 42
            }
        );
        assert_ne!(
            issue(&h, "fam-1", 42).token,
            issued.token,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_parses() {
        let h = hasher();
        let first = issue(&h, "fam-1", 4).token;
        let next = successor(&h, "fam-1", 5, &first);
        assert_eq!(next.token, successor(&h, "fam-1", 5, &first).token);
        assert_eq!(next.hash, h.hash(&next.token));
        assert!(next.token.starts_with("fam-1.5."));
        assert_eq!(
            parse(&h, &next.token),
            Parsed::Family {
                grant_id: "fam-1",
                generation: 5
            }
        );
        let other = issue(&h, "fam-1", 4).token;
        assert_ne!(
            successor(&h, "fam-1", 5, &other).token,
            next.token,
            "another token of the same generation has another successor"
        );
        assert_ne!(
            successor(&SecretHasher::new(&[8; 32]), "fam-1", 5, &first).token,
            next.token,
            "only the master key derives it"
        );
    }

    #[test]
    fn a_token_whose_mac_fails_is_unknown() {
        let h = hasher();
        let token = issue(&h, "fam-1", 3).token;
        let secret = token.rsplit('.').next().unwrap();
        let check =
            |presented: &str| assert_eq!(parse(&h, presented), Parsed::Unknown, "{presented}");
        // Another family, another generation, another key, a changed character.
        check(&format!("fam-2.3.{secret}"));
        check(&format!("fam-1.2.{secret}"));
        check(&format!("fam-1.4.{secret}"));
        check(&format!("fam-1.03.{secret}"));
        check(&format!("fam-1.+3.{secret}"));
        check(&format!("fam-1.-3.{secret}"));
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        check(&String::from_utf8(tampered).unwrap());
        let other = SecretHasher::new(&[8; 32]);
        assert_eq!(parse(&other, &token), Parsed::Unknown);
        // Malformed shapes.
        for shape in [
            "a.b",
            "a.1.b.c",
            ".1.x",
            "fam.1.",
            "fam.99999999999999999999.x",
            "a.1.é",
        ] {
            check(shape);
        }
        check(&format!("fam-1.3.{}", &secret[1..]));
        check(&format!("fam-1.3.{secret}x"));
    }

    #[test]
    fn a_token_without_dots_is_looked_up_as_legacy() {
        let h = hasher();
        assert_eq!(parse(&h, &crate::crypto::random_secret()), Parsed::Legacy);
        assert_eq!(parse(&h, ""), Parsed::Legacy);
    }
}
