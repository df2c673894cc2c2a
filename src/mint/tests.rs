use super::*;
use crate::crypto::Sealer;
use crate::keys::{build_key_set, generate_key};

fn key_set() -> KeySet {
    let sealer = Sealer::new(&[3u8; 32]).unwrap();
    let records: Vec<_> = SigningAlg::ALL
        .iter()
        .map(|alg| generate_key(*alg, &sealer, 100).unwrap())
        .collect();
    build_key_set(&records, &sealer, 100, 3600).unwrap()
}

fn claims(exp: i64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "https://id.example".into(),
        sub: "user-1".into(),
        aud: "client-1".into(),
        exp,
        iat: 100,
        nbf: 100,
        jti: "jti-1".into(),
        client_id: "client-1".into(),
        scope: "openid".into(),
        auth_time: None,
        acr: None,
        sid: None,
        grant_id: Some("g".into()),
        cnf: Some(Confirmation {
            jkt: "thumbprint".into(),
        }),
        act: Some(serde_json::json!({"sub": "service-a"})),
        may_act: None,
    }
}

#[test]
fn access_tokens_round_trip_with_every_algorithm() {
    let keys = key_set();
    for alg in SigningAlg::ALL {
        let token = access_token(&keys, alg, &claims(1000)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(
            verify_access_token(&keys, &token, "https://id.example", 500).unwrap(),
            claims(1000)
        );
        assert_eq!(
            verify_access_token(&keys, &token, "https://id.example", 1000),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            verify_access_token(&keys, &token, "https://other.example", 500),
            Err(VerifyError::Invalid)
        );
    }
}

#[test]
fn forged_and_foreign_tokens_are_refused() {
    let keys = key_set();
    let token = access_token(&keys, SigningAlg::Es256, &claims(1000)).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered_payload = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&AccessTokenClaims {
            sub: "admin".into(),
            ..claims(1000)
        })
        .unwrap(),
    );
    parts[1] = &tampered_payload;
    let forged = parts.join(".");
    assert_eq!(
        verify_access_token(&keys, &forged, "https://id.example", 500),
        Err(VerifyError::Invalid)
    );
    let other_keys = key_set();
    assert_eq!(
        verify_access_token(&other_keys, &token, "https://id.example", 500),
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(
        verify_access_token(&keys, "garbage", "https://id.example", 500),
        Err(VerifyError::Malformed)
    );
    // An ID token is not an access token.
    let id = id_token(
        &keys,
        SigningAlg::Rs256,
        &IdTokenClaims {
            iss: "https://id.example".into(),
            sub: "user-1".into(),
            aud: "client-1".into(),
            exp: 1000,
            iat: 100,
            auth_time: 100,
            nonce: None,
            at_hash: None,
            azp: "client-1".into(),
            sid: "s".into(),
            acr: None,
            amr: vec![],
            idp: None,
        },
    )
    .unwrap();
    assert_eq!(
        verify_access_token(&keys, &id, "https://id.example", 500),
        Err(VerifyError::WrongType)
    );
    assert_eq!(
        verify_id_token_hint(&keys, &id, "https://id.example")
            .unwrap()
            .sub,
        "user-1"
    );
    // An unsigned token ("alg": "none") is refused.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert!(verify_access_token(&keys, &unsigned, "https://id.example", 500).is_err());
}

#[test]
fn at_hash_follows_the_id_token_algorithm() {
    // OpenID Connect Core §3.1.3.6: left half of the hash, base64url.
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNUq2LMNoNoSlm0hw1";
    let sha256 = at_hash(token, SigningAlg::Rs256);
    assert_eq!(sha256.len(), 22);
    assert_eq!(sha256, at_hash(token, SigningAlg::Es256));
    assert_eq!(at_hash(token, SigningAlg::EdDsa).len(), 43);
}
