//! The admin API over HTTP: bearer authentication, client registration and management
//! (RFC 7591 / RFC 7592), users, and signing keys.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, AdminAnswer, AdminBody, Backend, Browser, PASSWORD, TestApp, TestClient,
    client_credentials, fetch_json, machine_client, pkce_pair, pkce_params, refresh, settings,
    spawn_app, spawn_app_with,
};

/// Every route of the admin API, with a method it answers to.
fn every_route() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/admin/clients"),
        (Method::GET, "/admin/clients"),
        (Method::GET, "/admin/clients/some-id"),
        (Method::PUT, "/admin/clients/some-id"),
        (Method::DELETE, "/admin/clients/some-id"),
        (Method::POST, "/admin/clients/some-id/secret"),
        (Method::POST, "/admin/users"),
        (Method::GET, "/admin/users"),
        (Method::GET, "/admin/users/some-sub"),
        (Method::PATCH, "/admin/users/some-sub"),
        (Method::DELETE, "/admin/users/some-sub"),
        (Method::GET, "/admin/keys"),
        (Method::POST, "/admin/keys/rotate"),
        (Method::GET, "/admin/no-such-thing"),
    ]
}

fn assert_unauthorized(status: u16, headers: &reqwest::header::HeaderMap, text: &str, what: &str) {
    assert_eq!(status, 401, "{what}: {text}");
    let challenge = headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"))
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

fn assert_no_secret_fields(value: &Value, what: &str) {
    assert!(value.get("client_secret").is_none(), "{what}: {value}");
    assert!(
        value.get("client_secret_expires_at").is_none(),
        "{what}: {value}"
    );
}

/// Asserts that an answer about a user shows no password, hash or password field.
fn assert_no_password(value: &Value, what: &str) {
    let text = value.to_string();
    assert!(!text.contains(PASSWORD), "{what}: {text}");
    assert!(!text.contains("argon2"), "{what}: {text}");
    // No password field (the `password_reset_required` flag is not one).
    let without_flag = text.replace("password_reset_required", "");
    assert!(!without_flag.contains("password"), "{what}: {text}");
}

both_backends!(
    requiring_a_password_reset_ends_sessions_and_families,
    wrong_methods_do_not_reveal_admin_routes,
    every_admin_route_needs_the_admin_token,
    admin_api_answers_401_when_no_admin_token_is_configured,
    clients_are_registered_read_replaced_and_deleted,
    client_lists_are_paginated_with_a_cursor,
    rotating_a_client_secret_retires_the_old_one,
    public_clients_get_no_secret,
    invalid_client_metadata_is_refused_with_rfc7591_errors,
    non_canonical_redirect_uris_and_user_information_are_refused,
    replacing_a_client_checks_its_id_and_kind,
    users_are_created_read_listed_patched_and_deleted,
    invalid_user_requests_are_refused,
    confusable_usernames_are_refused_or_normalised,
    a_username_stored_before_normalisation_still_logs_in,
    disabling_a_user_ends_its_sessions_and_refresh_families,
    a_new_password_ends_the_users_sessions,
    signing_keys_are_listed_and_rotated,
    wrong_admin_tokens_are_throttled_per_address,
);

async fn every_admin_route_needs_the_admin_token(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in every_route() {
        let what = format!("{method} {path}");
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(method.clone(), path, None, AdminBody::Json(&json!({})))
            .await;
        assert_unauthorized(status, &headers, &text, &format!("{what} without token"));
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                method.clone(),
                path,
                Some("wrong-token-wrong-token"),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(
            status,
            &headers,
            &text,
            &format!("{what} with a wrong token"),
        );
        // A prefix of the right token must not pass either.
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                method.clone(),
                path,
                Some(&ADMIN_TOKEN[..10]),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(status, &headers, &text, &format!("{what} with a prefix"));
        let response = app
            .http
            .request(method, app.url(path))
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{what} with Basic");
    }
    // Nothing was created by the refused requests.
    let (status, body) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
    // The right token, with the scheme in another case, is accepted (RFC 9110 §11.1).
    let response = app
        .http
        .get(app.url("/admin/keys"))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = app.admin(Method::GET, "/admin/no-such-thing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

async fn admin_api_answers_401_when_no_admin_token_is_configured(backend: Backend) {
    let app = spawn_app_with(backend, |env| {
        env.retain(|(k, _)| k != "LATCHKEY_ADMIN_TOKEN")
    })
    .await;
    assert!(app.app.config.admin_token.is_none());
    // Nothing to guess, so nothing is throttled: 401 however often a token is sent.
    for _ in 0..110 {
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(
                Method::GET,
                "/admin/clients",
                Some(ADMIN_TOKEN),
                AdminBody::None,
            )
            .await;
        assert_unauthorized(status, &headers, &text, "repeated");
    }
    for (method, path) in every_route() {
        let what = format!("{method} {path}");
        let AdminAnswer {
            status,
            headers,
            text,
        } = app
            .admin_request(method.clone(), path, Some(ADMIN_TOKEN), AdminBody::None)
            .await;
        assert_unauthorized(status, &headers, &text, &what);
        let AdminAnswer {
            status,
            headers,
            text,
        } = app.admin_request(method, path, None, AdminBody::None).await;
        assert_unauthorized(status, &headers, &text, &what);
    }
}

async fn clients_are_registered_read_replaced_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata = json!({
        "client_name": "Billing",
        "redirect_uris": ["https://billing.example.test/cb", "http://127.0.0.1:7000/cb"],
        "post_logout_redirect_uris": ["https://billing.example.test/bye"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "openid profile offline_access",
        "id_token_signed_response_alg": "ES256",
        "first_party": true,
    });
    let (status, headers, created) = app
        .admin_raw(
            Method::POST,
            "/admin/clients",
            Some("application/json"),
            &metadata.to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        headers["location"],
        format!("/admin/clients/{client_id}").as_str()
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "a 256-bit secret: {secret}");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert!(created["client_id_issued_at"].as_i64().unwrap() > 0);
    for key in [
        "client_name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "token_endpoint_auth_method",
        "scope",
        "id_token_signed_response_alg",
        "first_party",
    ] {
        assert_eq!(created[key], metadata[key], "{key}");
    }
    assert_eq!(created["response_types"], json!(["code"]));

    // Read: the metadata, never the secret.
    let (status, shown) = app
        .admin(Method::GET, &format!("/admin/clients/{client_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_no_secret_fields(&shown, "GET");
    assert!(!shown.to_string().contains(&secret));
    assert_eq!(shown["client_id"], client_id.as_str());
    assert_eq!(shown["client_name"], "Billing");
    assert_eq!(shown["client_id_issued_at"], created["client_id_issued_at"]);

    let (status, list) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["next"], Value::Null);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["client_id"], client_id.as_str());
    assert_no_secret_fields(&items[0], "list");
    assert!(!list.to_string().contains(&secret));

    // Replace (RFC 7592 §2.2): a full replacement; a secret sent back is ignored.
    let replacement = json!({
        "client_id": client_id,
        "client_secret": secret,
        "client_name": "Billing v2",
        "redirect_uris": ["https://billing.example.test/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let (status, replaced) = app
        .admin(
            Method::PUT,
            &format!("/admin/clients/{client_id}"),
            Some(&replacement),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_no_secret_fields(&replaced, "PUT");
    assert!(!replaced.to_string().contains(&secret));
    assert_eq!(replaced["client_name"], "Billing v2");
    assert_eq!(
        replaced["redirect_uris"],
        json!(["https://billing.example.test/callback"])
    );
    // Fields left out take their registration defaults.
    assert_eq!(replaced["grant_types"], json!(["authorization_code"]));
    assert_eq!(replaced["first_party"], false);
    assert_eq!(replaced["scope"], "openid");
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/clients/{client_id}"), None)
        .await;
    assert_eq!(shown["client_name"], "Billing v2");
    assert_eq!(shown["token_endpoint_auth_method"], "client_secret_basic");
    // The secret is unchanged by PUT.
    let stored = app.app.store.get_client(&client_id).await.unwrap().unwrap();
    assert!(
        app.app
            .hasher
            .verify(&secret, stored.secret_hash.as_deref().unwrap())
    );

    // Delete: 204, then 404 for everything about it.
    let AdminAnswer { status, text, .. } = app
        .admin_request(
            Method::DELETE,
            &format!("/admin/clients/{client_id}"),
            Some(ADMIN_TOKEN),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(text.is_empty());
    for (method, path) in [
        (Method::GET, format!("/admin/clients/{client_id}")),
        (Method::DELETE, format!("/admin/clients/{client_id}")),
        (Method::POST, format!("/admin/clients/{client_id}/secret")),
    ] {
        let (status, body) = app.admin(method, &path, None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, body) = app
        .admin(
            Method::PUT,
            &format!("/admin/clients/{client_id}"),
            Some(&json!({"redirect_uris": ["https://a.example.test/cb"]})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

async fn client_lists_are_paginated_with_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = app
            .create_client(json!({"client_name": format!("c{i}"), "redirect_uris": ["https://a.example.test/cb"]}))
            .await;
        ids.push(created["client_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    let (status, first) = app.admin(Method::GET, "/admin/clients?limit=2", None).await;
    assert_eq!(status, 200);
    let first_ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(first_ids, vec![ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(first["next"], ids[1].as_str());
    let (status, second) = app
        .admin(
            Method::GET,
            &format!("/admin/clients?limit=2&after={}", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let second_ids: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(second_ids, vec![ids[2].as_str()]);
    assert_eq!(second["next"], Value::Null);
    // A page that happens to be exactly full points to an empty one.
    let (_, full) = app.admin(Method::GET, "/admin/clients?limit=3", None).await;
    assert_eq!(full["next"], ids[2].as_str());
    let (_, empty) = app
        .admin(
            Method::GET,
            &format!("/admin/clients?after={}", ids[2]),
            None,
        )
        .await;
    assert_eq!(empty, json!({"items": [], "next": null}));
    // The default page holds all three.
    let (_, all) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    for bad in ["limit=0", "limit=201", "limit=two", "limit=-1"] {
        let (status, body) = app
            .admin(Method::GET, &format!("/admin/clients?{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }
}

async fn rotating_a_client_secret_retires_the_old_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_client(json!({
            "client_name": "Nightly job",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await;
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let old_secret = created["client_secret"].as_str().unwrap().to_owned();
    let old = machine_client(&created);
    assert_eq!(client_credentials(&app, &old, &[]).await.0, 200);

    let (status, rotated) = app
        .admin(
            Method::POST,
            &format!("/admin/clients/{client_id}/secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["client_id"], client_id.as_str());
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert_eq!(rotated["client_secret_expires_at"], 0);

    let new = machine_client(&rotated);
    assert_eq!(client_credentials(&app, &old, &[]).await.0, 401);
    assert_eq!(client_credentials(&app, &new, &[]).await.0, 200);
    // Reading the client afterwards shows neither secret.
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/clients/{client_id}"), None)
        .await;
    assert_no_secret_fields(&shown, "GET after rotation");
    assert!(!shown.to_string().contains(&new_secret));

    let public = app
        .create_client(json!({"redirect_uris": ["https://spa.example.test/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    let (status, body) = app
        .admin(
            Method::POST,
            &format!(
                "/admin/clients/{}/secret",
                public["client_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
}

async fn public_clients_get_no_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_client(json!({
            "client_name": "SPA",
            "redirect_uris": ["https://spa.example.test/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_no_secret_fields(&created, "public client registration");
    assert_eq!(created["token_endpoint_auth_method"], "none");
    let stored = app
        .app
        .store
        .get_client(created["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_hash.is_none());
}

async fn invalid_client_metadata_is_refused_with_rfc7591_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let cb = "https://a.example.test/cb";
    let json_ct = Some("application/json");
    // (what, content type, body, expected error)
    let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
        (
            "redirect URI with a fragment",
            json_ct,
            json!({"redirect_uris": ["https://a.example.test/cb#x"]}).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "relative redirect URI",
            json_ct,
            json!({"redirect_uris": ["/cb"]}).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "http redirect URI on a public host",
            json_ct,
            json!({"redirect_uris": ["http://a.example.test/cb"]}).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "javascript: redirect URI",
            json_ct,
            json!({"redirect_uris": ["javascript:alert(1)"]}).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "code grant without redirect URI",
            json_ct,
            json!({"grant_types": ["authorization_code"]}).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "unknown grant type",
            json_ct,
            json!({"redirect_uris": [cb], "grant_types": ["implicit"]}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "empty grant types",
            json_ct,
            json!({"redirect_uris": [cb], "grant_types": []}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "response type token",
            json_ct,
            json!({"redirect_uris": [cb], "response_types": ["token"]}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "bad scope characters",
            json_ct,
            json!({"redirect_uris": [cb], "scope": "openid \"quoted\""}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "public client with client_credentials",
            json_ct,
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"})
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "public client with password",
            json_ct,
            json!({"grant_types": ["password"], "token_endpoint_auth_method": "none"}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "unknown auth method",
            json_ct,
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt_typo"})
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "unsupported ID token alg",
            json_ct,
            json!({"redirect_uris": [cb], "id_token_signed_response_alg": "none"}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "unknown field",
            json_ct,
            json!({"redirect_uris": [cb], "redirect_uri": cb}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "malformed JSON",
            json_ct,
            "{\"redirect_uris\": [".to_owned(),
            "invalid_client_metadata",
        ),
        (
            "empty body",
            json_ct,
            String::new(),
            "invalid_client_metadata",
        ),
        (
            "wrong JSON type",
            json_ct,
            json!({"redirect_uris": cb}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "JSON array instead of an object",
            json_ct,
            json!([cb]).to_string(),
            "invalid_client_metadata",
        ),
        (
            "wrong type for first_party",
            json_ct,
            json!({"redirect_uris": [cb], "first_party": "yes"}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            json!({"redirect_uris": [cb]}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "text content type",
            Some("text/plain"),
            json!({"redirect_uris": [cb]}).to_string(),
            "invalid_client_metadata",
        ),
        (
            "no content type",
            None,
            json!({"redirect_uris": [cb]}).to_string(),
            "invalid_client_metadata",
        ),
    ];
    for (what, content_type, body, expected) in cases {
        let (status, headers, answer) = app
            .admin_raw(Method::POST, "/admin/clients", content_type, &body)
            .await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], expected, "{what}: {answer}");
        assert!(
            !answer["error_description"].as_str().unwrap().is_empty(),
            "{what}"
        );
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
    }
    let (_, list) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(
        list["items"],
        json!([]),
        "no refused registration was stored"
    );
}

/// A redirect URI is registered only in the form the URL parser (and so the browser) reads
/// it, byte for byte, and without user information: `https:\\evil.example` would match
/// itself at /authorize and then send the browser to `https://evil.example/`.
async fn non_canonical_redirect_uris_and_user_information_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let refused = [
        r"https:\\evil.example",
        r"https:\\evil.example/cb",
        "https:///cb",
        "https://user:pw@a.example.test/cb",
        "https://user@a.example.test/cb",
        "https://@a.example.test/cb",
        "https://a.example.test",
        "https://A.example.test/cb",
        "https://a.example.test:443/cb",
        "http://localhost:8080",
        "https://a.example.test/x/../cb",
    ];
    let ok = json!({"redirect_uris": ["https://a.example.test/cb"]});
    let existing = app.create_client(ok.clone()).await;
    let path = format!("/admin/clients/{}", existing["client_id"].as_str().unwrap());
    for uri in refused {
        let body = json!({"redirect_uris": ["https://a.example.test/cb", uri]});
        let (status, answer) = app.admin(Method::POST, "/admin/clients", Some(&body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{uri}: {answer}"
        );
        assert!(
            !answer["error_description"]
                .as_str()
                .unwrap()
                .contains("pw@"),
            "{answer}"
        );
        // Replacing a client's metadata (RFC 7592) follows the same rule.
        let (status, answer) = app.admin(Method::PUT, &path, Some(&body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "PUT {uri}: {answer}"
        );
        // Post-logout redirect URIs too, as client metadata errors.
        let body = json!({"redirect_uris": ["https://a.example.test/cb"], "post_logout_redirect_uris": [uri]});
        let (status, answer) = app.admin(Method::POST, "/admin/clients", Some(&body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "post-logout {uri}: {answer}"
        );
    }
    let (_, list) = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, stored) = app.admin(Method::GET, &path, None).await;
    assert_eq!(stored["redirect_uris"], ok["redirect_uris"]);
    // The canonical spellings are accepted as given.
    let canonical = json!({
        "redirect_uris": ["https://evil.example/", "https://a.example.test/", "http://localhost:8080/"],
        "post_logout_redirect_uris": ["https://a.example.test/bye"],
    });
    let created = app.create_client(canonical.clone()).await;
    assert_eq!(created["redirect_uris"], canonical["redirect_uris"]);
    assert_eq!(
        created["post_logout_redirect_uris"],
        canonical["post_logout_redirect_uris"]
    );
}

async fn replacing_a_client_checks_its_id_and_kind(backend: Backend) {
    let app = spawn_app(backend).await;
    let confidential = app
        .create_client(json!({"redirect_uris": ["https://a.example.test/cb"]}))
        .await;
    let id = confidential["client_id"].as_str().unwrap();
    let path = format!("/admin/clients/{id}");
    let public = app
        .create_client(json!({"redirect_uris": ["https://a.example.test/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    let public_path = format!("/admin/clients/{}", public["client_id"].as_str().unwrap());
    let cases = [
        (
            "another client's id",
            &path,
            json!({"client_id": "someone-else", "redirect_uris": ["https://a.example.test/cb"]}),
            "invalid_client_metadata",
        ),
        (
            "confidential to public",
            &path,
            json!({"redirect_uris": ["https://a.example.test/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            "public to confidential",
            &public_path,
            json!({"redirect_uris": ["https://a.example.test/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            "bad redirect URI",
            &path,
            json!({"redirect_uris": ["https://a.example.test/cb#f"]}),
            "invalid_redirect_uri",
        ),
        (
            "unknown field",
            &path,
            json!({"redirect_uris": ["https://a.example.test/cb"], "colour": "red"}),
            "invalid_client_metadata",
        ),
    ];
    for (what, path, body, expected) in cases {
        let (status, answer) = app.admin(Method::PUT, path, Some(&body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], expected, "{what}: {answer}");
    }
    let (status, _, answer) = app
        .admin_raw(Method::PUT, &path, Some("text/plain"), "{}")
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "invalid_client_metadata");
    // Nothing changed.
    let (_, shown) = app.admin(Method::GET, &path, None).await;
    assert_eq!(shown["redirect_uris"], json!(["https://a.example.test/cb"]));
    assert_eq!(shown["token_endpoint_auth_method"], "client_secret_basic");
}

async fn users_are_created_read_listed_patched_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.create_user("alice").await;
    assert_no_password(&alice, "create");
    let sub = alice["sub"].as_str().unwrap().to_owned();
    assert!(sub.len() >= 16);
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.test");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["name"], "alice Example");
    assert_eq!(alice["phone_number"], "+1 555 0100");
    assert_eq!(alice["disabled"], false);
    assert!(alice["created_at"].as_i64().unwrap() > 0);
    assert_eq!(alice["created_at"], alice["updated_at"]);
    let stored = app.app.store.get_user(&sub).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));

    let (status, shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown, alice);
    let bob = app.create_user("bob").await;
    let (status, list) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(status, 200);
    assert_no_password(&list, "list");
    assert_eq!(list["next"], Value::Null);
    let mut subs: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["sub"].as_str().unwrap())
        .collect();
    subs.sort();
    let mut expected = vec![sub.as_str(), bob["sub"].as_str().unwrap()];
    expected.sort();
    assert_eq!(subs, expected);
    let (_, page) = app.admin(Method::GET, "/admin/users?limit=1", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], page["items"][0]["sub"]);

    // PATCH: merge-patch claims (null removes), rename; unspecified fields stay.
    let (status, patched) = app.admin(Method::PATCH, &format!("/admin/users/{sub}"), Some(&json!({"username": "alice.liddell", "name": "Alice Liddell", "phone_number": null, "locale": "en-GB"})))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_no_password(&patched, "patch");
    assert_eq!(patched["username"], "alice.liddell");
    assert_eq!(patched["name"], "Alice Liddell");
    assert_eq!(patched["locale"], "en-GB");
    assert!(patched.get("phone_number").is_none());
    assert_eq!(patched["email"], "alice@example.test");
    assert_eq!(patched["sub"], sub.as_str());
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(shown, patched);
    // Renaming onto a taken username is a conflict.
    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"username": "bob"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");

    let AdminAnswer { status, text, .. } = app
        .admin_request(
            Method::DELETE,
            &format!("/admin/users/{sub}"),
            Some(ADMIN_TOKEN),
            AdminBody::None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(text.is_empty());
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = app
            .admin(method, &format!("/admin/users/{sub}"), None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(body["error"], "not_found");
    }
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    // The name is free again.
    app.create_user("alice").await;
}

/// Usernames are stored in Unicode NFKC form and written in one script: `ａｌｉｃｅ`
/// (fullwidth) is `alice` and so taken, like any taken name (409); `аlice` with a Cyrillic
/// `а` is refused (400) with a message that names the scripts, instead of standing beside
/// `alice` looking the same. Renames follow the same rule, and a user created under a
/// compatibility variant logs in under the normalised name.
async fn confusable_usernames_are_refused_or_normalised(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.create_user("alice").await;
    let create = |username: &str| json!({"username": username, "password": PASSWORD});
    let (taken_status, taken) = app
        .admin(Method::POST, "/admin/users", Some(&create("alice")))
        .await;
    assert_eq!(
        (taken_status, taken["error"].as_str()),
        (409, Some("conflict"))
    );
    for variant in ["ａｌｉｃｅ", "ａlice"] {
        let (status, body) = app
            .admin(Method::POST, "/admin/users", Some(&create(variant)))
            .await;
        assert_eq!((status, &body), (taken_status, &taken), "{variant}");
    }
    for mixed in [
        "\u{430}lice",
        "alic\u{435}",
        "p\u{430}yp\u{430}l",
        "Zoë Ω",
        "ali\u{200b}ce",
    ] {
        let (status, body) = app
            .admin(Method::POST, "/admin/users", Some(&create(mixed)))
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{mixed:?}: {body}"
        );
    }
    let (_, body) = app
        .admin(Method::POST, "/admin/users", Some(&create("\u{430}lice")))
        .await;
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("mixes scripts")
            && description.contains("Cyrillic")
            && description.contains("U+0430"),
        "{description}"
    );

    // Stored normalised, answered normalised.
    let (status, bob) = app
        .admin(Method::POST, "/admin/users", Some(&create("ｂｏｂ")))
        .await;
    assert_eq!(status, 201, "{bob}");
    assert_eq!(bob["username"], "bob");
    let bob_path = format!("/admin/users/{}", bob["sub"].as_str().unwrap());
    let (_, shown) = app.admin(Method::GET, &bob_path, None).await;
    assert_eq!(shown["username"], "bob");
    // One script other than Latin is as good as Latin.
    let (status, body) = app
        .admin(Method::POST, "/admin/users", Some(&create("иван")))
        .await;
    assert_eq!(
        (status, body["username"].as_str()),
        (201, Some("иван")),
        "{body}"
    );

    // Renames.
    let alice_path = format!("/admin/users/{}", alice["sub"].as_str().unwrap());
    let (status, body) = app
        .admin(
            Method::PATCH,
            &alice_path,
            Some(&json!({"username": "\u{430}lice"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = app
        .admin(
            Method::PATCH,
            &bob_path,
            Some(&json!({"username": "ａｌｉｃｅ"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = app
        .admin(
            Method::PATCH,
            &bob_path,
            Some(&json!({"username": "ｂｏｂｂｙ"})),
        )
        .await;
    assert_eq!(
        (status, body["username"].as_str()),
        (200, Some("bobby")),
        "{body}"
    );

    // The user created as ｂｏｂ (now bobby) logs in under the stored name.
    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let step = browser
        .authorize_with(&client, "openid", &pkce_params(&challenge))
        .await;
    let login = step.location.unwrap();
    let step = browser.login(&login, "bobby", PASSWORD).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert!(!step.location.unwrap().starts_with("/login"));
}

/// Users created before usernames were normalised keep the exact name they were created
/// with (the rule applies to creation and renames, not to what is stored): typing that name
/// still logs them in, and changing other fields does not touch it.
async fn a_username_stored_before_normalisation_still_logs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = app.app.now();
    let legacy = latchkey::store::UserRecord {
        sub: "legacy-sub-0123456789".into(),
        username: "ｌｅｇａｃｙ".into(),
        password_hash: app.app.passwords.hash(PASSWORD).await.unwrap(),
        claims: Default::default(),
        disabled: false,
        password_reset_required: false,
        created_at: now,
        updated_at: now,
    };
    app.app.store.insert_user(&legacy).await.unwrap();
    let path = format!("/admin/users/{}", legacy.sub);
    let (status, body) = app
        .admin(Method::PATCH, &path, Some(&json!({"name": "Legacy"})))
        .await;
    assert_eq!(
        (status, body["username"].as_str()),
        (200, Some("ｌｅｇａｃｙ")),
        "{body}"
    );

    let client = TestClient::from_registration(&app.create_web_client().await);
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let step = browser
        .authorize_with(&client, "openid", &pkce_params(&challenge))
        .await;
    let step = browser
        .login(&step.location.unwrap(), "ｌｅｇａｃｙ", PASSWORD)
        .await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert!(!step.location.unwrap().starts_with("/login"));
}

async fn invalid_user_requests_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.create_user("alice").await;
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(&json!({"username": "alice", "password": "another long password"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");

    let json_ct = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        (
            "short password",
            json_ct,
            json!({"username": "carol", "password": "short"}).to_string(),
        ),
        (
            "missing password",
            json_ct,
            json!({"username": "carol"}).to_string(),
        ),
        (
            "missing username",
            json_ct,
            json!({"password": PASSWORD}).to_string(),
        ),
        (
            "empty username",
            json_ct,
            json!({"username": "", "password": PASSWORD}).to_string(),
        ),
        (
            "username with a control character",
            json_ct,
            json!({"username": "car\u{7}ol", "password": PASSWORD}).to_string(),
        ),
        (
            "username too long",
            json_ct,
            json!({"username": "c".repeat(257), "password": PASSWORD}).to_string(),
        ),
        (
            "unknown field",
            json_ct,
            json!({"username": "carol", "password": PASSWORD, "favourite_colour": "red"})
                .to_string(),
        ),
        (
            "setting sub",
            json_ct,
            json!({"username": "carol", "password": PASSWORD, "sub": "chosen"}).to_string(),
        ),
        (
            "wrong claim type",
            json_ct,
            json!({"username": "carol", "password": PASSWORD, "email_verified": "yes"}).to_string(),
        ),
        (
            "password as a number",
            json_ct,
            json!({"username": "carol", "password": 1234567890}).to_string(),
        ),
        ("malformed JSON", json_ct, "{\"username\": ".to_owned()),
        ("not an object", json_ct, "[]".to_owned()),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            json!({"username": "carol", "password": PASSWORD}).to_string(),
        ),
        (
            "no content type",
            None,
            json!({"username": "carol", "password": PASSWORD}).to_string(),
        ),
    ];
    for (what, content_type, body) in cases {
        let (status, _, answer) = app
            .admin_raw(Method::POST, "/admin/users", content_type, &body)
            .await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{what}: {answer}");
        assert!(
            !answer.to_string().contains("1234567890"),
            "{what}: the password is not echoed"
        );
    }
    let sub = alice["sub"].as_str().unwrap();
    let patches: Vec<(&str, Option<&str>, String)> = vec![
        (
            "short password",
            json_ct,
            json!({"password": "short"}).to_string(),
        ),
        (
            "disabled not a boolean",
            json_ct,
            json!({"disabled": "true"}).to_string(),
        ),
        (
            "unknown claim",
            json_ct,
            json!({"shoe_size": 9}).to_string(),
        ),
        (
            "empty username",
            json_ct,
            json!({"username": ""}).to_string(),
        ),
        ("malformed JSON", json_ct, "{".to_owned()),
        (
            "text content type",
            Some("text/plain"),
            json!({"name": "x"}).to_string(),
        ),
    ];
    for (what, content_type, body) in patches {
        let (status, _, answer) = app
            .admin_raw(
                Method::PATCH,
                &format!("/admin/users/{sub}"),
                content_type,
                &body,
            )
            .await;
        assert_eq!(status, 400, "PATCH {what}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "PATCH {what}: {answer}");
    }
    // A refused patch changed nothing.
    let (_, shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(shown, alice);
    let (_, list) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

async fn insert_session(app: &TestApp, sub: &str, hash: u8) {
    let now = app.app.now();
    app.app
        .store
        .insert_session(&latchkey::store::SessionRecord {
            session_hash: vec![hash; 32],
            sid: format!("sid-{hash}"),
            user_sub: sub.to_owned(),
            auth_time: now,
            amr: "pwd".into(),
            created_at: now,
            expires_at: now + 3600,
        })
        .await
        .unwrap();
}

async fn session_exists(app: &TestApp, hash: u8) -> bool {
    app.app
        .store
        .get_session(&[hash; 32], app.app.now())
        .await
        .unwrap()
        .is_some()
}

/// A server with the password grant on, a client registered for it (and for refresh tokens),
/// and the users alice and bob (their admin API records).
async fn setup(backend: Backend) -> (TestApp, TestClient, Value, Value) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_ENABLE_PASSWORD_GRANT", "true")]),
    )
    .await;
    let client = machine_client(
        &app.create_client(json!({
            "client_name": "Legacy app",
            "grant_types": ["password", "refresh_token"],
            "scope": "openid offline_access",
        }))
        .await,
    );
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    (app, client, alice, bob)
}

/// Password grant for `username`; returns (status, body).
async fn password_grant(app: &TestApp, client: &TestClient, username: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", PASSWORD),
        ("scope", "openid offline_access"),
    ];
    let (status, body, _) = app.token(client, &form).await;
    (status, body)
}

async fn disabling_a_user_ends_its_sessions_and_refresh_families(backend: Backend) {
    let (app, client, alice, bob) = setup(backend).await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 1).await;
    insert_session(&app, sub, 2).await;
    insert_session(&app, bob["sub"].as_str().unwrap(), 3).await;
    let (status, tokens) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, bob_tokens) = password_grant(&app, &client, "bob").await;

    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["disabled"], true);
    assert!(!session_exists(&app, 1).await);
    assert!(!session_exists(&app, 2).await);
    assert!(
        session_exists(&app, 3).await,
        "other users keep their sessions"
    );
    let (status, body) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 400, "a disabled user cannot log in: {body}");
    let (status, _) = refresh(
        &app,
        &client,
        bob_tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "other users keep their tokens");

    // Re-enabled, the user can log in again (the old family stays revoked).
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["disabled"], false);
    let (status, _) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(status, 400);
}

/// Requiring a password reset distrusts the password: the user's sessions and token families
/// end at once (as disabling does), other users keep theirs, and the next login must choose
/// a new password.
async fn requiring_a_password_reset_ends_sessions_and_families(backend: Backend) {
    let (app, client, alice, bob) = setup(backend).await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 11).await;
    insert_session(&app, bob["sub"].as_str().unwrap(), 12).await;
    let (status, tokens) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 200, "{tokens}");
    let (_, bob_tokens) = password_grant(&app, &client, "bob").await;
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password_reset_required": true})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert!(!session_exists(&app, 11).await, "her session ended");
    assert!(session_exists(&app, 12).await, "other users keep theirs");
    let (status, body) = refresh(
        &app,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 400, "her token family ended: {body}");
    let (status, _) = refresh(
        &app,
        &client,
        bob_tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "other users keep their tokens");
    let (status, body) = password_grant(&app, &client, "alice").await;
    assert_eq!(status, 400, "a new password first: {body}");
}

async fn a_new_password_ends_the_users_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.create_user("alice").await;
    let sub = alice["sub"].as_str().unwrap();
    insert_session(&app, sub, 7).await;
    let before = app
        .app
        .store
        .get_user(sub)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/admin/users/{sub}"),
            Some(&json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_no_password(&patched, "password patch");
    assert!(!patched.to_string().contains("a brand new password"));
    assert!(!session_exists(&app, 7).await);
    let after = app.app.store.get_user(sub).await.unwrap().unwrap();
    assert_ne!(after.password_hash, before);
    assert!(after.password_hash.starts_with("$argon2id$"));
    assert!(!after.disabled);
}

async fn signing_keys_are_listed_and_rotated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, before) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200);
    let keys = before["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, vec!["ES256", "EdDSA", "RS256"]);
    assert!(
        keys.iter()
            .all(|k| k["active"] == true && k["retired_at"].is_null())
    );
    assert!(!before.to_string().contains("private"));
    let old_kids: Vec<String> = keys
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();

    let (status, after) = app.admin(Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(status, 200, "{after}");
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 6, "{after}");
    for alg in ["ES256", "EdDSA", "RS256"] {
        let of_alg: Vec<&Value> = keys.iter().filter(|k| k["alg"] == alg).collect();
        assert_eq!(of_alg.len(), 2, "{alg}");
        let active: Vec<&&Value> = of_alg.iter().filter(|k| k["active"] == true).collect();
        assert_eq!(active.len(), 1, "{alg}");
        assert!(
            !old_kids.contains(&active[0]["kid"].as_str().unwrap().to_owned()),
            "{alg}: a new key signs"
        );
    }
    let (_, listed) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(listed, after);
    // The retired keys stay in JWKS for tokens they signed.
    let jwks_uri = app.discovery().await["jwks_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = fetch_json(app.http.get(jwks_uri)).await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    for kid in &old_kids {
        assert!(published.contains(&kid.as_str()), "{kid} still in JWKS");
    }
}

/// A wrong method on a real admin path is answered like any other unauthenticated request
/// (401), so the `Allow` header of a 405 cannot map the admin API for a stranger; with the
/// token it is a JSON 405.
async fn wrong_methods_do_not_reveal_admin_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        ("POST", "/admin/users/x"),
        ("DELETE", "/admin/keys"),
        ("PUT", "/admin/events"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert!(r.headers().get("allow").is_none());
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    // Outside the admin API a wrong method is a JSON 405 too.
    let r = app.http.put(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// Guessing the admin token: a hundred wrong tokens are free, then back-offs, and a locked address
/// waits even with the right token. Requests without a token do not count, and another
/// address is not affected (addresses told apart through a trusted proxy's X-Forwarded-For).
async fn wrong_admin_tokens_are_throttled_per_address(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]),
    )
    .await;
    let call = |token: Option<&'static str>, from: &'static str| {
        let mut request = app
            .http
            .get(app.url("/admin/clients"))
            .header("x-forwarded-for", from);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    const GUESSER: &str = "198.51.100.7";
    const OPERATOR: &str = "192.0.2.10";
    // No token at all: refused, never counted.
    for _ in 0..30 {
        assert_eq!(call(None, GUESSER).await.status(), 401);
    }
    assert_eq!(call(Some(ADMIN_TOKEN), GUESSER).await.status(), 200);
    // A hundred free failures, back-offs of 1..8 s waited out, and at the 105th 16 s.
    for i in 0..105 {
        let r = call(Some("not-the-admin-token-at-all"), GUESSER).await;
        assert_eq!(r.status(), 401, "guess {i}");
        if i >= 100 {
            app.clock.advance(9);
        }
    }
    app.clock.advance(-9);
    let locked = call(Some(ADMIN_TOKEN), GUESSER).await;
    assert_eq!(locked.status(), 429, "even the right token waits");
    assert!(locked.headers().contains_key("retry-after"));
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    // Another address is not held up.
    assert_eq!(call(Some(ADMIN_TOKEN), OPERATOR).await.status(), 200);
    app.clock.advance(17);
    assert_eq!(call(Some(ADMIN_TOKEN), GUESSER).await.status(), 200);
}
