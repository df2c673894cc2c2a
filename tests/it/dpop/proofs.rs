//! Proofs at the token endpoint bind access tokens (and a public client's refresh tokens) to
//! the client's key; userinfo and introspection honour the binding; each proof is accepted
//! once on any node; server nonces are valid on every node.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{code_tokens, now, public_client, refresh_form, token_proof, token_with, userinfo};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, DpopKey, TestApp, ath, introspect, jwt_part, machine_client, pkce_pair,
    resource_server, settings, spawn_app_with, spawn_app_with_alice_and, spawn_node_with,
};

both_backends!(
    a_proof_binds_the_access_token_and_userinfo_demands_the_key,
    a_public_clients_refresh_token_is_bound_to_the_key,
    each_proof_check_is_enforced_at_the_token_endpoint,
    htu_is_the_endpoint_after_rfc_3986_normalisation_only,
    ed25519_proofs_are_accepted_like_eddsa,
    dpop_bound_access_tokens_makes_proofs_mandatory,
    a_proof_is_accepted_once_across_two_nodes,
    nonces_are_required_when_configured_and_valid_on_every_node,
    userinfo_answers_a_bad_nonce_with_a_dpop_challenge_and_a_fresh_nonce,
);

async fn a_proof_binds_the_access_token_and_userinfo_demands_the_key(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let doc = app.discovery().await;
    for alg in ["ES256", "EdDSA", "RS256"] {
        assert!(
            doc["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(alg)),
            "{doc}"
        );
    }
    let client = public_client(&app).await;
    let key = DpopKey::es256();
    let tokens = code_tokens(&app, &client, Some(&key)).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], key.thumbprint());

    // Introspection tells a resource server the binding.
    let rs = resource_server(&app).await;
    let (_, info) = introspect(&app, &rs, access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "DPoP");
    assert_eq!(info["cnf"]["jkt"], key.thumbprint());

    let url = app.url("/userinfo");
    let good = |k: &DpopKey| k.proof("GET", &url, now(&app), json!({"ath": ath(access)}));
    let dpop_auth = format!("DPoP {access}");
    // With a proof of the key, carrying ath: the user's claims.
    let (status, _) = userinfo(&app, &dpop_auth, Some(&good(&key))).await;
    assert_eq!(status, 200);
    // Presented as a bearer token, it is refused.
    let (status, challenge) = userinfo(&app, &format!("Bearer {access}"), None).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let (status, _) = userinfo(&app, &format!("Bearer {access}"), Some(&good(&key))).await;
    assert_eq!(status, 401);
    // Without a proof, with another key's, without ath, for another method, or replayed.
    let (status, challenge) = userinfo(&app, &dpop_auth, None).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    let (status, challenge) = userinfo(&app, &dpop_auth, Some(&good(&DpopKey::es256()))).await;
    assert_eq!(
        (status, challenge.contains("invalid_token")),
        (401, true),
        "{challenge}"
    );
    let no_ath = key.proof("GET", &url, now(&app), json!({}));
    let (status, challenge) = userinfo(&app, &dpop_auth, Some(&no_ath)).await;
    assert_eq!(
        (status, challenge.contains("invalid_dpop_proof")),
        (401, true)
    );
    let post_proof = key.proof("POST", &url, now(&app), json!({"ath": ath(access)}));
    assert_eq!(userinfo(&app, &dpop_auth, Some(&post_proof)).await.0, 401);
    let once = good(&key);
    assert_eq!(userinfo(&app, &dpop_auth, Some(&once)).await.0, 200);
    let (status, challenge) = userinfo(&app, &dpop_auth, Some(&once)).await;
    assert_eq!(
        (status, challenge.contains("invalid_dpop_proof")),
        (401, true)
    );

    // An unbound token is not accepted under the DPoP scheme.
    let bearer = code_tokens(&app, &client, None).await;
    assert_eq!(bearer["token_type"], "Bearer");
    let plain = bearer["access_token"].as_str().unwrap();
    assert!(jwt_part(plain, 1).get("cnf").is_none());
    let proof = key.proof("GET", &url, now(&app), json!({"ath": ath(plain)}));
    assert_eq!(
        userinfo(&app, &format!("DPoP {plain}"), Some(&proof))
            .await
            .0,
        401
    );
    assert_eq!(
        userinfo(&app, &format!("Bearer {plain}"), None).await.0,
        200
    );
}

async fn a_public_clients_refresh_token_is_bound_to_the_key(backend: Backend) {
    let (app, web) = spawn_app_with_alice_and(backend, &[]).await;
    let client = public_client(&app).await;
    let key = DpopKey::eddsa();
    let tokens = code_tokens(&app, &client, Some(&key)).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    // Without a proof, or with another key: refused, and the token stays usable.
    let (status, body, _) = token_with(&app, &client, &refresh_form(refresh), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let other = token_proof(&app, &DpopKey::eddsa());
    let (status, body, _) = token_with(&app, &client, &refresh_form(refresh), Some(&other)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // With the key: a new bound pair.
    let proof = token_proof(&app, &key);
    let (status, body, _) = token_with(&app, &client, &refresh_form(refresh), Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["cnf"]["jkt"],
        key.thumbprint()
    );
    let next = body["refresh_token"].as_str().unwrap();
    let (status, _, _) = token_with(&app, &client, &refresh_form(next), None).await;
    assert_eq!(status, 400, "the successor is bound too");
    let (_, info) = introspect(&app, &resource_server(&app).await, next).await;
    assert_eq!(info["cnf"]["jkt"], key.thumbprint(), "{info}");

    // A confidential client's refresh token is not bound: its authentication guards it. The
    // access token of each request is bound to that request's proof, if any.
    let (verifier, challenge) = pkce_pair();
    let query = Browser::new(&app)
        .code_flow(&web, "openid offline_access", Some(&challenge), &[])
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", query["code"].as_str()),
        ("redirect_uri", web.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body, _) = token_with(&app, &web, &form, Some(&token_proof(&app, &key))).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    let web_refresh = body["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_with(&app, &web, &refresh_form(web_refresh), None).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("Bearer")),
        "{body}"
    );
}

async fn each_proof_check_is_enforced_at_the_token_endpoint(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let cc = [("grant_type", "client_credentials")];
    // Every supported algorithm binds the token to its key.
    for key in [DpopKey::es256(), DpopKey::eddsa(), DpopKey::rs256()] {
        let (status, body, headers) =
            token_with(&app, &client, &cc, Some(&token_proof(&app, &key))).await;
        assert_eq!(status, 200, "{}: {body}", key.alg());
        assert_eq!(body["token_type"], "DPoP");
        let jkt = &jwt_part(body["access_token"].as_str().unwrap(), 1)["cnf"]["jkt"];
        assert_eq!(jkt, &json!(key.thumbprint()), "{}", key.alg());
        assert!(
            headers.contains_key("dpop-nonce"),
            "a DPoP client gets a nonce"
        );
    }
    // Without a proof: a bearer token.
    let (status, body, headers) = token_with(&app, &client, &cc, None).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert!(!headers.contains_key("dpop-nonce"));

    let key = DpopKey::es256();
    let url = app.url("/token");
    let t = now(&app);
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk()});
    let claims = json!({"jti": "j-1", "htm": "POST", "htu": url, "iat": t});
    let with = |edit: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header.clone(), claims.clone());
        edit(&mut h, &mut c);
        key.sign_with(&h, &c)
    };
    let mut private = key.jwk();
    private["d"] = json!("AAAA");
    // The iat bounds are checked to the second in the unit tests; here the margin leaves room
    // for a slow request.
    let refused: Vec<(&str, String)> = vec![
        ("typ JWT", with(&|h, _| h["typ"] = json!("JWT"))),
        ("alg HS256", with(&|h, _| h["alg"] = json!("HS256"))),
        (
            "no jwk",
            with(&|h, _| {
                h.as_object_mut()
                    .unwrap()
                    .remove("jwk")
                    .map(|_| ())
                    .unwrap()
            }),
        ),
        ("private jwk", with(&|h, _| h["jwk"] = private.clone())),
        (
            "another key",
            with(&|h, _| h["jwk"] = DpopKey::es256().jwk()),
        ),
        ("htm GET", with(&|_, c| c["htm"] = json!("GET"))),
        (
            "htu of userinfo",
            with(&|_, c| c["htu"] = json!(app.url("/userinfo"))),
        ),
        ("iat 70 s old", with(&|_, c| c["iat"] = json!(t - 70))),
        ("iat 70 s ahead", with(&|_, c| c["iat"] = json!(t + 70))),
        ("no jti", with(&|_, c| c["jti"] = json!(""))),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (name, proof) in refused {
        let (status, body, _) = token_with(&app, &client, &cc, Some(&proof)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{name}: {body}"
        );
    }
    // htu ignores a query; a proof is good once.
    let good = with(&|_, c| c["htu"] = json!(format!("{url}?ignored=1")));
    assert_eq!(token_with(&app, &client, &cc, Some(&good)).await.0, 200);
    let (status, body, _) = token_with(&app, &client, &cc, Some(&good)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // Two DPoP headers are refused.
    let response = app
        .http
        .post(&url)
        .basic_auth(&client.client_id, client.secret.as_deref())
        .header("DPoP", token_proof(&app, &key))
        .header("DPoP", token_proof(&app, &key))
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

/// RFC 9449 §4.3 item 9: `htu` is the request's URI without query and fragment after the
/// syntax-based normalisation of RFC 3986 §6.2.2 (and the default port of §6.2.3). What a
/// lenient (WHATWG) parser alone would call the same URL is refused, and so is another path.
async fn htu_is_the_endpoint_after_rfc_3986_normalisation_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let cc = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let base = app.base.clone();
    let authority = base.strip_prefix("http://").unwrap().to_owned();
    let (host, port) = authority.rsplit_once(':').unwrap();
    let proof = |htu: &str| key.proof("POST", htu, now(&app), json!({}));
    let accepted = [
        format!("HTTP://{}:{port}/token", host.to_uppercase()),
        format!("{base}/%74oken"),
        format!("{base}/%74%6f%6B%65%6E"),
        format!("{base}/api/../token"),
        format!("{base}/./token"),
        format!("{base}/token?x=1#fragment"),
        format!("http://{host}:0{port}/token"),
    ];
    for htu in &accepted {
        let (status, body, _) = token_with(&app, &client, &cc, Some(&proof(htu))).await;
        assert_eq!(status, 200, "{htu}: {body}");
    }
    let refused = [
        format!("{base}/userinfo"),
        format!("{base}/token/"),
        format!("{base}/TOKEN"),
        format!("{base}%2Ftoken"),
        format!("{base}/t%6ken"),
        format!("https://{authority}/token"),
        format!("http://{host}:1{port}/token"),
        format!("http://{host}/token"),
        format!("http:{authority}/token"),
        format!("http:\\\\{authority}\\token"),
        format!("http://{authority}/to\tken"),
        format!("http://me@{authority}/token"),
        format!("http://127.1:{port}/token"),
        format!("http://0x7f.0.0.1:{port}/token"),
    ];
    for htu in &refused {
        let (status, body, _) = token_with(&app, &client, &cc, Some(&proof(htu))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{htu}: {body}"
        );
    }
}

/// RFC 9864: `Ed25519` is the fully specified name of EdDSA with an Ed25519 key; a proof
/// under either name binds the token to that key, and discovery says so.
async fn ed25519_proofs_are_accepted_like_eddsa(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let doc = app.discovery().await;
    let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("Ed25519")), "{doc}");
    assert!(algs.contains(&json!("EdDSA")), "{doc}");
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let cc = [("grant_type", "client_credentials")];
    let key = DpopKey::eddsa();
    let claims =
        |jti: &str| json!({"jti": jti, "htm": "POST", "htu": app.url("/token"), "iat": now(&app)});
    let header = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": key.jwk()});
    let (status, body, _) = token_with(
        &app,
        &client,
        &cc,
        Some(&key.sign_with(&header, &claims("a"))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let jkt = &jwt_part(body["access_token"].as_str().unwrap(), 1)["cnf"]["jkt"];
    assert_eq!(jkt, &json!(key.thumbprint()));
    // Refused: the name with another kind of key, and a signature by another key.
    let ec = DpopKey::es256();
    let header_ec = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": ec.jwk()});
    let other = DpopKey::eddsa();
    let header_other = json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": other.jwk()});
    for (name, proof) in [
        ("an EC key", ec.sign_with(&header_ec, &claims("b"))),
        (
            "another key's signature",
            key.sign_with(&header_other, &claims("c")),
        ),
    ] {
        let (status, body, _) = token_with(&app, &client, &cc, Some(&proof)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{name}: {body}"
        );
    }
}

async fn dpop_bound_access_tokens_makes_proofs_mandatory(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let reg = app
        .create_client(json!({
            "client_name": "Bound",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
            "dpop_bound_access_tokens": true,
        }))
        .await;
    assert_eq!(reg["dpop_bound_access_tokens"], true, "{reg}");
    let client = machine_client(&reg);
    let cc = [("grant_type", "client_credentials")];
    let (status, body, _) = token_with(&app, &client, &cc, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body, _) = token_with(&app, &client, &cc, Some("not.a.proof")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let key = DpopKey::es256();
    let (status, body, _) = token_with(&app, &client, &cc, Some(&token_proof(&app, &key))).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );

    // Turned off again through the admin API: bearer tokens are issued.
    let path = format!("/admin/clients/{}", client.client_id);
    let (_, current) = app.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(current["dpop_bound_access_tokens"], true);
    let replacement = json!({
        "client_name": "Bound",
        "grant_types": ["client_credentials"],
        "scope": "api.read",
        "dpop_bound_access_tokens": false,
    });
    let (status, updated) = app
        .admin(reqwest::Method::PUT, &path, Some(&replacement))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["dpop_bound_access_tokens"], false);
    // Within the change-poll bound, the token endpoint sees it.
    let mut answer = (0, Value::Null);
    for _ in 0..30 {
        let (status, body, _) = token_with(&app, &client, &cc, None).await;
        answer = (status, body);
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        (answer.0, answer.1["token_type"].as_str()),
        (200, Some("Bearer")),
        "{}",
        answer.1
    );
    // A stored client without the field reads as unbound: the default is false.
    let plain = app
        .create_client(json!({"client_name": "Plain", "grant_types": ["client_credentials"]}))
        .await;
    assert_eq!(plain["dpop_bound_access_tokens"], false);
}

async fn a_proof_is_accepted_once_across_two_nodes(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    // The second node answers under the same issuer, as behind one load balancer.
    let other = spawn_node_with(&app, settings(&[("LATCHKEY_ISSUER", &app.base)])).await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let key = DpopKey::es256();
    let proof = token_proof(&app, &key);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                other.base.clone()
            };
            let (http, proof, barrier) = (app.http.clone(), proof.clone(), barrier.clone());
            let (id, secret) = (client.client_id.clone(), client.secret.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(format!("{base}/token"))
                    .basic_auth(id, secret)
                    .header("DPoP", proof)
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one of 50 racing copies of one proof, over two nodes: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

async fn nonces_are_required_when_configured_and_valid_on_every_node(backend: Backend) {
    let app = spawn_app_with(backend, settings(&[("LATCHKEY_DPOP_NONCE", "required")])).await;
    let other = spawn_node_with(
        &app,
        settings(&[
            ("LATCHKEY_ISSUER", &app.base),
            ("LATCHKEY_DPOP_NONCE", "required"),
        ]),
    )
    .await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let cc = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let url = app.url("/token");
    // Without a nonce: use_dpop_nonce, and the nonce to use.
    let (status, body, headers) =
        token_with(&app, &client, &cc, Some(&token_proof(&app, &key))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    // Node A's nonce works at node B (same issuer, no shared state but the master key).
    let proof = key.proof("POST", &url, now(&app), json!({"nonce": nonce}));
    let (status, body, _) = token_with(&other, &client, &cc, Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    // A made-up nonce, or a nonce from long ago, is refused.
    let proof = key.proof("POST", &url, now(&app), json!({"nonce": "made-up"}));
    let (status, body, headers) = token_with(&app, &client, &cc, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    assert!(headers.contains_key("dpop-nonce"));
    app.clock.advance(600);
    let proof = key.proof("POST", &url, now(&app), json!({"nonce": nonce}));
    let (status, body, headers) = token_with(&app, &client, &cc, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let fresh = headers["dpop-nonce"].to_str().unwrap().to_owned();
    assert_ne!(fresh, nonce, "nonces change over time");
    let proof = key.proof("POST", &url, now(&app), json!({"nonce": fresh}));
    assert_eq!(token_with(&app, &client, &cc, Some(&proof)).await.0, 200);

    // With nonces optional, a proof without one is fine, but a nonce sent must be valid.
    let relaxed = spawn_app_with(backend, |_| {}).await;
    let client = machine_client(
        &relaxed
            .create_client(json!({"client_name": "M", "grant_types": ["client_credentials"]}))
            .await,
    );
    let url = relaxed.url("/token");
    let proof = key.proof("POST", &url, now(&relaxed), json!({"nonce": "made-up"}));
    let (status, body, _) = token_with(&relaxed, &client, &cc, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let proof = key.proof("POST", &url, now(&relaxed), json!({}));
    assert_eq!(
        token_with(&relaxed, &client, &cc, Some(&proof)).await.0,
        200
    );
}

/// GET /userinfo with `DPoP <access>` and `proof`: status, `WWW-Authenticate`, `DPoP-Nonce`.
async fn userinfo_with_nonce(app: &TestApp, access: &str, proof: &str) -> (u16, String, String) {
    let response = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {access}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (challenge, nonce) = (header("www-authenticate"), header("dpop-nonce"));
    (response.status().as_u16(), challenge, nonce)
}

/// RFC 9449 §9: userinfo answers a proof whose nonce is stale or made up with 401,
/// `WWW-Authenticate: DPoP … error="use_dpop_nonce"` and a fresh `DPoP-Nonce`, which the next
/// proof may carry. Nonces are the server's: one from the token endpoint works here too.
async fn userinfo_answers_a_bad_nonce_with_a_dpop_challenge_and_a_fresh_nonce(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let client = public_client(&app).await;
    let key = DpopKey::es256();
    let tokens = code_tokens(&app, &client, Some(&key)).await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = app.url("/userinfo");
    let proof = |nonce: &str| {
        key.proof(
            "GET",
            &url,
            now(&app),
            json!({"ath": ath(access), "nonce": nonce}),
        )
    };
    for bad in ["made-up".to_owned(), String::new()] {
        let (status, challenge, nonce) = userinfo_with_nonce(&app, access, &proof(&bad)).await;
        assert_eq!(status, 401, "{bad:?}");
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(
            challenge.contains("error=\"use_dpop_nonce\""),
            "{challenge}"
        );
        assert!(challenge.contains("algs=\""), "{challenge}");
        assert!(!nonce.is_empty(), "a fresh nonce comes with the challenge");
    }
    let (_, _, fresh) = userinfo_with_nonce(&app, access, &proof("made-up")).await;
    let (status, challenge, next) = userinfo_with_nonce(&app, access, &proof(&fresh)).await;
    assert_eq!(status, 200, "{challenge}");
    assert!(
        !next.is_empty(),
        "every answer to a proof carries the nonce"
    );
    // A nonce from long ago is stale.
    app.clock.advance(600);
    let (status, challenge, _) = userinfo_with_nonce(&app, access, &proof(&fresh)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
}
