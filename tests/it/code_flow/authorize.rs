//! The authorization endpoint's rules: what is shown as a page (unknown client, unregistered
//! redirect URI) and what goes back to the client with `state` and `iss`; public clients and
//! PKCE; loopback redirect URIs; `prompt`, `max_age` and `id_token_hint`.

use super::public_client;
use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, authorize_params, code_form, jwt_part, pkce_pair, query_of,
    spawn_app, spawn_app_with_alice,
};

both_backends!(
    unknown_client_or_redirect_uri_gets_a_page_not_a_redirect,
    loopback_redirect_uris_may_change_port,
    later_errors_are_redirected_with_state_and_iss,
    public_clients_need_s256_pkce,
    prompt_none_without_session_or_consent_fails,
    prompt_login_and_max_age_force_a_new_login,
    id_token_hint_for_another_user_with_prompt_none_is_login_required,
    parameters_sent_twice_are_refused,
);

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
            "invalid_request_object",
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
