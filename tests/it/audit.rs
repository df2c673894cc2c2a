//! The audit log (`GET /admin/events`) and the promise that no secret, password, token or
//! code ever reaches a log line or an event.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, AdminBody, Backend, Browser, PASSWORD, ServerProcess, TestClient, admin_request,
    fresh_database, hidden_field, no_redirect_client, pkce_pair, query_of, spawn_app,
};

both_backends!(
    security_events_are_recorded_and_filterable,
    no_secret_reaches_a_log_line_or_an_event
);

fn kinds(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn security_events_are_recorded_and_filterable(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("alice").await;
    let sub = user["sub"].as_str().unwrap();
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    browser.login(&location, "alice", "wrong password").await;
    let step = browser.login(&location, "alice", PASSWORD).await;
    browser.consent(&step.location.unwrap(), "allow").await;
    app.http
        .get(app.url("/admin/clients"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    app.admin(Method::POST, "/admin/keys/rotate", None).await;

    let all = kinds(&app.events("").await);
    for expected in [
        "user_created",
        "client_created",
        "login_failed",
        "login_succeeded",
        "consent_granted",
        "admin_access_denied",
        "keys_rotated",
    ] {
        assert!(
            all.contains(&expected.to_owned()),
            "{expected} missing from {all:?}"
        );
    }
    let failures = app.events("kind=login_failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["sub"], sub);
    assert_eq!(failures[0]["client_id"], client.client_id.as_str());
    assert_eq!(failures[0]["ip"], "127.0.0.1");
    let for_user = kinds(&app.events(&format!("sub={sub}")).await);
    assert!(
        for_user.iter().all(|k| [
            "user_created",
            "login_failed",
            "login_succeeded",
            "consent_granted"
        ]
        .contains(&k.as_str())),
        "{for_user:?}"
    );
    let page = app.events("limit=2").await;
    assert_eq!(page.len(), 2);
    let next = app
        .events(&format!("limit=2&before={}", page[1]["event_id"]))
        .await;
    assert!(next[0]["event_id"].as_i64().unwrap() < page[1]["event_id"].as_i64().unwrap());
    let (bad, _) = app.admin(Method::GET, "/admin/events?limit=0", None).await;
    assert_eq!(bad, 400);
    let unauthenticated = app.http.get(app.url("/admin/events")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

/// Drives every kind of secret through a real server process logging at debug level in JSON,
/// then searches its whole log and the audit log for each secret.
async fn no_secret_reaches_a_log_line_or_an_event(backend: Backend) {
    let database = fresh_database(backend).await;
    // No reuse grace: the refresh token below is presented again at once, as reuse.
    let node = ServerProcess::start(
        &database,
        &[
            ("LATCHKEY_ENABLE_PASSWORD_GRANT", "true"),
            ("LATCHKEY_REFRESH_TOKEN_REUSE_GRACE", "0"),
        ],
    )
    .await;
    let base = node.base.clone();
    let http = no_redirect_client(false);
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        ADMIN_TOKEN.to_owned(),
        "not-the-password-xyz".to_owned(),
    ];

    let user = json!({"username": "alice", "password": PASSWORD, "email": "a@example.test"});
    let (_, user) = node.admin(Method::POST, "/admin/users", Some(&user)).await;
    assert!(user["sub"].is_string());
    let metadata = json!({
        "redirect_uris": ["https://app.example.test/callback"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "scope": "openid email offline_access api.read",
    });
    let (_, reg) = node
        .admin(Method::POST, "/admin/clients", Some(&metadata))
        .await;
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    secrets.push(secret.clone());
    let path = format!("/admin/clients/{client_id}/secret");
    let (_, rotated) = node.admin(Method::POST, &path, None).await;
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    let secret = rotated["client_secret"].as_str().unwrap().to_owned();

    // The browser flow, by hand, collecting cookies, CSRF tokens and the code.
    let browser = no_redirect_client(true);
    let (verifier, challenge) = pkce_pair();
    secrets.push(verifier.clone());
    let authorize = format!(
        "{base}/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", "https://app.example.test/callback"),
            ("scope", "openid email offline_access"),
            ("state", "st"),
            ("nonce", "nn"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap()
    );
    let r = browser.get(&authorize).send().await.unwrap();
    secrets.extend(cookie_values(&r));
    let login_url = format!("{base}{}", r.headers()["location"].to_str().unwrap());
    let page = browser
        .get(&login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let interaction = hidden_field(&page, "interaction").unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    secrets.push(csrf.clone());
    let form = |password: &'static str| {
        vec![
            ("interaction", interaction.clone()),
            ("csrf_token", csrf.clone()),
            ("username", "alice".to_owned()),
            ("password", password.to_owned()),
        ]
    };
    browser
        .post(format!("{base}/login"))
        .form(&form("not-the-password-xyz"))
        .send()
        .await
        .unwrap();
    let r = browser
        .post(format!("{base}/login"))
        .form(&form(PASSWORD))
        .send()
        .await
        .unwrap();
    secrets.extend(cookie_values(&r));
    let consent_url = format!("{base}{}", r.headers()["location"].to_str().unwrap());
    let page = browser
        .get(&consent_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent_csrf = hidden_field(&page, "csrf_token").unwrap();
    secrets.push(consent_csrf.clone());
    // After the login the interaction is bound to its session: a new sealed value.
    let interaction = hidden_field(&page, "interaction").unwrap();
    let r = browser
        .post(format!("{base}/consent"))
        .form(&[
            ("interaction", interaction.as_str()),
            ("csrf_token", consent_csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    secrets.push(code.clone());

    let token = |form: Vec<(&'static str, String)>| {
        http.post(format!("{base}/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&form)
            .send()
    };
    let tokens: Value = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", "https://app.example.test/callback".into()),
        ("code_verifier", verifier.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for key in ["access_token", "refresh_token", "id_token"] {
        secrets.push(tokens[key].as_str().unwrap().to_owned());
    }
    // Reuse the code (revokes the family) after a refresh, and exercise every endpoint.
    let refreshed: Value = token(vec![
        ("grant_type", "refresh_token".into()),
        (
            "refresh_token",
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for key in ["access_token", "refresh_token", "id_token"] {
        secrets.push(refreshed[key].as_str().unwrap().to_owned());
    }
    token(vec![
        ("grant_type", "refresh_token".into()),
        (
            "refresh_token",
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ])
    .await
    .unwrap();
    token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", "https://app.example.test/callback".into()),
        ("code_verifier", verifier.clone()),
    ])
    .await
    .unwrap();
    let cc: Value = token(vec![("grant_type", "client_credentials".into())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(cc["access_token"].as_str().unwrap().to_owned());
    let pw: Value = token(vec![
        ("grant_type", "password".into()),
        ("username", "alice".into()),
        ("password", PASSWORD.into()),
        ("scope", "openid offline_access".into()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    secrets.push(pw["access_token"].as_str().unwrap().to_owned());
    secrets.push(pw["refresh_token"].as_str().unwrap().to_owned());
    http.get(format!("{base}/userinfo"))
        .bearer_auth(pw["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/introspect"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", cc["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", pw["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/token"))
        .basic_auth(&client_id, Some("wrong-secret-wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    secrets.push("wrong-secret-wrong-secret".to_owned());
    let logout = format!(
        "{base}/logout?{}",
        serde_urlencoded::to_string([("id_token_hint", refreshed["id_token"].as_str().unwrap())])
            .unwrap()
    );
    browser.get(&logout).send().await.unwrap();

    // As sent, not parsed and printed again: a secret must not be there in any spelling.
    let all_events = admin_request(
        &http,
        &format!("{base}/admin/events?limit=200"),
        Method::GET,
        Some(ADMIN_TOKEN),
        AdminBody::None,
    )
    .await
    .text;
    let log = node.log();
    assert!(
        log.lines().count() > 20,
        "the server logged at debug level: {log}"
    );
    assert!(
        log.contains("\"security event\"") || log.contains("security event"),
        "audit lines are logged"
    );
    for kind in [
        "code_reuse_detected",
        "refresh_reuse_detected",
        "login_failed",
        "client_secret_rotated",
    ] {
        assert!(all_events.contains(kind), "{kind} recorded: {all_events}");
    }
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
        assert!(
            !all_events.contains(secret.as_str()),
            "a secret reached the audit log: {secret}"
        );
    }
    assert!(!log.contains("$argon2"), "no password hash in the log");
}

/// The values of the cookies a response sets.
fn cookie_values(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next()?.split_once('='))
        .map(|(_, value)| value.to_owned())
        .collect()
}
