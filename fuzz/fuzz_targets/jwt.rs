//! JWT verification: `mint::verify_access_token` (userinfo, introspection) and
//! `mint::verify_id_token_hint` (the authorization endpoint's `id_token_hint`), against a key
//! set of one RS256, one ES256 and one EdDSA key made once per process.
//!
//! An input is either a raw token (first byte even) or, first byte odd, a recipe the harness
//! turns into a token: `HEADER \n CLAIMS \n MODE SIGNER SIG...`. `$RS256`, `$ES256` and `$EdDSA`
//! in HEADER become the kids of this process's keys; HEADER and CLAIMS are base64url-encoded as
//! they are; MODE picks the signature: 0 the bytes SIG, 1 a real signature by the key SIGNER
//! picks, 2 HMAC-SHA-256 keyed with that key's public JWK (algorithm confusion), 3 none,
//! 4 a real signature with one bit flipped.
//!
//! Properties: neither function panics; neither accepts anything but a token really signed by
//! the key its header names (so a raw input, made with keys of another process, never
//! verifies).
//!
//! `LATCHKEY_FUZZ_WRITE_SEEDS=DIR` writes the seed corpus (real tokens minted with these keys,
//! and recipes) into DIR when the process starts.

#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use latchkey::config::SigningAlg;
use latchkey::crypto::Sealer;
use latchkey::keys::{KeySet, build_key_set, generate_key};
use latchkey::mint::{
    AccessTokenClaims, IdTokenClaims, access_token, id_token, verify_access_token,
    verify_id_token_hint,
};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.example";
const NOW: i64 = 1_700_000_000;

struct Fixture {
    keys: KeySet,
    /// (placeholder, algorithm, kid, public JWK) per key.
    kids: Vec<(&'static str, SigningAlg, String, Vec<u8>)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let sealer = Sealer::new(&[7u8; 32]).expect("sealer");
    let records: Vec<_> = SigningAlg::ALL
        .iter()
        .map(|alg| generate_key(*alg, &sealer, NOW - 60).expect("key generation"))
        .collect();
    let keys = build_key_set(&records, &sealer, NOW, 3600).expect("key set");
    let kids = records
        .iter()
        .map(|r| {
            let alg = SigningAlg::parse(&r.alg).expect("alg");
            (
                placeholder(alg),
                alg,
                r.kid.clone(),
                r.public_jwk.clone().into_bytes(),
            )
        })
        .collect();
    let fixture = Fixture { keys, kids };
    self_check(&fixture);
    if let Ok(dir) = std::env::var("LATCHKEY_FUZZ_WRITE_SEEDS") {
        write_seeds(&fixture, std::path::Path::new(&dir));
    }
    fixture
});

fn access_claims(exp: i64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "0f6e7a52-3a51-4f0e-9d83-8e1c1b8a1f10".into(),
        aud: "https://api.example".into(),
        exp,
        iat: NOW - 30,
        nbf: NOW - 30,
        jti: "Yk3p0xQm2bS7c1dE9fG4hA".into(),
        client_id: "s6BhdRkqt3".into(),
        scope: "openid profile email offline_access".into(),
        auth_time: Some(NOW - 300),
        acr: None,
        sid: Some("c2lkLTEyMw".into()),
        grant_id: Some("Zy1ncmFudC0x".into()),
        cnf: None,
        act: None,
        may_act: None,
    }
}

fn id_claims() -> IdTokenClaims {
    IdTokenClaims {
        iss: ISSUER.into(),
        sub: "0f6e7a52-3a51-4f0e-9d83-8e1c1b8a1f10".into(),
        aud: "s6BhdRkqt3".into(),
        exp: NOW + 3600,
        iat: NOW,
        auth_time: NOW - 300,
        nonce: Some("n-0S6_WzA2Mj".into()),
        at_hash: Some("77QmUPtjPfzWtF2AnpK9RQ".into()),
        azp: "s6BhdRkqt3".into(),
        sid: "c2lkLTEyMw".into(),
        acr: None,
        amr: vec!["pwd".into()],
        idp: None,
    }
}

/// Tokens minted with the fixture's keys verify: the harness can reach `Ok`.
fn self_check(f: &Fixture) {
    for alg in SigningAlg::ALL {
        let at = access_token(&f.keys, alg, &access_claims(NOW + 600)).expect("mint");
        assert!(verify_access_token(&f.keys, &at, ISSUER, NOW).is_ok());
        let it = id_token(&f.keys, alg, &id_claims()).expect("mint");
        assert!(verify_id_token_hint(&f.keys, &it, ISSUER).is_ok());
        let recipe = recipe(
            &format!(
                r#"{{"alg":"{}","kid":"{}","typ":"at+jwt"}}"#,
                alg.as_str(),
                placeholder(alg)
            ),
            &serde_json::to_string(&access_claims(NOW + 600)).expect("json"),
            1,
            alg,
        );
        let (token, signer_kid) = build(f, &recipe[1..]);
        assert_eq!(signer_kid.as_deref(), Some(kid_of(f, alg)));
        assert!(verify_access_token(&f.keys, &token, ISSUER, NOW).is_ok());
    }
}

fn placeholder(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::Rs256 => "$RS256",
        SigningAlg::Es256 => "$ES256",
        SigningAlg::EdDsa => "$EdDSA",
    }
}

fn kid_of(f: &Fixture, alg: SigningAlg) -> &str {
    f.kids
        .iter()
        .find(|k| k.1 == alg)
        .map(|k| k.2.as_str())
        .unwrap_or_default()
}

fn recipe(header: &str, claims: &str, mode: u8, signer: SigningAlg) -> Vec<u8> {
    let signer = SigningAlg::ALL
        .iter()
        .position(|a| *a == signer)
        .unwrap_or(0) as u8;
    let mut out = vec![1u8];
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(claims.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&[mode, signer]);
    out
}

/// Builds a token from a recipe (without its first byte); also returns the kid of the key
/// that really signed it (mode 1 only).
fn build(f: &Fixture, recipe: &[u8]) -> (String, Option<String>) {
    let mut parts = recipe.splitn(3, |b| *b == b'\n');
    let mut header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let claims = parts.next().unwrap_or_default();
    let tail = parts.next().unwrap_or_default();
    for (placeholder, _, kid, _) in &f.kids {
        header = header.replace(placeholder, kid);
    }
    let mode = tail.first().copied().unwrap_or(0) % 5;
    let (_, alg, kid, jwk) = &f.kids[usize::from(tail.get(1).copied().unwrap_or(0)) % f.kids.len()];
    let sig_bytes = tail.get(2..).unwrap_or_default();
    let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let sign = || {
        f.keys
            .signing_key(*alg)
            .expect("active key")
            .sign(token.as_bytes())
            .expect("sign")
    };
    let (signature, signed_by) = match mode {
        0 => (sig_bytes.to_vec(), None),
        1 => (sign(), Some(kid.clone())),
        2 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwk).expect("hmac key");
            mac.update(token.as_bytes());
            (mac.finalize().into_bytes().to_vec(), None)
        }
        3 => (Vec::new(), None),
        _ => {
            let mut s = sign();
            let at = usize::from(sig_bytes.first().copied().unwrap_or(0)) % s.len();
            s[at] ^= 1 << (sig_bytes.get(1).copied().unwrap_or(0) % 8);
            (s, None)
        }
    };
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    (token, signed_by)
}

/// The `kid` the header names, as a JSON reader sees it.
fn header_kid(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&header).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}

fn check(token: &str, signed_by: Option<&str>) {
    let access = verify_access_token(&FIXTURE.keys, token, ISSUER, NOW);
    let hint = verify_id_token_hint(&FIXTURE.keys, token, ISSUER);
    if access.is_ok() || hint.is_ok() {
        let named = header_kid(token);
        assert!(
            signed_by.is_some() && named.as_deref() == signed_by,
            "accepted a token not signed by the key it names: {token}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        check(&String::from_utf8_lossy(rest), None);
    } else {
        let (token, signed_by) = build(fixture, rest);
        check(&token, signed_by.as_deref());
    }
});

fn write_seeds(f: &Fixture, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("seed dir");
    let raw = |name: &str, token: &str| {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(token.as_bytes());
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    for alg in SigningAlg::ALL {
        let a = alg.as_str().to_ascii_lowercase();
        raw(
            &format!("access-{a}"),
            &access_token(&f.keys, alg, &access_claims(NOW + 600)).expect("mint"),
        );
        raw(
            &format!("id-token-{a}"),
            &id_token(&f.keys, alg, &id_claims()).expect("mint"),
        );
    }
    let expired = access_token(&f.keys, SigningAlg::Es256, &access_claims(NOW - 1)).expect("mint");
    raw("access-expired", &expired);
    let mut parts: Vec<String> = expired.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://id.example","sub":"admin"}"#);
    raw("access-tampered-payload", &parts.join("."));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&id_claims()).expect("json")),
    );
    raw("id-token-alg-none", &none);
    raw("not-a-jwt", "eyJhbGciOiJFUzI1NiJ9");
    raw("four-parts", "a.b.c.d");

    let rec = |name: &str, header: &str, claims: &str, mode: u8, signer: SigningAlg| {
        std::fs::write(dir.join(name), recipe(header, claims, mode, signer)).expect("write seed");
    };
    let at = serde_json::to_string(&access_claims(NOW + 600)).expect("json");
    let it = serde_json::to_string(&id_claims()).expect("json");
    rec(
        "recipe-access-es256",
        r#"{"alg":"ES256","kid":"$ES256","typ":"at+jwt"}"#,
        &at,
        1,
        SigningAlg::Es256,
    );
    rec(
        "recipe-id-token-rs256",
        r#"{"alg":"RS256","kid":"$RS256","typ":"JWT"}"#,
        &it,
        1,
        SigningAlg::Rs256,
    );
    rec(
        "recipe-id-token-eddsa-bitflip",
        r#"{"alg":"EdDSA","kid":"$EdDSA","typ":"JWT"}"#,
        &it,
        4,
        SigningAlg::EdDsa,
    );
    rec(
        "recipe-hs256-confusion",
        r#"{"alg":"HS256","kid":"$RS256","typ":"JWT"}"#,
        &it,
        2,
        SigningAlg::Rs256,
    );
    rec(
        "recipe-kid-of-another-key",
        r#"{"alg":"ES256","kid":"$RS256","typ":"at+jwt"}"#,
        &at,
        1,
        SigningAlg::Es256,
    );
    rec(
        "recipe-unsigned",
        r#"{"alg":"none","kid":"$ES256","typ":"at+jwt"}"#,
        &at,
        3,
        SigningAlg::Es256,
    );
}
