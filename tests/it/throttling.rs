//! Brute-force protection: failed logins throttled per account and per IP, failed client
//! authentication per client id and IP, with exponential back-off then lockout, shared by
//! every node, and without telling whether an account exists.

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, Step, TestApp, TestClient, settings, spawn_app, spawn_app_with,
    spawn_node,
};

both_backends!(
    failed_logins_back_off_then_lock_the_account,
    unknown_accounts_are_throttled_exactly_like_real_ones,
    many_accounts_from_one_address_lock_the_address,
    the_password_grant_shares_the_login_throttle,
    failed_client_authentication_is_throttled,
    throttling_is_shared_by_all_nodes,
    a_login_whose_client_left_is_never_hashed,
    spellings_of_one_username_log_in_and_share_its_throttle,
);

async fn login_attempt(app: &TestApp, client: &TestClient, username: &str, password: &str) -> Step {
    let browser = Browser::new(app);
    let location = browser.authorize_location(client, "openid").await;
    browser.login(&location, username, password).await
}

async fn setup(backend: Backend) -> (TestApp, TestClient) {
    let app = spawn_app(backend).await;
    app.create_user("alice").await;
    let client = TestClient::from_registration(&app.create_web_client().await);
    (app, client)
}

async fn failed_logins_back_off_then_lock_the_account(backend: Backend) {
    let (app, client) = setup(backend).await;
    // Five free failures, then back-offs of 1, 2, 4, 8 s (waited out by moving the clock),
    // and at the tenth failure 16 s: long enough that the next attempt is surely inside it,
    // however slow the machine.
    for i in 0..10 {
        let status = login_attempt(&app, &client, "alice", "wrong").await.status;
        assert_eq!(status, 401, "failure {i} is answered, not throttled");
        app.clock.advance(9);
    }
    app.clock.advance(-9);
    let throttled = login_attempt(&app, &client, "alice", PASSWORD).await;
    assert_eq!(throttled.status, 429, "even the right password waits");
    assert!(
        throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(throttled.body.contains("Too many failed attempts"));
    assert!(
        throttled.body.contains("name=\"username\""),
        "the form is shown again"
    );
    app.clock.advance(17);
    assert_eq!(
        login_attempt(&app, &client, "alice", PASSWORD).await.status,
        303,
        "after the back-off"
    );
    // A success clears the count; then twenty failures (waiting out each back-off) lock out.
    let mut last = 0;
    for _ in 0..20 {
        last = login_attempt(&app, &client, "alice", "wrong").await.status;
        app.clock.advance(61);
    }
    assert_eq!(last, 401);
    app.clock.advance(-61);
    let locked = login_attempt(&app, &client, "alice", PASSWORD).await;
    assert_eq!(locked.status, 429);
    let wait: i64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 600, "a lockout, not a back-off: {wait}");
    let events = app.events("kind=account_locked").await;
    assert_eq!(events.len(), 1);
    app.clock.advance(wait + 1);
    assert_eq!(
        login_attempt(&app, &client, "alice", PASSWORD).await.status,
        303,
        "the lockout ends"
    );
}

async fn unknown_accounts_are_throttled_exactly_like_real_ones(backend: Backend) {
    let (app, client) = setup(backend).await;
    let mut real = Vec::new();
    let mut unknown = Vec::new();
    // Failures six to nine only wait out short back-offs; the tenth locks for 16 s, long
    // enough that the next attempt is surely refused whatever the machine's speed.
    for _ in 0..10 {
        real.push(login_attempt(&app, &client, "alice", "wrong").await.status);
        unknown.push(login_attempt(&app, &client, "nobody", "wrong").await.status);
        app.clock.advance(9);
    }
    app.clock.advance(-9);
    real.push(login_attempt(&app, &client, "alice", "wrong").await.status);
    unknown.push(login_attempt(&app, &client, "nobody", "wrong").await.status);
    assert_eq!(real, unknown, "the answers do not tell the accounts apart");
    assert_eq!(real.last(), Some(&429));
}

async fn many_accounts_from_one_address_lock_the_address(backend: Backend) {
    let (app, client) = setup(backend).await;
    // Twenty free failures for the address, then back-offs of 1, 2, 4, 8 s (waited out by
    // moving the clock) and at the twenty-fifth failure 16 s: long enough that the next
    // attempt is surely inside it, however slow the machine.
    for i in 0..25 {
        let status = login_attempt(&app, &client, &format!("user{i}"), "wrong")
            .await
            .status;
        assert_eq!(status, 401, "attempt {i}");
        app.clock.advance(9);
    }
    app.clock.advance(-9);
    // The address is throttled, so even a fresh account name with the right password waits.
    assert_eq!(
        login_attempt(&app, &client, "alice", PASSWORD).await.status,
        429
    );
}

async fn the_password_grant_shares_the_login_throttle(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]),
    )
    .await;
    app.create_user("alice").await;
    let reg = app
        .create_client(serde_json::json!({"grant_types": ["password"], "scope": "openid"}))
        .await;
    let client = TestClient {
        client_id: reg["client_id"].as_str().unwrap().to_owned(),
        secret: reg["client_secret"].as_str().map(str::to_owned),
        redirect_uri: String::new(),
    };
    let grant = |password: &'static str| {
        let client = &client;
        let app = &app;
        async move {
            app.token(
                client,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", password),
                ],
            )
            .await
        }
    };
    for _ in 0..10 {
        assert_eq!(grant("wrong").await.0, 400);
        app.clock.advance(9);
    }
    app.clock.advance(-9);
    let (status, body, headers) = grant(PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "slow_down");
    assert!(headers.contains_key("retry-after"));
    // The login form sees the same lock.
    let web = TestClient::from_registration(&app.create_web_client().await);
    assert_eq!(
        login_attempt(&app, &web, "alice", PASSWORD).await.status,
        429
    );
}

async fn failed_client_authentication_is_throttled(backend: Backend) {
    let (app, client) = setup(backend).await;
    let wrong = TestClient {
        client_id: client.client_id.clone(),
        secret: Some("not-the-secret".into()),
        redirect_uri: client.redirect_uri.clone(),
    };
    // Ten free failures, back-offs of 1..8 s waited out, and at the fifteenth 16 s.
    for i in 0..15 {
        let (status, body, headers) = app
            .token(&wrong, &[("grant_type", "client_credentials")])
            .await;
        app.clock.advance(9);
        assert_eq!(status, 401, "attempt {i}: {body}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    app.clock.advance(-9);
    let (status, body, headers) = app
        .token(&wrong, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "slow_down");
    assert!(headers.contains_key("retry-after"));
    // Revocation and introspection share the lock.
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&wrong.client_id, wrong.secret.as_ref())
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The real secret was never guessable, so it is not held up (and the hot path stays free
    // of database round trips).
    assert_eq!(
        app.token(&client, &[("grant_type", "client_credentials")])
            .await
            .0,
        200
    );
    app.clock.advance(61);
    assert_eq!(
        app.token(&wrong, &[("grant_type", "client_credentials")])
            .await
            .0,
        401
    );
}

async fn throttling_is_shared_by_all_nodes(backend: Backend) {
    let (a, client) = setup(backend).await;
    let b = spawn_node(&a).await;
    for _ in 0..10 {
        assert_eq!(
            login_attempt(&a, &client, "alice", "wrong").await.status,
            401
        );
        a.clock.advance(9);
        b.clock.advance(9);
    }
    a.clock.advance(-9);
    b.clock.advance(-9);
    assert_eq!(
        login_attempt(&b, &client, "alice", PASSWORD).await.status,
        429,
        "node B sees node A's lock"
    );
}

/// The hash queue holds only live requests: a login whose client hangs up while it waits
/// for the hasher leaves the queue and is never hashed.
async fn a_login_whose_client_left_is_never_hashed(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let (app, client) = setup(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    let form = serde_urlencoded::to_string([
        (
            "interaction",
            crate::helpers::hidden_field(&page.body, "interaction").unwrap(),
        ),
        (
            "csrf_token",
            crate::helpers::hidden_field(&page.body, "csrf_token").unwrap(),
        ),
        ("username", "alice".to_owned()),
        ("password", PASSWORD.to_owned()),
    ])
    .unwrap();
    let binding = browser.cookie("latchkey_interaction").unwrap();
    let hasher = app.app.passwords.clone();
    let done_before = hasher.completed();
    let held = hasher.hold_all_permits().await.unwrap();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nCookie: latchkey_interaction={binding}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let queued = async {
        while hasher.waiting() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), queued)
        .await
        .expect("the login reached the hash queue");
    drop(stream);
    let left = async {
        while hasher.waiting() != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), left)
        .await
        .expect("the abandoned login left the queue");
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        hasher.completed(),
        done_before,
        "no hash for a client that left"
    );
}

/// A compatibility spelling of a username (fullwidth `ａｌｉｃｅ`) is that username: it logs
/// in as the user, and its failures count against the same account, so variants buy an
/// attacker no extra guesses.
async fn spellings_of_one_username_log_in_and_share_its_throttle(backend: Backend) {
    let (app, client) = setup(backend).await;
    assert_eq!(
        login_attempt(&app, &client, "ａｌｉｃｅ", PASSWORD)
            .await
            .status,
        303,
        "the fullwidth spelling logs in"
    );
    let spellings = ["ａlice", "aｌice", "alｉce", "aliｃe", "alicｅ"];
    for s in spellings {
        assert_eq!(login_attempt(&app, &client, s, "wrong").await.status, 401);
    }
    // Failures six to ten for the account, whatever the spelling, each after the back-off
    // the one before it earned (waited out by moving the clock): the tenth earns 16 s, long
    // enough that the next attempt is surely inside it, however slow the machine.
    for s in ["ａｌｉｃｅ", "alice", "ａlice", "aｌice", "ａｌｉｃｅ"] {
        assert_eq!(login_attempt(&app, &client, s, "wrong").await.status, 401);
        app.clock.advance(9);
    }
    app.clock.advance(-9);
    assert_eq!(
        login_attempt(&app, &client, "alice", PASSWORD).await.status,
        429,
        "the plain name waits too"
    );
}
