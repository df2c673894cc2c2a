//! Token exchange (RFC 8693): a service exchanges a token Latchkey issued for an access token
//! to another audience, never wider in scope, with `act` when an actor is named; every
//! exchange is audited.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, TestApp, TestClient, client_credentials, jwt_part, machine_client, revoke,
    spawn_app_with_alice_and, user_tokens,
};

both_backends!(
    an_access_token_is_exchanged_for_an_allowed_audience,
    every_rule_of_the_exchange_is_enforced,
    an_actor_token_makes_the_result_carry_act,
);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID: &str = "urn:ietf:params:oauth:token-type:id_token";
const API: &str = "https://orders.example.test";

/// A confidential service allowed to exchange tokens for `API`, and the web client's tokens
/// for alice whose audience is that service.
async fn service(app: &TestApp) -> TestClient {
    machine_client(
        &app.create_client(json!({
            "client_name": "Gateway",
            "grant_types": ["client_credentials", GRANT],
            "scope": "api.read",
            "token_exchange_audiences": [API],
        }))
        .await,
    )
}

async fn exchange(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut fields = vec![("grant_type", GRANT)];
    fields.extend_from_slice(form);
    let (status, body, _) = app.token(client, &fields).await;
    (status, body)
}

async fn an_access_token_is_exchanged_for_an_allowed_audience(backend: Backend) {
    let (app, web) = spawn_app_with_alice_and(backend, &[]).await;
    let doc = app.discovery().await;
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
    let gateway = service(&app).await;
    // The web client's token for alice, given to the gateway (its own client, so the token
    // is "issued to" the web client; the gateway is the web client here).
    let tokens = user_tokens(&app, &web, "openid profile api.read api.write").await;
    let access = tokens["access_token"].as_str().unwrap();
    // The web client exchanges its user's token for the orders API, narrower.
    let web_meta = json!({
        "client_name": "Test Web App",
        "redirect_uris": ["https://app.example.test/callback"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials", GRANT],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile email phone address offline_access api.read api.write",
        "token_exchange_audiences": [API],
    });
    let path = format!("/admin/clients/{}", web.client_id);
    let (status, body) = app.admin(Method::PUT, &path, Some(&web_meta)).await;
    assert_eq!(status, 200, "{body}");
    wait_for_client_change().await;
    let (status, body) = exchange(
        &app,
        &web,
        &[
            ("subject_token", access),
            ("subject_token_type", ACCESS),
            ("audience", API),
            ("scope", "api.read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sub"], jwt_part(access, 1)["sub"]);
    assert_eq!(claims["scope"], "api.read");
    assert_eq!(claims["client_id"], web.client_id.as_str());
    assert!(claims.get("act").is_none(), "no actor, no act");
    // Without a scope: the subject token's. An ID token as subject yields openid at most.
    let (status, body) = exchange(
        &app,
        &web,
        &[
            ("subject_token", access),
            ("subject_token_type", ACCESS),
            ("resource", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["scope"],
        jwt_part(access, 1)["scope"]
    );
    let id_token = tokens["id_token"].as_str().unwrap();
    let (status, body) = exchange(
        &app,
        &web,
        &[
            ("subject_token", id_token),
            ("subject_token_type", ID),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["scope"],
        "openid"
    );
    // Every exchange is in the audit log.
    let events = app.events("kind=token_exchanged").await;
    assert_eq!(events.len(), 3, "{events:?}");
    // The gateway, to which the token was not issued, cannot exchange it.
    let (status, body) = exchange(
        &app,
        &gateway,
        &[
            ("subject_token", access),
            ("subject_token_type", ACCESS),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// A refused exchange: its name, its form, the error expected.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Client changes reach the token endpoint within the change-poll bound.
async fn wait_for_client_change() {
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
}

async fn every_rule_of_the_exchange_is_enforced(backend: Backend) {
    let (app, web) = spawn_app_with_alice_and(backend, &[]).await;
    let gateway = service(&app).await;
    // A machine token of the gateway itself is a valid subject for the gateway.
    let (_, own) = client_credentials(&app, &gateway, &[]).await;
    let own = own["access_token"].as_str().unwrap().to_owned();
    let ok = [
        ("subject_token", own.as_str()),
        ("subject_token_type", ACCESS),
        ("audience", API),
    ];
    assert_eq!(exchange(&app, &gateway, &ok).await.0, 200);
    let cases: Vec<Case> = vec![
        (
            "no subject token",
            vec![("subject_token_type", ACCESS)],
            "invalid_request",
        ),
        (
            "no subject token type",
            vec![("subject_token", own.as_str())],
            "invalid_request",
        ),
        (
            "unknown token type",
            vec![
                ("subject_token", own.as_str()),
                ("subject_token_type", "urn:x"),
            ],
            "invalid_request",
        ),
        (
            "a refresh token is not issued",
            vec![
                ("subject_token", own.as_str()),
                ("subject_token_type", ACCESS),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
        (
            "garbage",
            vec![("subject_token", "a.b.c"), ("subject_token_type", ACCESS)],
            "invalid_grant",
        ),
        (
            "an audience not registered",
            vec![
                ("subject_token", own.as_str()),
                ("subject_token_type", ACCESS),
                ("audience", "https://evil.example.test"),
            ],
            "invalid_target",
        ),
        (
            "a wider scope",
            vec![
                ("subject_token", own.as_str()),
                ("subject_token_type", ACCESS),
                ("scope", "api.read api.write"),
            ],
            "invalid_scope",
        ),
        (
            "actor token without its type",
            vec![
                ("subject_token", own.as_str()),
                ("subject_token_type", ACCESS),
                ("actor_token", own.as_str()),
            ],
            "invalid_request",
        ),
    ];
    for (name, form, error) in cases {
        let (status, body) = exchange(&app, &gateway, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{name}: {body}"
        );
    }
    // A client that did not register the grant.
    let tokens = user_tokens(&app, &web, "openid api.read").await;
    let (status, body) = exchange(
        &app,
        &web,
        &[
            ("subject_token", tokens["access_token"].as_str().unwrap()),
            ("subject_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // A public client cannot register the grant at all.
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/clients",
            Some(&json!({
                "client_name": "SPA",
                "redirect_uris": ["https://spa.example.test/cb"],
                "grant_types": ["authorization_code", GRANT],
                "token_endpoint_auth_method": "none",
            })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    // The exchanged token dies with the subject token's family.
    let member = machine_client(
        &app.create_client(json!({
            "client_name": "Member",
            "redirect_uris": ["https://member.example.test/cb"],
            "grant_types": ["authorization_code", "refresh_token", GRANT],
            "scope": "openid offline_access api.read",
            "token_exchange_audiences": [API],
        }))
        .await,
    );
    let member = TestClient {
        redirect_uri: "https://member.example.test/cb".into(),
        ..member
    };
    let tokens = user_tokens(&app, &member, "openid offline_access api.read").await;
    let (status, body) = exchange(
        &app,
        &member,
        &[
            ("subject_token", tokens["access_token"].as_str().unwrap()),
            ("subject_token_type", ACCESS),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    let rs = crate::helpers::resource_server(&app).await;
    assert!(crate::helpers::is_active(&app, &rs, &exchanged).await);
    revoke(
        &app,
        &member,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert!(!crate::helpers::is_active(&app, &rs, &exchanged).await);
    let (status, body) = exchange(
        &app,
        &member,
        &[
            ("subject_token", tokens["access_token"].as_str().unwrap()),
            ("subject_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

async fn an_actor_token_makes_the_result_carry_act(backend: Backend) {
    let (app, _) = spawn_app_with_alice_and(backend, &[]).await;
    let gateway = service(&app).await;
    let worker = machine_client(
        &app.create_client(json!({
            "client_name": "Worker",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await,
    );
    let (_, own) = client_credentials(&app, &gateway, &[]).await;
    let subject = own["access_token"].as_str().unwrap().to_owned();
    let (_, actor) = client_credentials(&app, &worker, &[]).await;
    let actor = actor["access_token"].as_str().unwrap().to_owned();
    let (status, body) = exchange(
        &app,
        &gateway,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let once = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_part(&once, 1)["act"],
        json!({"sub": worker.client_id.as_str()})
    );
    // Exchanged again with another actor: the earlier actor nests inside.
    let (status, body) = exchange(
        &app,
        &gateway,
        &[
            ("subject_token", &once),
            ("subject_token_type", ACCESS),
            ("actor_token", &subject),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["act"],
        json!({"sub": gateway.client_id.as_str(), "act": {"sub": worker.client_id.as_str()}})
    );
    // A bad actor token is refused.
    let (status, body) = exchange(
        &app,
        &gateway,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS),
            ("actor_token", "x.y.z"),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let events = app.events("kind=token_exchanged").await;
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains(&worker.client_id)),
        "{events:?}"
    );
}
