//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a session that ends queues a
//! logout token for every client that took part in it; any node delivers it, retrying with
//! back-off, exactly once per session and client; the admin API shows how it went.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, ServerProcess, TestApp, TestClient, code_form, jwt_part, pkce_pair, settings,
    spawn_app_with, spawn_node_with,
};

both_backends!(
    a_logout_reaches_each_client_of_the_session_once_despite_failures,
    every_way_a_session_ends_notifies_its_clients,
    sessions_that_latchkey_apply_ends_notify_their_clients,
    a_node_killed_mid_delivery_leaves_it_to_another,
    a_killed_node_process_leaves_its_claim_to_another_node_after_the_lease,
    logout_metadata_is_checked_and_advertised,
);

/// How a receiver answers one delivery.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (until the caller gives up).
    Hang,
}

/// A relying party's back-channel logout endpoint on loopback: answers from a script (200
/// once the script runs out) and keeps every logout token it was sent, with its answer.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Receiver {
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/backchannel-logout",
            listener.local_addr().unwrap()
        );
        let (s, r) = (script.clone(), received.clone());
        let router = axum::Router::new().route(
            "/backchannel-logout",
            axum::routing::post(move |form: axum::Form<Vec<(String, String)>>| {
                let (s, r) = (s.clone(), r.clone());
                async move {
                    let token = form
                        .0
                        .iter()
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let answer = s.lock().unwrap().pop_front().unwrap_or(Answer::Status(200));
                    match answer {
                        Answer::Hang => {
                            r.lock().unwrap().push((token, 0));
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            axum::http::StatusCode::OK
                        }
                        Answer::Status(code) => {
                            r.lock().unwrap().push((token, code));
                            axum::http::StatusCode::from_u16(code).unwrap()
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { url, received }
    }

    fn received(&self) -> Vec<(String, u16)> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until `n` deliveries arrived.
    async fn wait_for(&self, n: usize) -> Vec<(String, u16)> {
        for _ in 0..200 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.received());
    }

    fn delivered(&self) -> usize {
        self.received().iter().filter(|(_, s)| *s == 200).count()
    }
}

async fn server(backend: Backend) -> TestApp {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")]),
    )
    .await;
    app.create_user("alice").await;
    app
}

async fn client_with(app: &TestApp, receiver: &Receiver, name: &str) -> TestClient {
    TestClient::from_registration(
        &app.create_client(json!({
            "client_name": name,
            "redirect_uris": ["https://app.example.test/callback"],
            "scope": "openid",
            "backchannel_logout_uri": receiver.url,
            "backchannel_logout_session_required": true,
        }))
        .await,
    )
}

/// alice signs in through `browser` (one session) and `client` redeems its code; the ID token.
async fn sign_in(app: &TestApp, browser: &Browser<'_>, client: &TestClient) -> String {
    let (verifier, challenge) = pkce_pair();
    let query = browser
        .code_flow(client, "openid", Some(&challenge), &[])
        .await;
    let (status, body, _) = app
        .token(client, &code_form(client, &query["code"], Some(&verifier)))
        .await;
    assert_eq!(status, 200, "{body}");
    body["id_token"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, client: &TestClient) -> Vec<Value> {
    let path = format!("/admin/clients/{}/logout-deliveries", client.client_id);
    let (status, body) = app.admin(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Checks a logout token as a relying party must (Back-Channel Logout 1.0 §2.6).
async fn check_logout_token(app: &TestApp, token: &str, client: &TestClient, id_token: &str) {
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    let claims = jwt_part(token, 1);
    let id = jwt_part(id_token, 1);
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sid"], id["sid"], "the ID token's sid");
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 120, "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    // Signed like the client's ID tokens, with a published key.
    assert_eq!(header["alg"], jwt_part(id_token, 0)["alg"]);
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks.find(header["kid"].as_str().unwrap()).unwrap();
    let mut validation =
        jsonwebtoken::Validation::new(header["alg"].as_str().unwrap().parse().unwrap());
    validation.set_audience(&[&client.client_id]);
    validation.set_issuer(&[&app.base]);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .expect("the logout token verifies with the JWKS");
}

async fn a_logout_reaches_each_client_of_the_session_once_despite_failures(backend: Backend) {
    let app = server(backend).await;
    assert_eq!(app.discovery().await["backchannel_logout_supported"], true);
    // The first receiver fails twice (a 500, then a redirect, which is not followed).
    let flaky = Receiver::start(&[Answer::Status(500), Answer::Status(302)]).await;
    let steady = Receiver::start(&[]).await;
    let (a, b) = (
        client_with(&app, &flaky, "Flaky").await,
        client_with(&app, &steady, "Steady").await,
    );
    let browser = Browser::new(&app);
    let id_a = sign_in(&app, &browser, &a).await;
    let id_b = sign_in(&app, &browser, &b).await;
    // b signs in twice in the session: still one notification.
    sign_in(&app, &browser, &b).await;
    assert_eq!(jwt_part(&id_a, 1)["sid"], jwt_part(&id_b, 1)["sid"]);

    // RP-initiated logout ends the session.
    let step = browser.get(&format!("/logout?id_token_hint={id_a}")).await;
    assert_eq!(step.status, 200, "{}", step.body);

    let got = steady.wait_for(1).await;
    check_logout_token(&app, &got[0].0, &b, &id_b).await;
    // a's first attempt fails; the retries wait 5 s, then 10 s (the clock moves instead).
    let got = flaky.wait_for(1).await;
    assert_eq!(got[0].1, 500);
    let pending = &deliveries(&app, &a).await[0];
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["attempts"], 1);
    assert!(
        pending["last_error"].as_str().unwrap().contains("500"),
        "{pending}"
    );
    app.clock.advance(5);
    flaky.wait_for(2).await;
    app.clock.advance(10);
    let got = flaky.wait_for(3).await;
    assert_eq!(got[2].1, 200);
    check_logout_token(&app, &got[2].0, &a, &id_a).await;
    // Every attempt carried the same jti.
    let jtis: Vec<Value> = got
        .iter()
        .map(|(t, _)| jwt_part(t, 1)["jti"].clone())
        .collect();
    assert!(jtis.iter().all(|j| *j == jtis[0]), "{jtis:?}");

    // Delivered exactly once per client, and the status says so.
    let mut done = Vec::new();
    for _ in 0..100 {
        done = deliveries(&app, &a).await;
        if done[0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["status"], "delivered");
    assert_eq!(done[0]["attempts"], 3);
    assert_eq!(done[0]["sid"], jwt_part(&id_a, 1)["sid"]);
    assert_eq!(done[0]["last_error"], Value::Null);
    assert_eq!(deliveries(&app, &b).await.len(), 1);
    app.clock.advance(7200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!((flaky.delivered(), flaky.received().len()), (1, 3));
    assert_eq!((steady.delivered(), steady.received().len()), (1, 1));
    let events = app.events("kind=logout_delivered").await;
    assert_eq!(events.len(), 2, "{events:?}");
}

async fn every_way_a_session_ends_notifies_its_clients(backend: Backend) {
    let app = server(backend).await;
    let receiver = Receiver::start(&[]).await;
    let client = client_with(&app, &receiver, "RP").await;
    let sub = {
        let browser = Browser::new(&app);
        let id = sign_in(&app, &browser, &client).await;
        jwt_part(&id, 1)["sub"].as_str().unwrap().to_owned()
    };
    // An operator ends every session of the user: 204, and the RP hears of it.
    let path = format!("/admin/users/{sub}/sessions");
    let (status, _) = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    receiver.wait_for(1).await;
    assert_eq!(app.events("kind=sessions_ended").await.len(), 1);
    let (status, _) = app
        .admin(Method::DELETE, "/admin/users/nobody/sessions", None)
        .await;
    assert_eq!(status, 404);

    // Disabling the user.
    let browser = Browser::new(&app);
    sign_in(&app, &browser, &client).await;
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    receiver.wait_for(2).await;
    app.admin(
        Method::PATCH,
        &format!("/admin/users/{sub}"),
        Some(&json!({"disabled": false})),
    )
    .await;

    // A new login in the same browser replaces the old session: its clients hear of it.
    sign_in(&app, &browser, &client).await;
    let step = browser
        .authorize_with(&client, "openid", &[("prompt", "login")])
        .await;
    let login = step.location.unwrap();
    browser
        .login(&login, "alice", crate::helpers::PASSWORD)
        .await;
    receiver.wait_for(3).await;

    // Deleting the user.
    let browser = Browser::new(&app);
    sign_in(&app, &browser, &client).await;
    let (status, _) = app
        .admin(Method::DELETE, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(status, 204);
    let got = receiver.wait_for(4).await;
    let sids: std::collections::HashSet<String> = got
        .iter()
        .map(|(t, _)| jwt_part(t, 1)["sid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        sids.len() >= 4,
        "one notification per ended session: {got:?}"
    );
    assert!(got.iter().all(|(_, s)| *s == 200));
}

/// `latchkey apply` ends a user's sessions when the file sets a new password or disables
/// them, and a pruned user's go with them: the same path as `DELETE
/// /admin/users/{sub}/sessions`, so the clients that took part hear of each.
async fn sessions_that_latchkey_apply_ends_notify_their_clients(backend: Backend) {
    let app = server(backend).await;
    // Someone stays enabled whatever the files say about alice.
    app.create_user("bob").await;
    let receiver = Receiver::start(&[]).await;
    let client = client_with(&app, &receiver, "RP").await;
    let mut cli = crate::helpers::Latchkey::new(&app.database_url);
    cli.env
        .push(("ALICE_PASSWORD".into(), "a password from the file".into()));
    let apply = |text: &str| {
        let path = cli.dir.join("apply.toml");
        std::fs::write(&path, text).unwrap();
        let out = cli.run(&["apply", &path.display().to_string()], None);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let signed_in_sid = |id: &str| jwt_part(id, 1)["sid"].as_str().unwrap().to_owned();

    // A new password from the file.
    let id = sign_in(&app, &Browser::new(&app), &client).await;
    let first = signed_in_sid(&id);
    let sub = jwt_part(&id, 1)["sub"].as_str().unwrap().to_owned();
    apply("[[user]]\nusername = \"alice\"\npassword = \"env:ALICE_PASSWORD\"\n");
    let got = receiver.wait_for(1).await;
    let sid_of = |token: &str| jwt_part(token, 1)["sid"].as_str().unwrap().to_owned();
    assert_eq!(sid_of(&got[0].0), first, "{got:?}");

    // Disabled by the file.
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password": crate::helpers::PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);
    let second = signed_in_sid(&sign_in(&app, &Browser::new(&app), &client).await);
    apply("[[user]]\nusername = \"alice\"\ndisabled = true\n");
    let got = receiver.wait_for(2).await;
    assert_eq!(sid_of(&got[1].0), second, "{got:?}");

    // Deleted by a pruning file: the store's deletion is the one `DELETE /admin/users/{sub}`
    // uses, and it ends the sessions the same way.
    app.admin(
        Method::PATCH,
        &format!("/admin/users/{sub}"),
        Some(&json!({"disabled": false})),
    )
    .await;
    let third = signed_in_sid(&sign_in(&app, &Browser::new(&app), &client).await);
    let store: &dyn latchkey::store::Store = app.app.store.as_ref();
    store
        .apply_changes(
            &[latchkey::store::Change::DeleteUser(sub.clone())],
            app.app.now(),
        )
        .await
        .unwrap();
    let got = receiver.wait_for(3).await;
    assert_eq!(sid_of(&got[2].0), third, "{got:?}");
    assert!(got.iter().all(|(_, s)| *s == 200), "{got:?}");
    assert_eq!(deliveries(&app, &client).await.len(), 3);
}

async fn a_node_killed_mid_delivery_leaves_it_to_another(backend: Backend) {
    let app = server(backend).await;
    // The second node's clock runs 100 s behind, so it leaves the delivery to the first.
    let other = spawn_node_with(
        &app,
        settings(&[("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1")]),
    )
    .await;
    other.clock.advance(-100);
    let receiver = Receiver::start(&[Answer::Hang]).await;
    let client = client_with(&app, &receiver, "RP").await;
    let browser = Browser::new(&app);
    let id = sign_in(&app, &browser, &client).await;
    let step = browser.get(&format!("/logout?id_token_hint={id}")).await;
    assert_eq!(step.status, 200);
    // The first node is delivering (the receiver holds the request) when it dies.
    receiver.wait_for(1).await;
    drop(app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Once the lease (30 s) has run out by its clock, the other node claims and delivers it.
    other.clock.advance(100 + 31);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].1, 200);
    assert_eq!(jwt_part(&got[0].0, 1)["jti"], jwt_part(&got[1].0, 1)["jti"]);
    let mut done = Vec::new();
    for _ in 0..100 {
        done = deliveries(&other, &client).await;
        if done[0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done[0]["status"], "delivered", "{done:?}");
    assert_eq!(done[0]["attempts"], 2);
    assert_eq!(receiver.delivered(), 1);
}

/// Waits (at most 5 s) until the newest delivery to `client` has `status`; that delivery.
async fn delivery_with_status(app: &TestApp, client: &TestClient, status: &str) -> Value {
    let mut newest = Value::Null;
    for _ in 0..100 {
        newest = deliveries(app, client).await[0].clone();
        if newest["status"] == status {
            return newest;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery did not become {status}: {newest}");
}

/// The real binary, SIGKILLed while it holds the claim on a delivery (its receiver stalls):
/// the notification stays pending, no other node takes it before the lease runs out, and
/// then another node delivers it, once, with the same `jti`.
async fn a_killed_node_process_leaves_its_claim_to_another_node_after_the_lease(backend: Backend) {
    let app = server(backend).await;
    // The in-process node's clock runs 100 s behind: while the process lives, only the
    // process finds the notification due.
    app.clock.advance(-100);
    let receiver = Receiver::start(&[Answer::Hang]).await;
    let client = client_with(&app, &receiver, "RP").await;
    let id = sign_in(&app, &Browser::new(&app), &client).await;
    let sub = jwt_part(&id, 1)["sub"].as_str().unwrap().to_owned();
    // A second node of the same deployment: same issuer, database and master key.
    let mut node = ServerProcess::start(
        &app.database_url,
        &[
            ("LATCHKEY_ISSUER", &app.base),
            ("LATCHKEY_REGISTRATION_TRUSTED_HOSTS", "127.0.0.1"),
        ],
    )
    .await;
    let path = format!("/admin/users/{sub}/sessions");
    let (status, _) = node.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);

    // The process claims the notification and POSTs it; the receiver holds the request.
    let got = receiver.wait_for(1).await;
    node.child.kill().unwrap(); // SIGKILL: no shutdown, no chance to record anything
    node.child.wait().unwrap();
    let claimed = deliveries(&app, &client).await[0].clone();
    assert_eq!(claimed["status"], "pending", "{claimed}");
    assert_eq!(claimed["attempts"], 1, "{claimed}");
    assert_eq!(
        claimed["last_error"],
        Value::Null,
        "the dead node recorded nothing"
    );

    // Well within the 30 s lease (by the in-process node's clock), nobody takes it over.
    app.clock.advance(100 + 15);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    assert_eq!(deliveries(&app, &client).await[0]["attempts"], 1);

    // Once the lease has run out, the in-process node claims it and delivers it.
    app.clock.advance(17);
    let got_again = receiver.wait_for(2).await;
    assert_eq!(got_again[1].1, 200);
    check_logout_token(&app, &got_again[1].0, &client, &id).await;
    assert_eq!(
        jwt_part(&got[0].0, 1)["jti"],
        jwt_part(&got_again[1].0, 1)["jti"]
    );
    let done = delivery_with_status(&app, &client, "delivered").await;
    assert_eq!(done["attempts"], 2, "{done}");

    // Exactly once: nothing more arrives, however long the survivor runs.
    app.clock.advance(7200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!((receiver.delivered(), receiver.received().len()), (1, 2));
    assert_eq!(deliveries(&app, &client).await.len(), 1);
    assert_eq!(app.events("kind=logout_delivered").await.len(), 1);
}

async fn logout_metadata_is_checked_and_advertised(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let doc = app.discovery().await;
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    for uri in [
        "http://127.0.0.1:9/logout",
        "https://10.0.0.1/logout",
        "https://rp.example.test/logout#frag",
        "not a url",
    ] {
        let (status, body) = app
            .admin(
                Method::POST,
                "/admin/clients",
                Some(&json!({
                    "client_name": "RP",
                    "redirect_uris": ["https://app.example.test/callback"],
                    "backchannel_logout_uri": uri,
                })),
            )
            .await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{uri}");
    }
    let reg = app
        .create_client(json!({
            "client_name": "RP",
            "redirect_uris": ["https://app.example.test/callback"],
            "backchannel_logout_uri": "https://rp.example.test/logout",
            "backchannel_logout_session_required": true,
        }))
        .await;
    assert_eq!(
        reg["backchannel_logout_uri"],
        "https://rp.example.test/logout"
    );
    assert_eq!(reg["backchannel_logout_session_required"], true);
    let (status, _) = app
        .admin(Method::GET, "/admin/clients/nobody/logout-deliveries", None)
        .await;
    assert_eq!(status, 404);
}
