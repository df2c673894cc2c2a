use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://id.example.com/token";

/// A client's proof key, as a DPoP client holds one.
enum TestKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(Box<RsaKeyPair>),
}

impl TestKey {
    fn es256() -> Self {
        TestKey::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
    fn eddsa() -> Self {
        TestKey::EdDsa(Ed25519KeyPair::generate().unwrap())
    }
    fn rs256() -> Self {
        TestKey::Rs256(Box::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()))
    }

    fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(_) => "ES256",
            TestKey::EdDsa(_) => "EdDSA",
            TestKey::Rs256(_) => "RS256",
        }
    }

    fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            TestKey::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            TestKey::EdDsa(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
            TestKey::Rs256(pair) => {
                let c = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            TestKey::Es256(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            TestKey::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            TestKey::Rs256(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// A proof for `URL` at `NOW`, `edit` changing its claims first.
    fn proof(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims();
        edit(&mut claims);
        self.sign_raw(&self.header(), &claims)
    }

    fn thumbprint(&self) -> String {
        serde_json::from_value::<Jwk>(self.jwk())
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
    }
}

fn claims() -> Value {
    json!({"jti": "proof-1", "htm": "POST", "htu": URL, "iat": NOW})
}

fn nonces() -> DpopNonces {
    DpopNonces::new(&[9u8; 32])
}

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        access_token: None,
        nonce_required: false,
    }
}

fn check(proof: &str, expected: &Expected<'_>) -> Result<Verified, ErrorCode> {
    verify(proof, expected, &nonces(), NOW).map_err(|e| e.code)
}

#[test]
fn a_valid_proof_of_each_algorithm_is_accepted_and_bound_to_its_thumbprint() {
    for key in [TestKey::es256(), TestKey::eddsa(), TestKey::rs256()] {
        let verified = check(&key.proof(|_| {}), &expected())
            .unwrap_or_else(|e| panic!("{}: {e:?}", key.alg()));
        assert_eq!(verified.jkt, key.thumbprint(), "{}", key.alg());
        assert_eq!(verified.jti, "proof-1");
        assert_eq!(verified.iat, NOW);
    }
}

/// RFC 7638 §3.1's example: the thumbprint `cnf.jkt` carries is the standard one.
#[test]
fn the_thumbprint_is_rfc_7638s() {
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn the_header_must_say_dpop_jwt_with_a_supported_alg_and_a_public_jwk() {
    let key = TestKey::es256();
    let other = TestKey::eddsa();
    let mut private = key.jwk();
    private["d"] = json!("c2VjcmV0");
    let cases: Vec<(&str, Value)> = vec![
        (
            "typ JWT",
            json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk()}),
        ),
        ("no typ", json!({"alg": "ES256", "jwk": key.jwk()})),
        (
            "alg none",
            json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}),
        ),
        (
            "alg HS256",
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk()}),
        ),
        ("no jwk", json!({"typ": "dpop+jwt", "alg": "ES256"})),
        (
            "private jwk",
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
        ),
        (
            "symmetric jwk",
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        ),
        (
            "key of another type than alg",
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": other.jwk()}),
        ),
        (
            "EC key claiming Ed25519",
            json!({"typ": "dpop+jwt", "alg": "EdDSA",
                   "jwk": {"kty": "EC", "crv": "Ed25519", "x": "AAAA", "y": "AAAA"}}),
        ),
    ];
    for (name, header) in cases {
        let proof = key.sign_raw(&header, &claims());
        assert_eq!(
            check(&proof, &expected()),
            Err(ErrorCode::InvalidDpopProof),
            "{name}"
        );
    }
}

#[test]
fn the_signature_must_verify_with_the_jwk_in_the_header() {
    let key = TestKey::es256();
    let impostor = TestKey::es256();
    // Signed by one key, naming another.
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": impostor.jwk()});
    let proof = key.sign_raw(&header, &claims());
    assert_eq!(check(&proof, &expected()), Err(ErrorCode::InvalidDpopProof));
    // A good proof with its payload swapped.
    let good = key.proof(|_| {});
    let parts: Vec<&str> = good.split('.').collect();
    let other_payload = URL_SAFE_NO_PAD
        .encode(json!({"jti": "x", "htm": "POST", "htu": URL, "iat": NOW}).to_string());
    let tampered = format!("{}.{other_payload}.{}", parts[0], parts[2]);
    assert_eq!(
        check(&tampered, &expected()),
        Err(ErrorCode::InvalidDpopProof)
    );
    assert_eq!(
        check("garbage", &expected()),
        Err(ErrorCode::InvalidDpopProof)
    );
    assert_eq!(
        check(&"a".repeat(MAX_PROOF_LEN + 1), &expected()),
        Err(ErrorCode::InvalidDpopProof)
    );
}

#[test]
fn htm_and_htu_must_name_this_request() {
    let key = TestKey::es256();
    let refused = [
        ("htm GET", json!("GET"), json!(URL)),
        ("htm lower case", json!("post"), json!(URL)),
        (
            "another path",
            json!("POST"),
            json!("https://id.example.com/userinfo"),
        ),
        (
            "another host",
            json!("POST"),
            json!("https://evil.example.com/token"),
        ),
        (
            "http instead of https",
            json!("POST"),
            json!("http://id.example.com/token"),
        ),
        ("not a URL", json!("POST"), json!("/token")),
        // Equivalent only to a lenient (WHATWG) parser, not under RFC 3986.
        (
            "no slashes",
            json!("POST"),
            json!("https:id.example.com/token"),
        ),
        (
            "backslashes",
            json!("POST"),
            json!("https:\\\\id.example.com\\token"),
        ),
        (
            "a tab",
            json!("POST"),
            json!("https://id.example.com/to\tken"),
        ),
        (
            "userinfo",
            json!("POST"),
            json!("https://me@id.example.com/token"),
        ),
        (
            "another port",
            json!("POST"),
            json!("https://id.example.com:8443/token"),
        ),
        (
            "a trailing slash",
            json!("POST"),
            json!("https://id.example.com/token/"),
        ),
        (
            "path case",
            json!("POST"),
            json!("https://id.example.com/TOKEN"),
        ),
        // A percent-encoded reserved character is not the character.
        (
            "encoded slash",
            json!("POST"),
            json!("https://id.example.com%2Ftoken"),
        ),
        (
            "malformed escape",
            json!("POST"),
            json!("https://id.example.com/t%6ken"),
        ),
    ];
    for (name, htm, htu) in refused {
        let proof = key.proof(|c| {
            c["htm"] = htm;
            c["htu"] = htu;
        });
        assert_eq!(
            check(&proof, &expected()),
            Err(ErrorCode::InvalidDpopProof),
            "{name}"
        );
    }
    // Query and fragment are ignored; case and the default port are normalised.
    for htu in [
        "https://id.example.com/token?x=1",
        "https://id.example.com/token#frag",
        "HTTPS://ID.example.com:443/token",
        "https://id.example.com:/token",
        "https://id.example.com:0443/token",
        "https://id.example.com/%74oken",
        "https://id.example.com/%74%6F%6b%65%6e",
        "https://%69d.example.com/token",
        "https://id.example.com/api/../token",
        "https://id.example.com/./token",
    ] {
        let proof = key.proof(|c| c["htu"] = json!(htu));
        assert!(check(&proof, &expected()).is_ok(), "{htu}");
    }
}

#[test]
fn iat_must_be_within_60_seconds_and_jti_present() {
    let key = TestKey::es256();
    for (iat, ok) in [
        (NOW - 60, true),
        (NOW + 60, true),
        (NOW - 61, false),
        (NOW + 61, false),
    ] {
        let proof = key.proof(|c| c["iat"] = json!(iat));
        assert_eq!(check(&proof, &expected()).is_ok(), ok, "iat {iat}");
    }
    let proof = key.proof(|c| c["iat"] = json!("now"));
    assert_eq!(check(&proof, &expected()), Err(ErrorCode::InvalidDpopProof));
    for jti in [json!(""), json!("x".repeat(257)), Value::Null] {
        let proof = key.proof(|c| c["jti"] = jti.clone());
        assert_eq!(
            check(&proof, &expected()),
            Err(ErrorCode::InvalidDpopProof),
            "jti {jti}"
        );
    }
}

#[test]
fn ath_must_be_the_hash_of_the_access_token_presented() {
    let key = TestKey::es256();
    let at_resource = Expected {
        access_token: Some("the-access-token"),
        ..expected()
    };
    let right = sha256_b64(b"the-access-token");
    let proof = key.proof(|c| c["ath"] = json!(right));
    assert!(check(&proof, &at_resource).is_ok());
    let wrong = key.proof(|c| c["ath"] = json!(sha256_b64(b"another-token")));
    assert_eq!(
        check(&wrong, &at_resource),
        Err(ErrorCode::InvalidDpopProof)
    );
    let missing = key.proof(|_| {});
    assert_eq!(
        check(&missing, &at_resource),
        Err(ErrorCode::InvalidDpopProof)
    );
}

#[test]
fn a_nonce_sent_must_be_valid_and_one_may_be_required() {
    let key = TestKey::es256();
    let required = Expected {
        nonce_required: true,
        ..expected()
    };
    let without = key.proof(|_| {});
    assert_eq!(check(&without, &required), Err(ErrorCode::UseDpopNonce));
    assert!(check(&without, &expected()).is_ok());
    let current = nonces().current(NOW);
    let with = key.proof(|c| c["nonce"] = json!(current));
    assert!(check(&with, &required).is_ok());
    let stale = nonces().current(NOW - 5 * nonce::WINDOW);
    let with_stale = key.proof(|c| c["nonce"] = json!(stale));
    assert_eq!(
        check(&with_stale, &expected()),
        Err(ErrorCode::UseDpopNonce)
    );
    let made_up = key.proof(|c| c["nonce"] = json!("made-up"));
    assert_eq!(check(&made_up, &expected()), Err(ErrorCode::UseDpopNonce));
}

#[test]
fn replay_keys_differ_by_key_and_jti_and_have_a_fixed_length() {
    let a = replay_key("jkt-a", "jti");
    assert_ne!(a, replay_key("jkt-b", "jti"));
    assert_ne!(a, replay_key("jkt-a", "jti2"));
    assert_eq!(a.len(), replay_key("jkt-a", &"x".repeat(256)).len());
}

#[test]
fn htu_normal_forms_follow_rfc_3986() {
    for (a, b, same) in [
        ("http://example.com", "http://example.com/", true),
        ("http://example.com:80/a", "http://example.com/a", true),
        ("https://example.com:80/a", "https://example.com/a", false),
        ("https://[::1]:443/a", "https://[::1]/a", true),
        ("https://[::1]:8443/a", "https://[::1]/a", false),
        (
            "https://example.com/a%2fb",
            "https://example.com/a%2Fb",
            true,
        ),
        (
            "https://example.com/a%2Fb",
            "https://example.com/a/b",
            false,
        ),
        (
            "https://example.com/%7Euser",
            "https://example.com/~user",
            true,
        ),
        (
            "https://example.com/a/b/../../c",
            "https://example.com/c",
            true,
        ),
        ("https://example.com/a/.", "https://example.com/a/", true),
        (
            "https://example.com:99999/",
            "https://example.com:99999/",
            false,
        ),
        ("ftp://example.com/", "ftp://example.com/", false),
        ("https://é.example/", "https://é.example/", false),
    ] {
        assert_eq!(same_endpoint(a, b), same, "{a} vs {b}");
    }
}

#[test]
fn ed25519_is_the_fully_specified_name_of_eddsa_with_an_ed25519_key() {
    let key = TestKey::eddsa();
    let header = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": key.jwk()});
    let proof = key.sign_raw(&header, &claims());
    let verified = verify(&proof, &expected(), &nonces(), NOW).unwrap();
    assert_eq!(verified.jkt, key.thumbprint());
    // The key may name its algorithm the same way.
    let mut jwk = key.jwk();
    jwk["alg"] = json!("Ed25519");
    let header = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": jwk});
    assert!(
        verify(
            &key.sign_raw(&header, &claims()),
            &expected(),
            &nonces(),
            NOW
        )
        .is_ok()
    );
    // Not with another kind of key, and not with a bad signature.
    let ec = TestKey::es256();
    let header = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": ec.jwk()});
    assert!(
        verify(
            &ec.sign_raw(&header, &claims()),
            &expected(),
            &nonces(),
            NOW
        )
        .is_err()
    );
    let other = TestKey::eddsa();
    let header = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": other.jwk()});
    assert!(
        verify(
            &key.sign_raw(&header, &claims()),
            &expected(),
            &nonces(),
            NOW
        )
        .is_err()
    );
}
