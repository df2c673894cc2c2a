//! Authorization-code binding (RFC 9449 §10): a `dpop_jkt` at the authorization endpoint, or
//! a `DPoP` proof (or `dpop_jkt`) at the PAR endpoint, binds the code to a key; the token
//! request must then prove possession of that key. A refused redemption does not spend the
//! code.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{now, post_with, public_client, token_proof, token_with};
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, DpopKey, TestApp, TestClient, jwt_part, pkce_pair, query_of, settings,
    spawn_app_with_alice_and, spawn_node_with,
};

both_backends!(
    dpop_jkt_at_authorize_binds_the_code_to_that_key,
    a_malformed_dpop_jkt_is_refused_at_the_redirect_uri,
    a_proof_at_the_par_endpoint_binds_the_code,
    racing_redemptions_of_a_bound_code_with_wrong_keys_spend_nothing,
);

const SCOPE: &str = "openid profile offline_access";

/// The code request's form for `code` and `verifier`.
fn code_form<'a>(
    client: &'a TestClient,
    code: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ]
}

/// alice's code flow in `browser` with `extra` authorization parameters: code and verifier.
async fn bound_code(
    browser: &Browser<'_>,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(client, SCOPE, Some(&challenge), extra)
        .await;
    (query["code"].clone(), verifier)
}

/// Asserts `invalid_grant` for a bound code redeemed without the right key.
fn refused(answer: (u16, Value, reqwest::header::HeaderMap), what: &str) {
    let (status, body, _) = answer;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{what}: {body}"
    );
}

async fn dpop_jkt_at_authorize_binds_the_code_to_that_key(backend: Backend) {
    let (app, web) = spawn_app_with_alice_and(backend, &[]).await;
    let client = public_client(&app).await;
    let key = DpopKey::es256();
    let jkt = key.thumbprint();
    let browser = Browser::new(&app);
    // The first code goes through login and consent, the second straight from /authorize
    // (session and consent remembered): both are bound.
    for round in ["after login and consent", "from the session"] {
        let (code, verifier) = bound_code(&browser, &client, &[("dpop_jkt", &jkt)]).await;
        let form = code_form(&client, &code, &verifier);
        refused(
            token_with(&app, &client, &form, None).await,
            "without a proof",
        );
        let other = token_proof(&app, &DpopKey::es256());
        refused(
            token_with(&app, &client, &form, Some(&other)).await,
            "another key",
        );
        let other = token_proof(&app, &DpopKey::eddsa());
        refused(
            token_with(&app, &client, &form, Some(&other)).await,
            "another alg",
        );
        // Neither refusal spent the code: the key's proof redeems it, once.
        let (status, body, _) =
            token_with(&app, &client, &form, Some(&token_proof(&app, &key))).await;
        assert_eq!(status, 200, "{round}: {body}");
        assert_eq!(body["token_type"], "DPoP");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], jkt.as_str());
        // Its refresh token is bound to the same key.
        let refresh = body["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        refused(
            token_with(&app, &client, &form, None).await,
            "refresh without the key",
        );
        let (status, _, _) = token_with(&app, &client, &form, Some(&token_proof(&app, &key))).await;
        assert_eq!(status, 200, "{round}");
        let form = code_form(&client, &code, &verifier);
        refused(
            token_with(&app, &client, &form, Some(&token_proof(&app, &key))).await,
            "a second redemption",
        );
    }

    // A confidential client's code is bound as well: its authentication does not replace the key.
    let confidential = web;
    let (code, verifier) = bound_code(&browser, &confidential, &[("dpop_jkt", &jkt)]).await;
    let form = code_form(&confidential, &code, &verifier);
    refused(
        token_with(&app, &confidential, &form, None).await,
        "confidential, no proof",
    );
    let (status, body, _) =
        token_with(&app, &confidential, &form, Some(&token_proof(&app, &key))).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );

    // Without dpop_jkt the code is not bound: any key, or none, redeems it.
    let (code, verifier) = bound_code(&browser, &client, &[]).await;
    let form = code_form(&client, &code, &verifier);
    let (status, body, _) = token_with(
        &app,
        &client,
        &form,
        Some(&token_proof(&app, &DpopKey::rs256())),
    )
    .await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
}

/// `thumbprint` (43 characters, 256 bits in 258) with the two unused low bits of its last
/// character set: decodes to the same bytes under a lax decoder, but is not canonical.
fn with_spare_bits_set(thumbprint: &str) -> String {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = thumbprint.chars().last().unwrap();
    let index = ALPHABET.find(last).unwrap();
    let spare = ALPHABET.chars().nth(index | 0b11).unwrap();
    format!("{}{spare}", &thumbprint[..42])
}

async fn a_malformed_dpop_jkt_is_refused_at_the_redirect_uri(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let client = public_client(&app).await;
    let (_, challenge) = pkce_pair();
    let good = DpopKey::es256().thumbprint();
    for bad in [
        "not-a-thumbprint".to_owned(),
        format!("{good}="),
        format!("{good}A"),
        good[..42].to_owned(),
        // 43 characters, but not base64url.
        format!("{}*", &good[..42]),
        // Base64url of 32 bytes with its two spare bits set: not canonical.
        with_spare_bits_set(&good),
    ] {
        let step = Browser::new(&app)
            .authorize_with(
                &client,
                SCOPE,
                &[
                    ("state", "s-1"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("dpop_jkt", &bad),
                ],
            )
            .await;
        assert_eq!(step.status, 303, "{bad}: {}", step.body);
        let location = step.location.unwrap();
        assert!(location.starts_with(&client.redirect_uri), "{location}");
        let query = query_of(&location);
        assert_eq!(query["error"], "invalid_request", "{bad}");
        assert_eq!(query["state"], "s-1");
        assert_eq!(query["iss"], app.base);
    }
}

/// POST /par as `client` with its request, `extra` parameters and an optional proof.
async fn push(
    app: &TestApp,
    client: &TestClient,
    challenge: &str,
    extra: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", SCOPE),
        ("state", "pushed"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    form.extend_from_slice(extra);
    post_with(app, "/par", client, &form, proof).await
}

fn par_proof(app: &TestApp, key: &DpopKey, extra: Value) -> String {
    key.proof("POST", &app.url("/par"), now(app), extra)
}

/// Completes the pushed request in a fresh browser: the code.
async fn code_of_pushed(app: &TestApp, client: &TestClient, request_uri: &str) -> String {
    let browser = Browser::new(app);
    let mut step = browser
        .authorize(&[
            ("client_id", &client.client_id),
            ("request_uri", request_uri),
        ])
        .await;
    let mut location = step.location.clone().unwrap();
    if location.starts_with("/login") {
        step = browser
            .login(&location, "alice", crate::helpers::PASSWORD)
            .await;
        location = step.location.clone().unwrap();
    }
    if location.starts_with("/consent") {
        location = browser
            .consent(&location, "allow")
            .await
            .1
            .location
            .unwrap();
    }
    let query = query_of(&location);
    assert_eq!(query["state"], "pushed", "{location}");
    query["code"].clone()
}

async fn a_proof_at_the_par_endpoint_binds_the_code(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let client = public_client(&app).await;
    let key = DpopKey::es256();
    let (verifier, challenge) = pkce_pair();

    // A proof at PAR: the request is pushed, the answer carries a server nonce, and the code
    // the pushed request leads to is bound to the proof's key.
    let proof = par_proof(&app, &key, json!({}));
    let (status, pushed, headers) = push(&app, &client, &challenge, &[], Some(&proof)).await;
    assert_eq!(status, 201, "{pushed}");
    assert!(headers.contains_key("dpop-nonce"));
    let code = code_of_pushed(&app, &client, pushed["request_uri"].as_str().unwrap()).await;
    let form = code_form(&client, &code, &verifier);
    refused(token_with(&app, &client, &form, None).await, "no proof");
    let other = token_proof(&app, &DpopKey::es256());
    refused(
        token_with(&app, &client, &form, Some(&other)).await,
        "another key",
    );
    let (status, body, _) = token_with(&app, &client, &form, Some(&token_proof(&app, &key))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["cnf"]["jkt"],
        key.thumbprint()
    );

    // The same proof again, a proof for the token endpoint, a proof for GET: refused, nothing pushed.
    let (status, body, _) = push(&app, &client, &challenge, &[], Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "replayed"
    );
    let wrong_htu = token_proof(&app, &key);
    let (status, body, _) = push(&app, &client, &challenge, &[], Some(&wrong_htu)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "htu"
    );
    let wrong_htm = key.proof("GET", &app.url("/par"), now(&app), json!({}));
    let (status, body, _) = push(&app, &client, &challenge, &[], Some(&wrong_htm)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "htm"
    );

    // dpop_jkt beside the proof must name the proof's key.
    let other_jkt = DpopKey::es256().thumbprint();
    let proof = par_proof(&app, &key, json!({}));
    let (status, body, _) = push(
        &app,
        &client,
        &challenge,
        &[("dpop_jkt", &other_jkt)],
        Some(&proof),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let proof = par_proof(&app, &key, json!({}));
    let jkt = key.thumbprint();
    let (status, body, _) = push(
        &app,
        &client,
        &challenge,
        &[("dpop_jkt", &jkt)],
        Some(&proof),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // dpop_jkt alone, pushed without a proof, binds the code too.
    let (verifier, challenge) = pkce_pair();
    let (status, pushed, headers) =
        push(&app, &client, &challenge, &[("dpop_jkt", &jkt)], None).await;
    assert_eq!(status, 201, "{pushed}");
    assert!(!headers.contains_key("dpop-nonce"), "no proof, no nonce");
    let code = code_of_pushed(&app, &client, pushed["request_uri"].as_str().unwrap()).await;
    let form = code_form(&client, &code, &verifier);
    refused(
        token_with(&app, &client, &form, None).await,
        "dpop_jkt pushed, no proof",
    );
    let (status, _, _) = token_with(&app, &client, &form, Some(&token_proof(&app, &key))).await;
    assert_eq!(status, 200);

    // With nonces required, a proof at PAR needs one: use_dpop_nonce, then it works.
    let (strict, _) =
        spawn_app_with_alice_and(backend, &[("LATCHKEY_DPOP_NONCE", "required")]).await;
    let client = public_client(&strict).await;
    let proof = par_proof(&strict, &key, json!({}));
    let (status, body, headers) = push(&strict, &client, &challenge, &[], Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap();
    let proof = par_proof(&strict, &key, json!({"nonce": nonce}));
    let (status, body, _) = push(&strict, &client, &challenge, &[], Some(&proof)).await;
    assert_eq!(status, 201, "{body}");
}

/// Fifty redemptions of one bound code at once over two nodes, each with a fresh proof of a
/// wrong key (or none): every one refused, none spends the code. Then fifty with proofs of
/// the right key: exactly one gets tokens.
async fn racing_redemptions_of_a_bound_code_with_wrong_keys_spend_nothing(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let other = spawn_node_with(&app, settings(&[("LATCHKEY_ISSUER", &app.base)])).await;
    let client = public_client(&app).await;
    let key = DpopKey::es256();
    let jkt = key.thumbprint();
    let (code, verifier) = bound_code(&Browser::new(&app), &client, &[("dpop_jkt", &jkt)]).await;

    let race = |proofs: Vec<Option<String>>| {
        let barrier = Arc::new(tokio::sync::Barrier::new(proofs.len()));
        let racers: Vec<_> = proofs
            .into_iter()
            .enumerate()
            .map(|(i, proof)| {
                let base = if i % 2 == 0 {
                    app.base.clone()
                } else {
                    other.base.clone()
                };
                let (http, barrier) = (app.http.clone(), barrier.clone());
                let form: Vec<(String, String)> = code_form(&client, &code, &verifier)
                    .into_iter()
                    .chain([("client_id", client.client_id.as_str())])
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let mut request = http.post(format!("{base}/token")).form(&form);
                    if let Some(p) = proof {
                        request = request.header("DPoP", p);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (status, body["error"].as_str().map(str::to_owned))
                })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for r in racers {
                answers.push(r.await.unwrap());
            }
            answers
        }
    };

    let wrong: Vec<Option<String>> = (0..50)
        .map(|i| (i % 5 != 0).then(|| token_proof(&app, &DpopKey::es256())))
        .collect();
    let answers = race(wrong).await;
    assert!(
        answers
            .iter()
            .all(|(s, e)| *s == 400 && e.as_deref() == Some("invalid_grant")),
        "{answers:?}"
    );
    let right: Vec<Option<String>> = (0..50).map(|_| Some(token_proof(&app, &key))).collect();
    let answers = race(right).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "exactly one redemption with the right key: {answers:?}"
    );
}
