//! What the code buys: the token response, access and ID tokens (claims, `at_hash`, the
//! client's algorithm), codes bound to their verifier, redirect URI, client and lifetime and
//! revoking their tokens when reused, and userinfo as RFC 6750 has it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, TestClient, code_form, fetch_json, jwt_part, pkce_pair, redeem, spawn_app,
    spawn_app_with_alice, userinfo_status,
};

both_backends!(
    full_flow_issues_code_tokens_and_userinfo,
    code_reuse_fails_and_revokes_its_tokens,
    code_is_bound_to_verifier_redirect_uri_client_and_lifetime,
    id_token_uses_the_client_registered_algorithm,
    userinfo_follows_rfc6750,
);

async fn full_flow_issues_code_tokens_and_userinfo(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(
            &client,
            "openid profile email offline_access",
            Some(&challenge),
            &[],
        )
        .await;
    assert_eq!(query["state"], "state-123");
    assert_eq!(query["iss"], app.base);
    let code = &query["code"];
    assert!(code.len() >= 43, "code carries 256 bits");

    let (status, body, headers) = app
        .token(&client, &code_form(&client, code, Some(&verifier)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].is_string());

    let access = body["access_token"].as_str().unwrap();
    let header = jwt_part(access, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = jwt_part(access, 1);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(claims.get(claim).is_some(), "access token lacks {claim}");
    }
    assert_eq!(claims["aud"], client.client_id.as_str());

    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(jwt_part(id_token, 0)["alg"], "RS256");
    let id = jwt_part(id_token, 1);
    assert_eq!(id["iss"], app.base.as_str());
    assert_eq!(id["aud"], client.client_id.as_str());
    assert_eq!(id["azp"], client.client_id.as_str());
    assert_eq!(id["nonce"], "nonce-456");
    assert!(id["sid"].is_string() && id["auth_time"].is_i64());
    assert_eq!(id["sub"], claims["sub"]);
    let expected_at_hash = {
        use sha2::Digest;
        URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access.as_bytes())[..16])
    };
    assert_eq!(id["at_hash"], expected_at_hash.as_str());

    let info = fetch_json(app.http.get(app.url("/userinfo")).bearer_auth(access)).await;
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "alice Example");
    assert!(
        info.get("phone_number").is_none(),
        "phone scope was not granted"
    );
}

async fn code_reuse_fails_and_revokes_its_tokens(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let q = browser
        .code_flow(&client, "openid offline_access", None, &[])
        .await;
    let (status, first) = redeem(&app, &client, &q["code"], None).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, 200);
    let (status, second) = redeem(&app, &client, &q["code"], None).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&app, access).await,
        401,
        "access token from the reused code is revoked"
    );
    let (status, refreshed, _) = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, 400, "{refreshed}");
    assert_eq!(refreshed["error"], "invalid_grant");
}

async fn code_is_bound_to_verifier_redirect_uri_client_and_lifetime(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let other = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let (other_verifier, _) = pkce_pair();

    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    assert_eq!(
        redeem(&app, &client, &q["code"], Some(&other_verifier))
            .await
            .1["error"],
        "invalid_grant"
    );
    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    assert_eq!(
        redeem(&app, &client, &q["code"], None).await.1["error"],
        "invalid_grant"
    );
    let q = browser.code_flow(&client, "openid", None, &[]).await;
    assert_eq!(
        redeem(&app, &client, &q["code"], Some(&verifier)).await.1["error"],
        "invalid_grant",
        "no challenge, no verifier"
    );
    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    let (status, body, _) = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", "https://app.example.test/other"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    let (status, body, _) = app
        .token(
            &other,
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "bound to its client"
    );
    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    app.clock.advance(61);
    assert_eq!(
        redeem(&app, &client, &q["code"], Some(&verifier)).await.1["error"],
        "invalid_grant",
        "expired"
    );
    app.clock.advance(-61);
    let q = browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    assert_eq!(
        redeem(&app, &client, &q["code"], Some(&verifier)).await.0,
        200
    );
    assert_eq!(
        redeem(&app, &client, "garbage", Some(&verifier)).await.1["error"],
        "invalid_grant"
    );
}

async fn id_token_uses_the_client_registered_algorithm(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    for (alg, hash_len) in [("ES256", 22), ("EdDSA", 43)] {
        let client = TestClient::from_registration(
            &app.create_client(json!({
                "redirect_uris": ["https://app.example.test/callback"],
                "scope": "openid",
                "id_token_signed_response_alg": alg,
            }))
            .await,
        );
        let browser = Browser::new(&app);
        let q = browser.code_flow(&client, "openid", None, &[]).await;
        let (status, body) = redeem(&app, &client, &q["code"], None).await;
        assert_eq!(status, 200);
        let id = body["id_token"].as_str().unwrap();
        assert_eq!(jwt_part(id, 0)["alg"], alg);
        assert_eq!(
            jwt_part(id, 1)["at_hash"].as_str().unwrap().len(),
            hash_len,
            "{alg}"
        );
    }
}

async fn userinfo_follows_rfc6750(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let q = browser.code_flow(&client, "openid phone", None, &[]).await;
    let access = redeem(&app, &client, &q["code"], None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = fetch_json(
        app.http
            .post(app.url("/userinfo"))
            .form(&[("access_token", &access)]),
    )
    .await;
    assert_eq!(post["phone_number"], "+1 555 0100");
    assert!(post.get("email").is_none());
    let both = app
        .http
        .post(app.url("/userinfo"))
        .bearer_auth(&access)
        .form(&[("access_token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    // A token in the query string is never accepted (RFC 9700 §4.3.2; RFC 6750 §2.3 is a
    // MAY we decline): it would end up in logs and Referer headers.
    let query = app
        .http
        .get(app.url("/userinfo"))
        .query(&[("access_token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 401);
    let none = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let forged = format!("{}x", &access[..access.len() - 1]);
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // Expired.
    app.clock.advance(3601);
    assert_eq!(userinfo_status(&app, &access).await, 401);
    app.clock.advance(-3601);
    // Without openid: 403 insufficient_scope.
    let (_, cc, _) = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(cc["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // An ID token is not an access token.
    let q = browser.code_flow(&client, "openid", None, &[]).await;
    let id_token = redeem(&app, &client, &q["code"], None).await.1["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(userinfo_status(&app, &id_token).await, 401);
}
