use super::*;

#[test]
fn each_algorithm_signs_tokens_its_jwk_verifies() {
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let records: Vec<SigningKeyRecord> = SigningAlg::ALL
        .iter()
        .map(|alg| generate_key(*alg, &sealer, 1000).unwrap())
        .collect();
    let set = build_key_set(&records, &sealer, 1000, 3600).unwrap();
    let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    for jwk in jwks["keys"].as_array().unwrap() {
        assert!(
            jwk.get("d").is_none() && jwk.get("p").is_none(),
            "no private parts: {jwk}"
        );
        assert_eq!(jwk["use"], "sig");
        let kid = jwk["kid"].as_str().unwrap();
        let alg = SigningAlg::parse(jwk["alg"].as_str().unwrap()).unwrap();
        let key = set.signing_key(alg).unwrap();
        assert_eq!(key.kid, kid);
        // Verify a signature with jsonwebtoken, from the published JWK alone.
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed).unwrap();
        let claims = serde_json::json!({"sub": "x", "iss": "me"});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{}.{}", key.jwt_header, payload);
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
        let token = format!("{input}.{sig}");
        let mut validation = jsonwebtoken::Validation::new(crate::mint::jwt_alg(alg));
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "x");
    }
}

#[test]
fn a_retired_key_stays_published_until_its_tokens_expire() {
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let mut old = generate_key(SigningAlg::Es256, &sealer, 1000).unwrap();
    old.retired_at = Some(2000);
    let new = generate_key(SigningAlg::Es256, &sealer, 2000).unwrap();
    let records = vec![new.clone(), old.clone()];
    let set = build_key_set(&records, &sealer, 2500, 3600).unwrap();
    assert_eq!(set.signing_key(SigningAlg::Es256).unwrap().kid, new.kid);
    assert!(set.verifying_key(&old.kid).is_some());
    let later = build_key_set(&records, &sealer, 2000 + 3600, 3600).unwrap();
    assert!(later.verifying_key(&old.kid).is_none());
}

#[test]
fn a_wrong_master_key_cannot_open_stored_keys() {
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let record = generate_key(SigningAlg::EdDsa, &sealer, 1).unwrap();
    let other = Sealer::new(&[10u8; 32]).unwrap();
    assert!(build_key_set(&[record], &other, 1, 10).is_err());
}
