//! Client secrets with overlap: a rotation may keep the old secret working for a while
//! (`previous_secret_valid_for`), a secret may be given a life (`secret_valid_for`, reported
//! as `client_secret_expires_at`) after which it is refused, and a client's secrets are
//! listed by id and times, never by value.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, client_credentials, machine_client, spawn_app};

both_backends!(
    a_rotation_can_keep_the_previous_secret_working_for_a_while,
    an_expired_secret_is_refused,
    bad_rotation_bodies_are_refused,
);

async fn machine(app: &TestApp) -> Value {
    app.create_client(json!({
        "client_name": "Nightly job",
        "grant_types": ["client_credentials"],
        "scope": "api.read",
    }))
    .await
}

async fn rotate(app: &TestApp, client_id: &str, body: Value) -> (u16, Value) {
    app.admin(
        Method::POST,
        &format!("/admin/clients/{client_id}/secret"),
        Some(&body),
    )
    .await
}

async fn a_rotation_can_keep_the_previous_secret_working_for_a_while(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = machine(&app).await;
    let client_id = created["client_id"].as_str().unwrap();
    let old = machine_client(&created);

    let (status, rotated) =
        rotate(&app, client_id, json!({"previous_secret_valid_for": 600})).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["client_secret_expires_at"], 0);
    let new = machine_client(&rotated);
    assert_eq!(
        client_credentials(&app, &old, &[]).await.0,
        200,
        "old still works"
    );
    assert_eq!(
        client_credentials(&app, &new, &[]).await.0,
        200,
        "new works"
    );

    // Listed by id and times, never by value.
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/clients/{client_id}"), None)
        .await;
    let secrets = shown["client_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{shown}");
    assert_eq!(secrets[0]["current"], true);
    assert_eq!(secrets[0]["expires_at"], 0);
    assert_eq!(secrets[1]["current"], false);
    let kept_until = secrets[1]["expires_at"].as_i64().unwrap();
    assert_eq!(kept_until - secrets[0]["created_at"].as_i64().unwrap(), 600);
    assert_ne!(secrets[0]["id"], secrets[1]["id"]);
    let text = shown.to_string();
    for client in [&old, &new] {
        assert!(!text.contains(client.secret.as_deref().unwrap()), "{text}");
    }

    // Once the overlap has passed, only the new secret works.
    app.clock.advance(601);
    assert_eq!(client_credentials(&app, &old, &[]).await.0, 401);
    assert_eq!(client_credentials(&app, &new, &[]).await.0, 200);

    // A second rotation keeps at most one previous secret: the newest.
    let (_, second) = rotate(&app, client_id, json!({"previous_secret_valid_for": 600})).await;
    let newest = machine_client(&second);
    let (_, third) = rotate(&app, client_id, json!({"previous_secret_valid_for": 600})).await;
    let latest = machine_client(&third);
    assert_eq!(
        client_credentials(&app, &new, &[]).await.0,
        401,
        "two back: refused"
    );
    assert_eq!(client_credentials(&app, &newest, &[]).await.0, 200);
    assert_eq!(client_credentials(&app, &latest, &[]).await.0, 200);

    // Without a body the old secret stops at once, as before.
    let (status, fourth) = app
        .admin(
            Method::POST,
            &format!("/admin/clients/{client_id}/secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{fourth}");
    assert_eq!(client_credentials(&app, &latest, &[]).await.0, 401);
    assert_eq!(client_credentials(&app, &newest, &[]).await.0, 401);
    assert_eq!(
        client_credentials(&app, &machine_client(&fourth), &[])
            .await
            .0,
        200
    );
}

async fn an_expired_secret_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = machine(&app).await;
    let client_id = created["client_id"].as_str().unwrap();
    let (status, rotated) = rotate(&app, client_id, json!({"secret_valid_for": 120})).await;
    assert_eq!(status, 200, "{rotated}");
    let expires_at = rotated["client_secret_expires_at"].as_i64().unwrap();
    assert_eq!(
        expires_at,
        rotated["client_secrets"][0]["created_at"].as_i64().unwrap() + 120
    );
    let client = machine_client(&rotated);
    assert_eq!(client_credentials(&app, &client, &[]).await.0, 200);
    app.clock.advance(121);
    let (status, body) = client_credentials(&app, &client, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

async fn bad_rotation_bodies_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = machine(&app).await;
    let client_id = created["client_id"].as_str().unwrap();
    let old = machine_client(&created);
    for body in [
        json!({"previous_secret_valid_for": -1}),
        json!({"previous_secret_valid_for": "600"}),
        json!({"previous_secret_valid_for": 1.5}),
        json!({"previous_secret_valid_for": 100_000_000}),
        json!({"secret_valid_for": 0}),
        json!({"keep": 5}),
        json!([1]),
    ] {
        let (status, answer) = rotate(&app, client_id, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{body}: {answer}");
    }
    assert_eq!(
        client_credentials(&app, &old, &[]).await.0,
        200,
        "nothing rotated"
    );
}
