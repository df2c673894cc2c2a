//! `SoftAuthenticator`: a test-only WebAuthn authenticator at the JSON level. It answers the
//! server's creation and request options as a browser with a platform authenticator would
//! (a discoverable ES256 credential, user verified, attestation "none"), and lets a test
//! break one thing at a time: the origin it reports, the challenge it signs, its signature
//! counter. Test code only: the server's verification is webauthn-rs', never this.
//!
//! The little CBOR it needs (one COSE key, one attestation object) is written by hand.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Authenticator data flags (WebAuthn §6.1): user present, user verified, attested data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct SoftAuthenticator {
    /// The origin written into clientDataJSON (the browser's page origin).
    pub origin: String,
    /// The relying-party id whose hash starts the authenticator data.
    pub rp_id: String,
    pub credential_id: Vec<u8>,
    key: EcdsaKeyPair,
    /// The user handle the credential was created for (returned on sign-in).
    pub user_handle: Vec<u8>,
    /// The signature counter: the next assertion reports this plus one, unless `counts` is
    /// false (then always 0, like synced passkeys).
    pub counter: u32,
    pub counts: bool,
    /// Whether the user is verified (the UV flag).
    pub verifies_user: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).unwrap()
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0x58, n as u8]),
        n => {
            out.push(0x59);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 24);
    out.push(0x60 | text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

impl SoftAuthenticator {
    /// A new authenticator with one fresh key, for pages at `origin` (relying-party id: its
    /// host).
    pub fn new(origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let host = url::Url::parse(origin)
            .unwrap()
            .host_str()
            .unwrap()
            .to_owned();
        let mut credential_id = vec![0u8; 16];
        aws_lc_rs::rand::SecureRandom::fill(&rng, &mut credential_id).unwrap();
        SoftAuthenticator {
            origin: origin.to_owned(),
            rp_id: host,
            credential_id,
            key,
            user_handle: Vec::new(),
            counter: 0,
            counts: true,
            verifies_user: true,
        }
    }

    fn flags(&self, extra: u8) -> u8 {
        UP | extra | if self.verifies_user { UV } else { 0 }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// The COSE_Key of the public key (RFC 9053: EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut out, &point[1..33]);
        out.push(0x22);
        cbor_bytes(&mut out, &point[33..65]);
        out
    }

    /// Answers `navigator.credentials.create` for these options (the `publicKey` member):
    /// the RegistrationResponseJSON.
    pub fn register(&mut self, options: &Value) -> Value {
        let challenge = options["challenge"].as_str().unwrap();
        self.user_handle = unb64(options["user"]["id"].as_str().unwrap());
        let client_data = self.client_data("webauthn.create", challenge);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(AT));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers `navigator.credentials.get` for these options (the `publicKey` member): the
    /// AuthenticationResponseJSON, signed with the next counter value.
    pub fn assert(&mut self, options: &Value) -> Value {
        let challenge = options["challenge"].as_str().unwrap().to_owned();
        self.assert_challenge(&challenge)
    }

    /// `assert` over any challenge (a test's wrong one).
    pub fn assert_challenge(&mut self, challenge: &str) -> Value {
        if self.counts {
            self.counter += 1;
        }
        let client_data = self.client_data("webauthn.get", challenge);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(0));
        let count = if self.counts { self.counter } else { 0 };
        auth_data.extend_from_slice(&count.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}
