//! Recovery codes: ten random single-use codes per set, shown once, stored as keyed hashes
//! (HMAC-SHA-256 under a subkey of the master key, over the user and the code, so a stolen
//! table tests no guess and a code of one user is nothing for another).

use rand::Rng;

use crate::crypto::SecretHasher;

/// Codes per set.
pub const CODES_PER_SET: usize = 10;
/// Lower-case letters and digits without the look-alikes 0/o, 1/l/i: 31 symbols.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Symbols per code: 10, about 49.5 bits, shown as `xxxxx-xxxxx`.
const SYMBOLS: usize = 10;

/// A new set of codes, as shown to the user.
pub fn new_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..CODES_PER_SET)
        .map(|_| {
            let symbols: String = (0..SYMBOLS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect();
            format!("{}-{}", &symbols[..5], &symbols[5..])
        })
        .collect()
}

/// The canonical form of a typed code: lower case, without dashes and spaces. `None` when it
/// cannot be a recovery code.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == SYMBOLS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The stored form of `code` (canonical) for user `sub`.
pub fn hash(hasher: &SecretHasher, sub: &str, code: &str) -> Vec<u8> {
    hasher
        .mac_parts(&[b"recovery code v1", sub.as_bytes(), code.as_bytes()])
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_normalize_back() {
        let codes = new_codes();
        assert_eq!(codes.len(), CODES_PER_SET);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), CODES_PER_SET);
        for code in &codes {
            let n = normalize(code).unwrap();
            assert_eq!(normalize(&code.to_uppercase()).as_deref(), Some(n.as_str()));
        }
        assert_eq!(
            normalize("123456"),
            None,
            "a TOTP code is not a recovery code"
        );
    }

    #[test]
    fn the_hash_binds_the_user() {
        let hasher = SecretHasher::new(&[7; 32]);
        assert_ne!(
            hash(&hasher, "a", "abcdeabcde"),
            hash(&hasher, "b", "abcdeabcde")
        );
    }
}
