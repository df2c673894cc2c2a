//! Users: created, read, listed, patched and deleted without the password ever shown;
//! invalid requests refused; usernames normalised (NFKC, one script) at creation and rename.

use reqwest::Method;
use serde_json::{Value, json};

use super::assert_no_password;
use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, AdminAnswer, AdminBody, Backend, Browser, PASSWORD, TestClient, pkce_pair,
    pkce_params, spawn_app,
};

both_backends!(
    users_are_created_read_listed_patched_and_deleted,
    invalid_user_requests_are_refused,
    confusable_usernames_are_refused_or_normalised,
    a_username_stored_before_normalisation_still_logs_in,
);

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

    let (status, mut shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    assert_eq!(status, 200);
    // One user's answer also lists the upstream identities linked to it.
    assert_eq!(
        shown.as_object_mut().unwrap().remove("identities"),
        Some(serde_json::json!([]))
    );
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
    let (_, mut shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    shown.as_object_mut().unwrap().remove("identities");
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
    let (_, mut shown) = app
        .admin(Method::GET, &format!("/admin/users/{sub}"), None)
        .await;
    shown.as_object_mut().unwrap().remove("identities");
    assert_eq!(shown, alice);
    let (_, list) = app.admin(Method::GET, "/admin/users", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
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
        mfa_required: false,
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
