//! The authorization code flow with PKCE: authorization endpoint rules, login and consent
//! pages, sessions, codes, ID tokens and userinfo.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, TestApp, TestClient, authorize_params, code_form, fetch_json,
    hidden_field, jwt_part, pkce_pair, pkce_params, query_of, redeem, spawn_app,
    spawn_app_with_alice, userinfo_status,
};

/// A native public client: PKCE required, a loopback and a private-use-scheme redirect URI.
async fn public_client(app: &TestApp) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Native App",
            "redirect_uris": ["http://127.0.0.1:7777/callback", "com.example.app:/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        }))
        .await,
    )
}

both_backends!(
    full_flow_issues_code_tokens_and_userinfo,
    a_second_request_with_the_same_scopes_skips_consent,
    consent_asks_only_for_scopes_not_yet_granted,
    unknown_client_or_redirect_uri_gets_a_page_not_a_redirect,
    loopback_redirect_uris_may_change_port,
    later_errors_are_redirected_with_state_and_iss,
    public_clients_need_s256_pkce,
    prompt_none_without_session_or_consent_fails,
    prompt_login_and_max_age_force_a_new_login,
    id_token_hint_for_another_user_with_prompt_none_is_login_required,
    denying_consent_returns_access_denied,
    allowing_consent_needs_a_live_session_of_an_enabled_user,
    parameters_sent_twice_are_refused,
    login_failures_are_generic_and_sessions_rotate,
    forms_need_their_csrf_token_and_browser,
    pending_interactions_are_sealed_expire_and_cannot_be_altered,
    pages_resist_framing_and_referrer_leaks,
    code_reuse_fails_and_revokes_its_tokens,
    code_is_bound_to_verifier_redirect_uri_client_and_lifetime,
    id_token_uses_the_client_registered_algorithm,
    userinfo_follows_rfc6750,
    first_party_clients_skip_consent,
    native_public_clients_are_asked_for_consent_every_time,
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

async fn a_second_request_with_the_same_scopes_skips_consent(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    browser
        .code_flow(&client, "openid email", Some(&challenge), &[])
        .await;
    let step = browser
        .authorize_with(&client, "openid email", &[("state", "again")])
        .await;
    assert_eq!(step.status, 303);
    let location = step.location.unwrap();
    assert!(
        location.starts_with(&client.redirect_uri),
        "went to {location}"
    );
    assert!(query_of(&location).contains_key("code"));
}

async fn consent_asks_only_for_scopes_not_yet_granted(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid email", None, &[]).await;
    let step = browser
        .authorize_for(&client, "openid email phone offline_access")
        .await;
    let location = step.location.unwrap();
    assert!(location.starts_with("/consent"), "{location}");
    let page = browser.get(&location).await;
    assert!(page.body.contains("Test Web App"));
    assert!(page.body.contains("your phone number"));
    assert!(
        page.body
            .contains("stay signed in: access when you are not present")
    );
    assert!(
        !page.body.contains("your email address"),
        "email was granted before"
    );
    assert!(page.body.contains(r#"name="decision" value="allow""#));
    assert!(page.body.contains(r#"name="decision" value="deny""#));
    // prompt=consent always asks, even when everything was granted.
    let step = browser
        .authorize_with(&client, "openid email", &[("prompt", "consent")])
        .await;
    assert!(step.location.unwrap().starts_with("/consent"));
}

async fn unknown_client_or_redirect_uri_gets_a_page_not_a_redirect(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("redirect_uri", &client.redirect_uri),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", "https://app.example.test/callback/extra"),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", "https://app.example.test/callback?x=1"),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", "https://APP.example.test/callback"),
            ("scope", "openid"),
        ],
        // Even an invalid response_type is shown, not redirected, when the URI is wrong.
        vec![
            ("response_type", "token"),
            ("client_id", &client.client_id),
            ("redirect_uri", "https://evil.example/cb"),
        ],
    ];
    for params in cases {
        let step = browser.authorize(&params).await;
        assert_eq!(step.status, 400, "{params:?}");
        assert!(step.location.is_none(), "{params:?} must not redirect");
        assert!(
            step.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

async fn loopback_redirect_uris_may_change_port(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    for (uri, ok) in [
        ("http://127.0.0.1:45678/callback", true),
        ("http://127.0.0.1/callback", true),
        ("http://127.0.0.1:45678/other", false),
        ("http://localhost:7777/callback", false),
    ] {
        let step = browser
            .authorize(&[
                ("response_type", "code"),
                ("client_id", &client.client_id),
                ("redirect_uri", uri),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .await;
        assert_eq!(step.status == 303, ok, "{uri}: {}", step.status);
    }
}

async fn later_errors_are_redirected_with_state_and_iss(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let cases = [
        (
            vec![("response_type", "token"), ("scope", "openid")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "code id_token"), ("scope", "openid")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid")], "invalid_request"),
        (
            vec![("response_type", "code"), ("scope", "openid admin")],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none login"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("max_age", "soon"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("id_token_hint", "not.a.jwt"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", "eyJ"),
            ],
            "request_not_supported",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("resource", "https://api.example/"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("response_mode", "fragment"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("response_mode", "web_message"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, expected) in cases {
        let mut params = vec![
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("state", "s-1"),
        ];
        params.extend(extra.iter().cloned());
        let step = browser.authorize(&params).await;
        assert_eq!(step.status, 303, "{extra:?}: {}", step.body);
        let location = step.location.unwrap();
        assert!(location.starts_with(&client.redirect_uri));
        let q = query_of(&location);
        assert_eq!(q["error"], expected, "{extra:?}");
        assert!(q.contains_key("error_description"));
        assert_eq!(q["state"], "s-1");
        assert_eq!(q["iss"], app.base);
    }
    // Unknown parameters are ignored.
    let (_, challenge) = pkce_pair();
    browser
        .code_flow(
            &client,
            "openid",
            Some(&challenge),
            &[("unknown_thing", "x"), ("display", "page")],
        )
        .await;
}

async fn public_clients_need_s256_pkce(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "x")])
        .await;
    let q = query_of(&step.location.unwrap());
    assert_eq!(q["error"], "invalid_request");
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(&client, "openid offline_access", Some(&challenge), &[])
        .await;
    let (status, body, _) = app
        .token(
            &client,
            &code_form(&client, &query["code"], Some(&verifier)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
}

async fn prompt_none_without_session_or_consent_fails(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let params = |scope: &'static str| {
        authorize_params(&client, scope, &[("prompt", "none"), ("state", "pn")])
    };
    let step = browser.authorize(&params("openid")).await;
    let q = query_of(&step.location.unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "pn");
    browser.code_flow(&client, "openid", None, &[]).await;
    let step = browser.authorize(&params("openid")).await;
    assert!(
        query_of(&step.location.unwrap()).contains_key("code"),
        "session and grant: silent success"
    );
    let step = browser.authorize(&params("openid email")).await;
    assert_eq!(
        query_of(&step.location.unwrap())["error"],
        "consent_required"
    );
}

async fn prompt_login_and_max_age_force_a_new_login(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid", None, &[]).await;
    let base = authorize_params(&client, "openid", &[]);
    let mut with_prompt = base.to_vec();
    with_prompt.push(("prompt", "login"));
    let step = browser.authorize(&with_prompt).await;
    assert!(step.location.unwrap().starts_with("/login"));

    app.clock.advance(120);
    let mut with_max_age = base.to_vec();
    with_max_age.push(("max_age", "60"));
    let step = browser.authorize(&with_max_age).await;
    let location = step.location.unwrap();
    assert!(
        location.starts_with("/login"),
        "session older than max_age: {location}"
    );
    let step = browser.login(&location, "alice", PASSWORD).await;
    let q = query_of(&step.location.unwrap());
    let (status, body, _) = app
        .token(&client, &code_form(&client, &q["code"], None))
        .await;
    assert_eq!(status, 200, "{body}");
    let auth_time = jwt_part(body["id_token"].as_str().unwrap(), 1)["auth_time"]
        .as_i64()
        .unwrap();
    assert!(
        (auth_time - app.app.now()).abs() <= 2,
        "auth_time is the new login"
    );
    // A session younger than max_age is reused.
    let mut young = base.to_vec();
    young.push(("max_age", "3600"));
    let step = browser.authorize(&young).await;
    assert!(query_of(&step.location.unwrap()).contains_key("code"));
}

async fn id_token_hint_for_another_user_with_prompt_none_is_login_required(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    app.create_user("bob").await;
    // Bob signs in in one browser and gets an ID token.
    let bob_browser = Browser::new(&app);
    let step = bob_browser.authorize_for(&client, "openid").await;
    let step = bob_browser
        .login(&step.location.unwrap(), "bob", PASSWORD)
        .await;
    let (_, answer) = bob_browser.consent(&step.location.unwrap(), "allow").await;
    let q = query_of(&answer.location.unwrap());
    let (_, body, _) = app
        .token(&client, &code_form(&client, &q["code"], None))
        .await;
    let bob_id_token = body["id_token"].as_str().unwrap().to_owned();
    // Alice is signed in in another browser; Bob's hint there with prompt=none fails.
    let browser = Browser::new(&app);
    browser.code_flow(&client, "openid", None, &[]).await;
    let step = browser
        .authorize_with(
            &client,
            "openid",
            &[("prompt", "none"), ("id_token_hint", &bob_id_token)],
        )
        .await;
    assert_eq!(query_of(&step.location.unwrap())["error"], "login_required");
    // Bob's own browser with his hint succeeds silently.
    let step = bob_browser
        .authorize_with(
            &client,
            "openid",
            &[("prompt", "none"), ("id_token_hint", &bob_id_token)],
        )
        .await;
    assert!(query_of(&step.location.unwrap()).contains_key("code"));
}

async fn denying_consent_returns_access_denied(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "d")])
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let (_, answer) = browser.consent(&step.location.unwrap(), "deny").await;
    let q = query_of(&answer.location.unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "d");
    assert_eq!(q["iss"], app.base);
}

/// The consent answer does not read the session first: the store writes the grant only
/// while the session is live and its user enabled. Otherwise the browser goes back to log
/// in, no code is issued and the interaction stays open.
async fn allowing_consent_needs_a_live_session_of_an_enabled_user(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(&client, "openid", &[("state", "l")])
        .await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    let consent_url = step.location.unwrap();
    let page = browser.get(&consent_url).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let allow = async || {
        browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", "allow"),
                ],
            )
            .await
    };
    let store = app.app.store.as_ref();
    let mut alice = store.get_user_by_username("alice").await.unwrap().unwrap();
    alice.disabled = true;
    store.update_user(&alice).await.unwrap();
    let refused = allow().await;
    assert_eq!(refused.status, 303);
    let to = refused.location.unwrap();
    assert!(to.starts_with("/login?interaction="), "{to}");
    assert!(!to.contains("code="));

    // Enabled again, the same form goes through once.
    alice.disabled = false;
    store.update_user(&alice).await.unwrap();
    let granted = allow().await;
    assert_eq!(granted.status, 303);
    let q = query_of(&granted.location.unwrap());
    assert!(q.contains_key("code"));
    assert_eq!(q["state"], "l");
    assert_eq!(allow().await.status, 400, "finished once");
}

async fn parameters_sent_twice_are_refused(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let url = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=a&state=b",
        client.client_id,
        urlencode(&client.redirect_uri)
    );
    let step = Browser::new(&app).get(&url).await;
    assert_eq!(step.status, 400);
    assert!(step.location.is_none());
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned()
}

async fn login_failures_are_generic_and_sessions_rotate(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let wrong_password = browser.login(&location, "alice", "wrong password").await;
    let unknown_user = browser.login(&location, "mallory", "wrong password").await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_user.status, 401);
    let message = "The username or password is incorrect.";
    assert!(wrong_password.body.contains(message) && unknown_user.body.contains(message));
    assert_eq!(
        wrong_password.body.replace("alice", "USER"),
        unknown_user.body.replace("mallory", "USER").replace(
            &hidden_field(&unknown_user.body, "csrf_token").unwrap(),
            &hidden_field(&wrong_password.body, "csrf_token").unwrap()
        ),
        "the two failures look the same"
    );
    let first = browser.login(&location, "alice", PASSWORD).await;
    let cookie = session_cookie(&first);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http issuer: no Secure");
    // Logging in again gives a new session id.
    let params = authorize_params(&client, "openid", &[("prompt", "login"), ("state", "x")]);
    let location = browser.authorize(&params).await.location.unwrap();
    let second = browser.login(&location, "alice", PASSWORD).await;
    assert_ne!(
        cookie_value(&cookie),
        cookie_value(&session_cookie(&second))
    );
}

fn session_cookie(step: &crate::helpers::Step) -> String {
    step.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latchkey_session="))
        .expect("a session cookie")
}

fn cookie_value(cookie: &str) -> String {
    cookie.split(';').next().unwrap().to_owned()
}

async fn forms_need_their_csrf_token_and_browser(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    let interaction = hidden_field(&page.body, "interaction").unwrap();
    let csrf = hidden_field(&page.body, "csrf_token").unwrap();
    let no_csrf = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 400);
    let bad_csrf = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(bad_csrf.status, 400);
    // Another browser (no binding cookie) cannot use this interaction, even with its token.
    let other = Browser::new(&app);
    assert_eq!(other.get(&location).await.status, 400);
    let stolen = other
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(stolen.status, 400);
    let ok = browser
        .post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    // Consent form: a token from the login form does not work there.
    let consent_url = ok.location.unwrap();
    let consent_page = browser.get(&consent_url).await;
    let consent_csrf = hidden_field(&consent_page.body, "csrf_token").unwrap();
    assert_ne!(consent_csrf, csrf);
    // The login moved the interaction on to consent, bound to its session.
    let interaction = hidden_field(&consent_page.body, "interaction").unwrap();
    let allow = async |csrf: &str| {
        browser
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", csrf),
                    ("decision", "allow"),
                ],
            )
            .await
            .status
    };
    assert_eq!(allow(&csrf).await, 400);
    // A finished interaction cannot be completed twice.
    assert_eq!(allow(&consent_csrf).await, 303);
    assert_eq!(allow(&consent_csrf).await, 400);
    // Wrong content type on a form endpoint.
    let json_body = browser
        .http
        .post(app.url("/login"))
        .json(&json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
}

/// The pending request travels sealed in the `interaction` parameter: changing one character
/// of it, or waiting past its 30 minutes, gives the expired page; a request too large to
/// travel in a URL is refused back to the client.
async fn pending_interactions_are_sealed_expire_and_cannot_be_altered(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let authorize = |state: String| {
        let browser = &browser;
        let client = &client;
        async move {
            browser
                .authorize_with(client, "openid", &[("state", &state)])
                .await
        }
    };
    let location = authorize("s".to_owned()).await.location.unwrap();
    let page = browser.get(&location).await;
    assert_eq!(page.status, 200);
    let interaction = hidden_field(&page.body, "interaction").unwrap();

    // Flip one character in the middle of the sealed request.
    let mut altered: Vec<char> = interaction.chars().collect();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let page = browser.get(&format!("/login?interaction={altered}")).await;
    assert_eq!(page.status, 400, "an altered interaction does not open");
    assert!(!page.body.contains("csrf_token"));

    // The request is not readable in the URL: the state does not show through.
    let secret_state = "state-that-must-not-be-readable-in-the-url";
    let hidden = authorize(secret_state.to_owned()).await.location.unwrap();
    assert!(!hidden.contains(secret_state));

    app.clock.advance(30 * 60 + 1);
    assert_eq!(
        browser.get(&location).await.status,
        400,
        "expired after 30 minutes"
    );
    app.clock.advance(-(30 * 60 + 1));
    assert_eq!(browser.get(&location).await.status, 200);

    // A request whose sealed form would not fit in a URL goes back to the client.
    // (Each parameter may be up to 8 KiB; together they may be more than fits.)
    let long = "x".repeat(6000);
    let huge = browser
        .authorize_with(&client, "openid", &[("state", &long), ("nonce", &long)])
        .await;
    assert_eq!(huge.status, 303);
    let back = huge.location.unwrap();
    assert!(back.starts_with(&client.redirect_uri), "{back}");
    assert_eq!(query_of(&back)["error"], "invalid_request");
}

async fn pages_resist_framing_and_referrer_leaks(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Scripts only from Latchkey's own files: never inline, never eval.
    assert!(
        !csp.contains("unsafe-inline")
            && !csp.contains("unsafe-eval")
            && csp.contains("script-src 'self';"),
        "{csp}"
    );
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.body.starts_with("<!doctype html>"));
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(
        page.body.contains("<label for=\"username\">")
            && page.body.contains("<label for=\"password\">")
    );
    assert!(page.body.contains(r#"name="username""#) && page.body.contains(r#"name="password""#));
    assert!(!page.body.contains("<script"));
    assert!(page.body.contains("name=\"viewport\""));
    // ui_locales picks the language.
    let location = browser
        .authorize_with(&client, "openid", &[("ui_locales", "de-CH en")])
        .await
        .location
        .unwrap();
    let german = browser.get(&location).await;
    assert!(german.body.contains("<html lang=\"de\">") && german.body.contains("Anmelden"));
    // login_hint prefills the username.
    let location = browser
        .authorize_with(&client, "openid", &[("login_hint", "alice")])
        .await
        .location
        .unwrap();
    assert!(
        browser
            .get(&location)
            .await
            .body
            .contains("value=\"alice\"")
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

async fn first_party_clients_skip_consent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(
        &app.create_client(json!({
            "client_name": "Our Own App",
            "redirect_uris": ["https://own.example.test/cb"],
            "scope": "openid email",
            "first_party": true,
        }))
        .await,
    );
    let browser = Browser::new(&app);
    let step = browser.authorize_for(&client, "openid email").await;
    let step = browser
        .login(&step.location.unwrap(), "alice", PASSWORD)
        .await;
    assert!(
        step.location.unwrap().starts_with(&client.redirect_uri),
        "no consent page"
    );
}

/// RFC 8252 §8.6: the identity of a public client redirecting to loopback or a private-use
/// scheme is not assured, so remembered consent is not reused for it.
async fn native_public_clients_are_asked_for_consent_every_time(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = public_client(&app).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    browser
        .code_flow(&client, "openid", Some(&challenge), &[])
        .await;
    let step = browser
        .authorize_with(&client, "openid", &pkce_params(&challenge))
        .await;
    assert!(
        step.location.unwrap().starts_with("/consent"),
        "asked again"
    );
}
