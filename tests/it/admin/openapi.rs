//! `GET /admin/openapi.json`: the OpenAPI 3.1 description of the admin API, behind the admin
//! token, describing exactly the routes the router has: every path of the router is in the
//! document and every documented path is in the router; on each path every documented
//! method reaches a handler and every other method is refused with 405.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, AdminBody, Backend, spawn_app};

both_backends!(
    the_openapi_document_is_behind_the_token_and_describes_every_admin_route,
    every_admin_write_refuses_a_json_body_that_is_not_an_object,
);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The paths of the admin router, read from its `Debug` output (axum has no other way to
/// list a router's routes): each route appears as `RouteId(n): "/path"`. If axum changes that
/// format this finds nothing, and the assertion that the router has paths fails.
fn router_paths() -> BTreeSet<String> {
    let text = format!("{:?}", latchkey::http::admin::router());
    let mut paths = BTreeSet::new();
    for (at, _) in text.match_indices("RouteId(") {
        let rest = &text[at + "RouteId(".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        // Only the path table maps an id straight to a string: `RouteId(3): "/keys"`.
        let Some(quoted) = rest[digits..].strip_prefix("): \"") else {
            continue;
        };
        let path = &quoted[..quoted.find('"').unwrap()];
        // The fallback's own routes: axum's private catch-all names, and `/` (checked to be
        // the fallback below).
        if !path.contains("__private__") && path != "/" {
            paths.insert(format!("/admin{path}"));
        }
    }
    paths
}

/// A documented path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("no-such-id");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

async fn the_openapi_document_is_behind_the_token_and_describes_every_admin_route(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    // Without the token: the same refusal as any admin path, so it reveals nothing.
    let refused = app
        .admin_request(Method::GET, "/admin/openapi.json", None, AdminBody::None)
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let unknown = app
        .admin_request(Method::GET, "/admin/no-such-thing", None, AdminBody::None)
        .await;
    assert_eq!(refused.text, unknown.text);
    let root = app
        .admin_request(Method::GET, "/admin/", Some(ADMIN_TOKEN), AdminBody::None)
        .await;
    assert_eq!(root.status, 404, "{}", root.text);
    assert!(root.text.contains("not_found"), "{}", root.text);

    let answer = app
        .admin_request(
            Method::GET,
            "/admin/openapi.json",
            Some(ADMIN_TOKEN),
            AdminBody::None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let doc: Value = answer.expect_json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );

    // The router's paths and the document's are the same set.
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = router_paths();
    assert!(
        routed.len() >= 10,
        "the router's paths could not be read: {routed:?}"
    );
    assert_eq!(
        routed, documented,
        "routes in the router but not in the document, or the reverse"
    );

    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = concrete(path);
        for method in METHODS {
            let operation = &item[method];
            let answer = app
                .admin_request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &url,
                    Some(ADMIN_TOKEN),
                    AdminBody::Raw {
                        content_type: Some("application/json"),
                        text: "{}",
                    },
                )
                .await;
            if operation.is_null() {
                assert_eq!(
                    answer.status, 405,
                    "{method} {path} is not documented: {}",
                    answer.text
                );
                continue;
            }
            assert_ne!(
                answer.status, 405,
                "{method} {path} is documented: {}",
                answer.text
            );
            assert!(
                !answer.text.contains("no such admin endpoint"),
                "{method} {path} is documented: {}",
                answer.text
            );
            assert!(answer.status < 500, "{method} {path}: {}", answer.text);
            let responses = &operation["responses"];
            assert!(
                responses
                    .as_object()
                    .unwrap()
                    .contains_key(&answer.status.to_string()),
                "{method} {path} answered {}, which it does not document: {}",
                answer.status,
                answer.text
            );
            for status in ["401", "429"] {
                assert!(!responses[status].is_null(), "{method} {path}: {status}");
            }
            // Every answer with a body has a schema.
            for (status, response) in responses.as_object().unwrap() {
                if status != "204" {
                    assert!(
                        !response["content"]["application/json"]["schema"].is_null(),
                        "{method} {path} {status}: no schema"
                    );
                }
            }
        }
    }
}

/// Every admin write (each documented POST, PUT and PATCH, found in the document so that a
/// new route is walked too) takes a JSON object: an array (even one whose items would fill a
/// struct's fields in order), a string, a number, a boolean or `null` is a 400 with the
/// resource's error (`invalid_client_metadata` for client metadata, RFC 7591 §3.2.2;
/// `invalid_request` everywhere else), and nothing is written.
async fn every_admin_write_refuses_a_json_body_that_is_not_an_object(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("alice").await;
    let sub = user["sub"].as_str().unwrap().to_owned();
    let client = app
        .create_client(serde_json::json!({
            "client_name": "Machine",
            "grant_types": ["client_credentials"],
            "scope": "api.read",
        }))
        .await;
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let (_, doc) = app.admin(Method::GET, "/admin/openapi.json", None).await;
    let state = async || {
        let (_, users) = app.admin(Method::GET, "/admin/users", None).await;
        let (_, clients) = app.admin(Method::GET, "/admin/clients", None).await;
        let (_, keys) = app.admin(Method::GET, "/admin/keys", None).await;
        (users, clients, keys)
    };
    let before = state().await;
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = path
            .replace("{client_id}", &client_id)
            .replace("{sub}", &sub);
        let url = concrete(&url);
        for method in ["post", "put", "patch"] {
            if item[method].is_null() {
                continue;
            }
            walked += 1;
            for body in [
                "[]",
                "[3600, 5]",
                r#"["alice", "a password long enough"]"#,
                r#" [{"client_name": "x"}]"#,
                r#""text""#,
                "42",
                "true",
                "null",
            ] {
                let answer = app
                    .admin_request(
                        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                        &url,
                        Some(ADMIN_TOKEN),
                        AdminBody::Raw {
                            content_type: Some("application/json"),
                            text: body,
                        },
                    )
                    .await;
                assert_eq!(
                    answer.status, 400,
                    "{method} {path} {body}: {}",
                    answer.text
                );
                let error: Value = answer.expect_json();
                let metadata = path.starts_with("/admin/clients") && !path.ends_with("/secret");
                let expected = if metadata {
                    "invalid_client_metadata"
                } else {
                    "invalid_request"
                };
                assert_eq!(error["error"], expected, "{method} {path} {body}: {error}");
            }
        }
    }
    assert!(walked >= 7, "the admin writes could not be read: {walked}");
    assert_eq!(state().await, before, "a refused write changed nothing");
}
