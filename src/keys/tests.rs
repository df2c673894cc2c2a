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

fn kids_in_jwks(set: &KeySet) -> Vec<String> {
    let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_scheduled_key_is_next_then_active_then_retired_then_gone() {
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    let mut old = generate_key(SigningAlg::Es256, &sealer, 1000).unwrap();
    let mut next = generate_key(SigningAlg::Es256, &sealer, 1500).unwrap();
    next.activates_at = 2000;
    old.retired_at = Some(2000);
    let records = vec![next.clone(), old.clone()];
    let state =
        |set: &KeySet, kid: &str| set.published.iter().find(|k| k.kid == kid).map(|k| k.state);

    let before = build_key_set(&records, &sealer, 1500, 100).unwrap();
    assert_eq!(state(&before, &next.kid), Some(KeyState::Next));
    assert_eq!(state(&before, &old.kid), Some(KeyState::Active));
    assert_eq!(before.signing_key(SigningAlg::Es256).unwrap().kid, old.kid);
    assert!(kids_in_jwks(&before).contains(&next.kid), "published ahead");
    assert!(before.verifying_key(&next.kid).is_some());
    assert_eq!(
        before.valid_until,
        Some(2000),
        "rebuilt when the next key activates"
    );

    let at = build_key_set(&records, &sealer, 2000, 100).unwrap();
    assert_eq!(state(&at, &next.kid), Some(KeyState::Active));
    assert_eq!(state(&at, &old.kid), Some(KeyState::Retired));
    assert_eq!(at.signing_key(SigningAlg::Es256).unwrap().kid, next.kid);
    assert!(
        kids_in_jwks(&at).contains(&old.kid),
        "still verifies its tokens"
    );
    assert_eq!(
        at.valid_until,
        Some(2100),
        "rebuilt when the retired key leaves"
    );

    let after = build_key_set(&records, &sealer, 2100, 100).unwrap();
    assert_eq!(state(&after, &old.kid), None);
    assert!(!kids_in_jwks(&after).contains(&old.kid));
    assert_eq!(after.valid_until, None);
}

#[test]
fn jwks_lists_rsa_and_ec_keys_before_okp_keys() {
    let sealer = Sealer::new(&[9u8; 32]).unwrap();
    // Whatever the creation order, OKP comes last.
    let records: Vec<SigningKeyRecord> = [SigningAlg::EdDsa, SigningAlg::Es256, SigningAlg::Rs256]
        .iter()
        .enumerate()
        .map(|(i, alg)| generate_key(*alg, &sealer, 1000 + i as i64).unwrap())
        .collect();
    let set = build_key_set(&records, &sealer, 2000, 100).unwrap();
    let jwks: serde_json::Value = serde_json::from_slice(&set.jwks_json).unwrap();
    let ktys: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(ktys, ["RSA", "EC", "OKP"]);
}

#[test]
fn the_schedule_publishes_ahead_and_caps_the_jwks_cache() {
    let schedule = Schedule {
        interval: 100,
        publish_ahead: 10,
    };
    assert_eq!(schedule.successor(1000, 1000), Some((1090, 1100)));
    // A node that notices late still publishes the full window ahead.
    assert_eq!(schedule.successor(1000, 1095), Some((1090, 1105)));
    assert_eq!(schedule.jwks_max_age(), 9);
    let long = Schedule {
        interval: 90 * 86_400,
        publish_ahead: 86_400,
    };
    assert_eq!(long.jwks_max_age(), 60);
    let off = Schedule {
        interval: 0,
        publish_ahead: 86_400,
    };
    assert_eq!(off.successor(1000, 5000), None);
}
