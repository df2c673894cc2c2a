//! Keys clients hold: a relying party's key pair that signs client assertions
//! (private_key_jwt) and request objects (JAR), its public half a JWK to register; and the
//! proof keys of DPoP clients (`DpopKey`), whose public half travels in each proof.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A client's key pair: signs assertions; its public half is a JWK.
pub struct ClientKey {
    pair: EcdsaKeyPair,
    pub kid: String,
}

impl ClientKey {
    pub fn new(kid: &str) -> Self {
        ClientKey {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            kid: kid.to_owned(),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// A JWS over `claims` with `header` (ES256 unless the header says otherwise).
    pub fn sign_with(&self, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(
            json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

/// A DPoP client's proof key (RFC 9449), of one of the algorithms Latchkey accepts.
pub enum DpopKey {
    Es256(EcdsaKeyPair),
    EdDsa(aws_lc_rs::signature::Ed25519KeyPair),
    Rs256(Box<aws_lc_rs::rsa::KeyPair>),
}

impl DpopKey {
    pub fn es256() -> Self {
        DpopKey::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
    pub fn eddsa() -> Self {
        DpopKey::EdDsa(aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap())
    }
    pub fn rs256() -> Self {
        DpopKey::Rs256(Box::new(
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        ))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            DpopKey::Es256(_) => "ES256",
            DpopKey::EdDsa(_) => "EdDSA",
            DpopKey::Rs256(_) => "RS256",
        }
    }

    /// The public half, as a proof's header carries it.
    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            DpopKey::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            DpopKey::EdDsa(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
            DpopKey::Rs256(pair) => {
                let c = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    /// The RFC 7638 thumbprint a bound token's `cnf.jkt` names.
    pub fn thumbprint(&self) -> String {
        serde_json::from_value::<jsonwebtoken::jwk::Jwk>(self.jwk())
            .unwrap()
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
    }

    /// A JWS of `claims` under `header`, signed with this key.
    pub fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = match self {
            DpopKey::Es256(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            DpopKey::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            DpopKey::Rs256(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A fresh proof (new `jti`) for `method` at `url`, issued `now`, with `extra` claims
    /// (`ath`, `nonce`) merged in.
    pub fn proof(&self, method: &str, url: &str, now: i64, extra: Value) -> String {
        let mut claims = json!({
            "jti": latchkey::crypto::random_token(12),
            "htm": method, "htu": url, "iat": now,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let header = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()});
        self.sign_with(&header, &claims)
    }
}

/// `ath` of an access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    latchkey::crypto::sha256_b64(access_token.as_bytes())
}
