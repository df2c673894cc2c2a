//! Client registration and management (RFC 7591 / RFC 7592): register, read, list with a
//! cursor, replace and delete; secrets shown once and rotated; invalid metadata refused with
//! the RFC 7591 errors; redirect URIs only in canonical form.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, AdminAnswer, AdminBody, Backend, client_credentials, machine_client, spawn_app,
};

both_backends!(
    clients_are_registered_read_replaced_and_deleted,
    client_lists_are_paginated_with_a_cursor,
    rotating_a_client_secret_retires_the_old_one,
    public_clients_get_no_secret,
    invalid_client_metadata_is_refused_with_rfc7591_errors,
    non_canonical_redirect_uris_and_user_information_are_refused,
    replacing_a_client_checks_its_id_and_kind,
);

fn assert_no_secret_fields(value: &Value, what: &str) {
    assert!(value.get("client_secret").is_none(), "{what}: {value}");
    assert!(
        value.get("client_secret_expires_at").is_none(),
        "{what}: {value}"
    );
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
