//! The PKCE, response type and RFC 9207 checks of the FAPI 2.0 Security Profile plan
//! (`fapi2-security-profile-final-*`), on Latchkey's front channel (there is no PAR endpoint).

use super::{
    assert_error_redirect, auth_params, authorize_with_pkce, battery, complete_flow, public_client,
    redeem, with_param,
};
use crate::helpers::{Backend, Browser, PASSWORD, pkce_pair, query_of, spawn_app};

/// fapi2-security-profile-final-ensure-pkce-code-verifier-required: a code issued for a PKCE
/// challenge cannot be redeemed without the `code_verifier` (`invalid_grant`, RFC 7636 §4.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_pkce_code_verifier_required() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    let (status, body) = redeem(&app, &client, &flow.query["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// fapi2-security-profile-final-incorrect-pkce-code-verifier-rejected: a wrong
/// `code_verifier` is refused with `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_incorrect_pkce_code_verifier_rejected() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let (wrong, _) = pkce_pair();
    let flow = authorize_with_pkce(&browser, &client, &challenge).await;
    let (status, body) = redeem(&app, &client, &flow.query["code"], Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// fapi2-security-profile-final-par-plain-pkce-rejected (sent to the authorization endpoint,
/// as Latchkey has no PAR endpoint): `code_challenge_method=plain` is refused with
/// `invalid_request`, with `state` and `iss`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_par_plain_pkce_rejected() {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let (verifier, _) = pkce_pair();
    let step = browser
        .authorize(&auth_params(
            &client,
            "openid",
            &[
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
        ))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// fapi2-security-profile-final-par-ensure-pkce-required (on the authorization endpoint):
/// FAPI 2.0 requires PKCE of every client; Latchkey requires it of public clients (and honours
/// it for confidential ones), so a public client's request without `code_challenge` is
/// refused with `invalid_request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_par_ensure_pkce_required() {
    let app = spawn_app(Backend::Postgres).await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize(&auth_params(&client, "openid", &[]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_request");
}

/// An authorization request like the battery's own but with `response_type` replaced is
/// refused with `unsupported_response_type` at the redirect URI, with nothing in a fragment.
async fn refuses_response_type(response_type: &'static str) {
    let (app, client) = battery().await;
    let browser = Browser::new(&app);
    let params = with_param(
        auth_params(&client, "openid", &[]),
        "response_type",
        response_type,
    );
    let step = browser.authorize(&params).await;
    assert_error_redirect(
        &app,
        &step,
        &client.redirect_uri,
        "unsupported_response_type",
    );
    assert!(
        !step.location.unwrap().contains('#'),
        "nothing in a fragment"
    );
}

/// fapi2-security-profile-final-ensure-response-type-token-fails: `response_type=token`
/// (implicit) is refused with `unsupported_response_type`; no token in any fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_response_type_token_fails() {
    refuses_response_type("token").await;
}

/// fapi2-security-profile-final-ensure-response-type-code-idtoken-fails: the hybrid
/// `response_type=code id_token` is refused with `unsupported_response_type`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_security_profile_final_ensure_response_type_code_idtoken_fails() {
    refuses_response_type("code id_token").await;
}

/// RFC 9207 `iss` (no module of its own: the FAPI 2.0 plan checks it on every authorization
/// response, "ValidateIssInAuthorizationResponse"): discovery advertises
/// `authorization_response_iss_parameter_supported`, and every response at the redirect URI,
/// success or error (`login_required`, `access_denied`, `invalid_scope`), carries exactly one
/// `iss` equal to the issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9207_iss_in_every_authorization_response() {
    let (app, client) = battery().await;
    assert_eq!(
        app.discovery().await["authorization_response_iss_parameter_supported"],
        true
    );
    let iss_values = |location: &str| -> Vec<String> {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .filter(|(k, _)| k == "iss")
            .map(|(_, v)| v.into_owned())
            .collect()
    };
    let browser = Browser::new(&app);
    // login_required
    let step = browser
        .authorize(&auth_params(&client, "openid", &[("prompt", "none")]))
        .await;
    assert_eq!(
        iss_values(step.location.as_deref().unwrap()),
        [app.base.as_str()]
    );
    // access_denied
    let step = browser
        .authorize(&auth_params(&client, "openid", &[]))
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let (_, denied) = browser.consent(&step.location.unwrap(), "deny").await;
    let location = denied.location.unwrap();
    assert_eq!(query_of(&location)["error"], "access_denied");
    assert_eq!(iss_values(&location), [app.base.as_str()]);
    // invalid_scope
    let step = browser
        .authorize(&auth_params(&client, "openid not-registered", &[]))
        .await;
    assert_error_redirect(&app, &step, &client.redirect_uri, "invalid_scope");
    assert_eq!(
        iss_values(step.location.as_deref().unwrap()),
        [app.base.as_str()]
    );
    // success
    let done = complete_flow(&app, &browser, &client, "openid", &[]).await;
    assert_eq!(iss_values(&done.flow.location), [app.base.as_str()]);
}
