//! `oidcc-basic-certification-test-plan` (Basic OP: `response_type=code`, static client), one
//! test per module, in the plan's order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use super::rp::{Nonce, check_token_response, fetch_jwks, validate_id_token};
use super::{
    NONCE, STANDARD_SCOPES, STATE, UserinfoCall, assert_code_response, assert_error_page,
    assert_error_redirect, auth_params, authorize, authorize_with_pkce, battery, check_scopes,
    complete_flow, create_alice, drive, finish_flow, redeem, refresh, second_client,
    unsigned_request_object, userinfo, userinfo_of, userinfo_status, with_param, without_param,
};
use crate::helpers::{Backend, Browser, TestClient, pkce_pair, spawn_app};

/// oidcc-server (OP-Response-code): the happy path of the code flow with `client_secret_basic`.
/// The authorization response carries the code, the unchanged `state` and `iss`; the token
/// response is a no-store Bearer response with an access token and an ID token that passes
/// every relying-party check (signature from `jwks_uri`, `iss`, `aud`, `azp`, `exp`, `iat`,
/// `nonce`, `auth_time`, `at_hash`); userinfo answers for the same `sub`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_server() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    assert!(done.flow.login_shown && done.flow.consent_shown);
    assert_eq!(done.tokens["scope"], "openid");
    assert!(done.id.get("c_hash").is_none() || done.id["c_hash"].is_string());
    userinfo_of(&app, &done).await;
}

/// oidcc-server-client-secret-post (OP-ClientAuth-SecretPost): the same happy path with a
/// client registered for `client_secret_post`, authenticating with `client_id` and
/// `client_secret` in the token request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_server_client_secret_post() {
    let app = spawn_app(Backend::Postgres).await;
    create_alice(&app).await;
    let registration = app
        .create_client(json!({
            "client_name": "Secret Post Client",
            "redirect_uris": ["https://post.example.test/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "openid email",
        }))
        .await;
    assert_eq!(
        registration["token_endpoint_auth_method"],
        "client_secret_post"
    );
    let client = TestClient::from_registration(&registration);
    let secret = client.secret.clone().unwrap();
    let browser = Browser::new(&app);
    let flow = authorize(
        &browser,
        &auth_params(&client, "openid email", &[]),
        &client.redirect_uri,
    )
    .await;
    assert_code_response(&app, &flow.query, Some(STATE));
    let response = app
        .http
        .post(app.discovery().await["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", flow.query["code"].as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let tokens: Value = response.json().await.unwrap();
    check_token_response(&tokens, &headers);
    validate_id_token(
        &app,
        tokens["id_token"].as_str().unwrap(),
        &client.client_id,
        Nonce::Is(NONCE),
        tokens["access_token"].as_str(),
    )
    .await;
}

/// oidcc-response-type-missing (OP-Response-Missing): an authorization request without
/// `response_type` must fail; the error goes back to the (valid) redirect URI as
/// `invalid_request` (or `unsupported_response_type`) with `state`, never as a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_response_type_missing() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = without_param(auth_params(&client, "openid", &[]), "response_type");
    let step = browser.authorize(&params).await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// oidcc-idtoken-signature (OP-IDToken-Signature, OP-IDToken-kid): the ID token is signed with
/// an advertised algorithm, names its key with `kid`, and verifies against that key from
/// `jwks_uri`; a changed payload no longer verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_idtoken_signature() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    // The validator really checks the signature: a forged payload fails.
    let id_token = done.id_token();
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut forged = done.id.clone();
    forged["sub"] = json!("somebody-else");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let forged = parts.join(".");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let (_, jwks) = fetch_jwks(&app).await;
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client.client_id.as_str()]);
    validation.validate_exp = false;
    assert!(jsonwebtoken::decode::<Value>(id_token, &key, &validation).is_ok());
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());
}

/// oidcc-idtoken-unsigned (OP-IDToken-none): a client asking for unsigned ID tokens. Latchkey
/// does not issue them: discovery does not advertise `none`, and registering
/// `id_token_signed_response_alg: none` is refused with `invalid_client_metadata` (so no
/// unsigned ID token can ever be requested).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_idtoken_unsigned() {
    let app = spawn_app(Backend::Postgres).await;
    let discovery = app.discovery().await;
    let algs = discovery["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        !algs
            .iter()
            .any(|a| a.as_str().unwrap().eq_ignore_ascii_case("none"))
    );
    for alg in ["none", "None", "HS256"] {
        let (status, body) = app
            .admin(
                reqwest::Method::POST,
                "/admin/clients",
                Some(&json!({
                    "redirect_uris": ["https://app.example.test/callback"],
                    "scope": "openid",
                    "id_token_signed_response_alg": alg,
                })),
            )
            .await;
        assert_eq!(status, 400, "{alg}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{alg}");
    }
}

/// oidcc-userinfo-get (OP-UserInfo-Endpoint): userinfo with GET and the access token in the
/// `Authorization: Bearer` header answers JSON for the ID token's `sub`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_get() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::Get).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-userinfo-post-header (OP-UserInfo-Header): userinfo with POST and the access token in
/// the `Authorization: Bearer` header (no body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_post_header() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::PostHeader).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-userinfo-post-body (OP-UserInfo-Body): userinfo with POST and the access token as the
/// `access_token` form parameter (RFC 6750 §2.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_userinfo_post_body() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let (status, info) = userinfo(&app, done.access_token(), UserinfoCall::PostBody).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], done.id["sub"]);
    assert_eq!(info["email"], "alice@example.test");
}

/// oidcc-ensure-request-without-nonce-succeeds-for-code-flow (OP-nonce-NoReq-code): `nonce` is
/// optional in the code flow; the request succeeds and the ID token then has no `nonce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = without_param(auth_params(&client, "openid", &[]), "nonce");
    let flow = authorize(&browser, &params, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Absent).await;
}

/// oidcc-scope-profile (OP-scope-profile): `openid profile` releases the profile claims at
/// userinfo, and nothing of the other scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_profile() {
    check_scopes(&["profile"]).await;
}

/// oidcc-scope-email (OP-scope-email): `openid email` releases `email` and `email_verified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_email() {
    check_scopes(&["email"]).await;
}

/// oidcc-scope-address (OP-scope-address): `openid address` releases the `address` object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_address() {
    check_scopes(&["address"]).await;
}

/// oidcc-scope-phone (OP-scope-phone): `openid phone` releases `phone_number` and
/// `phone_number_verified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_phone() {
    check_scopes(&["phone"]).await;
}

/// oidcc-scope-all (OP-scope-All): all four standard scopes at once release all their claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_scope_all() {
    check_scopes(&STANDARD_SCOPES).await;
}

/// oidcc-ensure-other-scope-order-succeeds: scope order does not matter (RFC 6749 §3.3):
/// `email openid` works like `openid email`, and the second request reuses the consent given
/// to the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid email", &[]).await;
    let second = complete_flow(&app, &browser, &client, "email openid", &[]).await;
    assert!(
        !second.flow.consent_shown,
        "same scopes, other order: no new consent"
    );
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(
        userinfo_of(&app, &second).await["email"],
        "alice@example.test"
    );
}

/// oidcc-display-page (OP-display-page): `display=page` is accepted and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_display_page() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("display", "page")]).await;
    assert!(done.flow.login_shown);
}

/// oidcc-display-popup (OP-display-popup): `display=popup` is accepted and the flow
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_display_popup() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("display", "popup")]).await;
    assert!(done.flow.login_shown);
}

/// oidcc-prompt-login (OP-prompt-login): with a session, a second request with `prompt=login`
/// shows the login page again, and the new ID token's `auth_time` differs from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_login() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(5);
    let second = complete_flow(&app, &browser, &client, "openid", &[("prompt", "login")]).await;
    assert!(second.flow.login_shown, "prompt=login asks to log in again");
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_ne!(
        second.id["auth_time"], first.id["auth_time"],
        "a new authentication"
    );
}

/// oidcc-prompt-none-not-logged-in (OP-prompt-none-NotLoggedIn): `prompt=none` without a
/// session must not show a page; it answers `login_required` at the redirect URI (with
/// `state`), never a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_none_not_logged_in() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("prompt", "none")]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "login_required");
}

/// oidcc-prompt-none-logged-in (OP-prompt-none-LoggedIn): after a first login, `prompt=none`
/// succeeds at once without any page, for the same `sub` and the same `auth_time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_prompt_none_logged_in() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(3);
    let second = complete_flow(&app, &browser, &client, "openid", &[("prompt", "none")]).await;
    assert!(!second.flow.login_shown && !second.flow.consent_shown);
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
}

/// oidcc-max-age-1 (OP-Req-max_age=1): two seconds after a login, a request with `max_age=1`
/// must make the user log in again, and the second ID token carries an `auth_time` that is
/// later than the first and recent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_max_age_1() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(2);
    let second = complete_flow(&app, &browser, &client, "openid", &[("max_age", "1")]).await;
    assert!(second.flow.login_shown, "the session is older than max_age");
    let first_time = first.id["auth_time"].as_i64().unwrap();
    let second_time = second.id["auth_time"].as_i64().unwrap();
    assert!(
        second_time > first_time,
        "auth_time of the second login is later"
    );
    assert!(
        (second_time - app.app.now()).abs() <= 2,
        "auth_time is recent"
    );
}

/// oidcc-max-age-10000 (OP-Req-max_age=10000): a request with `max_age=10000` shortly after a
/// login reuses the session (no login page), and the ID token carries the original
/// `auth_time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_max_age_10000() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    app.clock.advance(5);
    let second = complete_flow(&app, &browser, &client, "openid", &[("max_age", "10000")]).await;
    assert!(!second.flow.login_shown);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
}

/// oidcc-ensure-request-with-unknown-parameter-succeeds (OP-Req-NotUnderstood): parameters the
/// server does not understand are ignored (RFC 6749 §3.1), not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    complete_flow(
        &app,
        &browser,
        &client,
        "openid",
        &[("extra_parameter_the_server_does_not_know", "some value")],
    )
    .await;
}

/// oidcc-id-token-hint (OP-Req-id_token_hint): a second request with `prompt=none` and the
/// first ID token as `id_token_hint` succeeds without interaction, with the same `sub` and
/// `auth_time`. Also: an ID token that has since expired is still a valid hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_id_token_hint() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let first = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let hint = first.id_token().to_owned();
    let extra = [("prompt", "none"), ("id_token_hint", hint.as_str())];
    let second = complete_flow(&app, &browser, &client, "openid", &extra).await;
    assert!(!second.flow.login_shown && !second.flow.consent_shown);
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
    // The hint has expired, the session has not.
    let lifetime = first.id["exp"].as_i64().unwrap() - app.app.now();
    app.clock.advance(lifetime + 60);
    let third = complete_flow(&app, &browser, &client, "openid", &extra).await;
    assert_eq!(third.id["sub"], first.id["sub"]);
}

/// oidcc-login-hint (OP-Req-login_hint): `login_hint` is accepted; the login page offers the
/// hinted user name, and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_login_hint() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = auth_params(&client, "openid", &[("login_hint", "alice")]);
    let step = browser.authorize(&params).await;
    let location = step.location.clone().unwrap();
    assert!(location.starts_with("/login"), "{location}");
    let page = browser.get(&location).await;
    assert!(
        page.body.contains(r#"name="username""#) && page.body.contains(r#"value="alice""#),
        "the login page prefills the hint"
    );
    let flow = drive(&browser, step, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-ui-locales (OP-Req-ui_locales): `ui_locales` is accepted; Latchkey renders its pages
/// in the first supported language of the list (here German), and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ui_locales() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = auth_params(&client, "openid", &[("ui_locales", "fr-CA de en")]);
    let step = browser.authorize(&params).await;
    let location = step.location.clone().unwrap();
    let page = browser.get(&location).await;
    assert!(
        page.body.contains(r#"<html lang="de">"#),
        "German login page"
    );
    let flow = drive(&browser, step, &client.redirect_uri).await;
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-claims-locales (OP-Req-claims_locales): `claims_locales` is accepted (Latchkey holds
/// one value per claim, so it has nothing to choose) and the flow completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_claims_locales() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(
        &app,
        &browser,
        &client,
        "openid profile",
        &[("claims_locales", "de fr")],
    )
    .await;
    assert_eq!(userinfo_of(&app, &done).await["name"], "Alice Example");
}

/// oidcc-ensure-request-with-acr-values-succeeds (OP-Req-acr_values): `acr_values` must not
/// make the request fail (Core §15.1). The suite only warns when the ID token's `acr` is not
/// one of the requested values; Latchkey answers `acr` "0" (no assurance claimed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[("acr_values", "1 2")]).await;
    if let Some(acr) = done.id.get("acr") {
        assert!(acr.is_string(), "acr is a string: {acr}");
    }
}

/// oidcc-codereuse (OP-OAuth-2nd): a code can be redeemed once; the second attempt fails with
/// `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_codereuse() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    let (status, body) = redeem(&app, &client, &done.flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-codereuse-30seconds (OP-OAuth-2nd-30s, OP-OAuth-2nd-Revokes): a code redeemed again 30
/// seconds later (still within its lifetime) fails with `invalid_grant`, and the tokens issued
/// from it are revoked (RFC 6749 §4.1.2): the access token no longer works at userinfo, the
/// refresh token no longer refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_codereuse_30seconds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let done = complete_flow(&app, &browser, &client, "openid offline_access", &[]).await;
    assert_eq!(userinfo_status(&app, done.access_token()).await, 200);
    app.clock.advance(30);
    let (status, body) = redeem(&app, &client, &done.flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        userinfo_status(&app, done.access_token()).await,
        401,
        "revoked"
    );
    let refresh_token = done.tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-ensure-registered-redirect-uri (OP-redirect_uri-NotReg): an unregistered redirect URI
/// gets an error page, and the browser is never sent to it (nor anywhere else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_registered_redirect_uri() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let bad = "https://app.example.test/callback-not-registered-a7b3";
    let params = with_param(auth_params(&client, "openid", &[]), "redirect_uri", bad);
    let step = browser.authorize(&params).await;
    assert_error_page(&step, "unregistered redirect_uri");
}

/// oidcc-ensure-post-request-succeeds: the authorization request sent as an
/// `application/x-www-form-urlencoded` POST (Core §3.1.2.1) works like GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_post_request_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let endpoint = app.discovery().await["authorization_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = endpoint.strip_prefix(&app.base).unwrap().to_owned();
    let step = browser
        .post_form(&path, &auth_params(&client, "openid email", &[]))
        .await;
    let flow = drive(&browser, step, &client.redirect_uri).await;
    assert!(flow.login_shown && flow.consent_shown);
    finish_flow(&app, &client, flow, None, Nonce::Is(NONCE)).await;
}

/// oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported
/// (OP-request_uri-Unsigned): a `request_uri` must either work or be refused with
/// `request_uri_not_supported` (Core §6.2); Latchkey advertises
/// `request_uri_parameter_supported: false` and refuses it at the redirect URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    let (app, client) = battery().await;
    assert_eq!(
        app.discovery().await["request_uri_parameter_supported"],
        false
    );
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request_uri", "https://app.example.test/request.jwt")],
        ))
        .await;
    assert_error_redirect(
        &app,
        &step,
        &client.redirect_uri,
        "request_uri_not_supported",
    );
}

/// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported
/// (OP-request-Unsigned): an unsigned request object (`alg: none`) passed as `request` must
/// either work or be refused (Core §6.1). Latchkey supports signed request objects
/// (`request_parameter_supported: true`, RFC 9101) and refuses `alg: none` with
/// `invalid_request_object` at the redirect URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["request_parameter_supported"], true);
    let object = unsigned_request_object(&json!({
        "iss": client.client_id,
        "aud": app.base,
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": STATE,
        "nonce": NONCE,
    }));
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request", object.as_str())],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request_object");
}

/// oidcc-claims-essential (OP-claims-essential): a `claims` request for `name` as an essential
/// userinfo claim must not make the request fail. Latchkey advertises
/// `claims_parameter_supported: false` and ignores the parameter: the flow succeeds, userinfo
/// releases by scope only (no `name` without `profile`), and the ID token carries no `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_claims_essential() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["claims_parameter_supported"], false);
    let browser = Browser::new(&app);
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let done = complete_flow(&app, &browser, &client, "openid", &[("claims", claims)]).await;
    assert!(done.id.get("name").is_none(), "no name in the ID token");
    let info = userinfo_of(&app, &done).await;
    assert!(
        info.get("name").is_none(),
        "the claims parameter is ignored"
    );
}

/// oidcc-ensure-request-object-with-redirect-uri: a request object carrying the registered
/// redirect URI while the query carries another one. The query's unregistered redirect URI
/// gets an error page (never a redirect to it), and with a registered one the unsigned
/// request object is refused with `invalid_request_object`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let (app, client) = battery().await;
    assert_eq!(app.discovery().await["request_parameter_supported"], true);
    let object = unsigned_request_object(&json!({
        "iss": client.client_id,
        "aud": app.base,
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": STATE,
        "nonce": NONCE,
    }));
    let browser = Browser::new(&app);
    let invalid = "https://app.example.test/invalid-redirect-in-query";
    let params = with_param(
        auth_params(&client, "openid", &[("request", object.as_str())]),
        "redirect_uri",
        invalid,
    );
    let step = browser.authorize(&params).await;
    assert_error_page(&step, "unregistered redirect_uri next to a request object");
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[("request", object.as_str())],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request_object");
}

/// oidcc-refresh-token: with `offline_access` (and `prompt=consent`, Core §11) the token
/// response carries a refresh token of RFC 6749 §A.17 characters. Refreshing rotates it and
/// returns a new access token and an ID token that follows Core §12.2 (same `iss`, `sub`,
/// `aud`, `azp` and `auth_time`, a new `iat`, `at_hash` of the new access token); userinfo
/// works with the new access token. A refresh token works only for its own client
/// (`invalid_grant` for another), and the rotated-out one is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_refresh_token() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let discovery = app.discovery().await;
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("refresh_token"))
    );
    let scope = "openid email offline_access";
    let first = complete_flow(&app, &browser, &client, scope, &[("prompt", "consent")]).await;
    let refresh_token = first.tokens["refresh_token"]
        .as_str()
        .expect("a refresh token for offline_access");
    assert!(
        refresh_token.chars().all(|c| (' '..='~').contains(&c)),
        "RFC 6749 §A.17 characters"
    );
    app.clock.advance(10);
    let (status, refreshed) = refresh(&app, &client, refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    let new_refresh = refreshed["refresh_token"].as_str().expect("rotated");
    assert_ne!(new_refresh, refresh_token);
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(new_access, first.access_token());
    let id = validate_id_token(
        &app,
        refreshed["id_token"]
            .as_str()
            .expect("a refreshed ID token"),
        &client.client_id,
        Nonce::AbsentOr(NONCE),
        Some(new_access),
    )
    .await;
    for claim in ["iss", "sub", "aud", "azp", "auth_time"] {
        assert_eq!(
            id[claim], first.id[claim],
            "{claim} of the refreshed ID token"
        );
    }
    assert!(id["iat"].as_i64() > first.id["iat"].as_i64(), "a new iat");
    let (status, info) = userinfo(&app, new_access, UserinfoCall::Get).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], first.id["sub"]);

    // The rotated-out refresh token is dead (once the reuse grace, in which a retry of it
    // would get its successor again, has passed).
    app.clock.advance(11);
    let (status, body) = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A second client's refresh token does not work for the first client.
    let second = second_client(&app).await;
    let browser2 = Browser::new(&app);
    let other = complete_flow(&app, &browser2, &second, scope, &[("prompt", "consent")]).await;
    let other_refresh = other.tokens["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, &client, other_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// oidcc-ensure-request-with-valid-pkce-succeeds: a request with a valid S256 PKCE challenge
/// succeeds and the code is redeemed with its verifier (RFC 7636 §4.5), also for a
/// confidential client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    finish_flow(&app, &client, flow, Some(&verifier), Nonce::Is(NONCE)).await;
}
