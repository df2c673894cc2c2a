//! Upstreams in `latchkey apply`: declared with their secret as `env:NAME` (masked in the
//! plan, sealed at rest), applied once, found unchanged the second time, updated field by
//! field (a changed secret is noticed without showing it), pruned only with `--prune`, and
//! checked as the admin API checks them.

use latchkey::manage::apply::{ApplyFile, ApplyOptions, apply};
use reqwest::Method;
use serde_json::json;

use super::{FakeUpstream, Twist, spawn, upstream_flow};
use crate::both_backends;
use crate::helpers::{Backend, Browser, TestApp};

both_backends!(
    upstreams_are_applied_once_updated_and_pruned,
    upstream_entries_are_checked_as_the_admin_api_checks_them,
);

const SECRET: &str = "upstream-secret-123";

fn env(name: &str) -> Option<String> {
    match name {
        "CORP_SECRET" => Some(SECRET.to_owned()),
        "NEW_SECRET" => Some("another-upstream-secret-456".to_owned()),
        _ => None,
    }
}

fn file(issuer: &str, display_name: &str, secret_var: &str) -> String {
    format!(
        r#"
[[user]]
username = "alice"

[[upstream]]
id = "corp"
display_name = "{display_name}"
kind = "oidc"
issuer = "{issuer}"
client_id = "latchkey"
client_secret = "env:{secret_var}"
scope = "openid email profile"
create_users = true
"#
    )
}

async fn run(app: &TestApp, text: &str, dry_run: bool, prune: bool) -> Result<String, String> {
    let parsed = ApplyFile::parse(text).map_err(|e| e.to_string())?;
    apply(&app.app, &parsed, ApplyOptions { dry_run, prune }, &env)
        .await
        .map(|applied| applied.plan.to_string())
        .map_err(|e| e.to_string())
}

async fn upstreams_are_applied_once_updated_and_pruned(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    let text = file(&upstream.base, "Corp", "CORP_SECRET");
    let planned = run(&app, &text, true, false).await.unwrap();
    assert!(planned.contains("+ create upstream corp"), "{planned}");
    assert!(planned.contains("(from env:CORP_SECRET)"), "{planned}");
    assert!(!planned.contains(SECRET), "the secret is masked: {planned}");
    let (_, none) = app.admin(Method::GET, "/admin/upstreams", None).await;
    assert_eq!(none["items"], json!([]), "a dry run changes nothing");

    let applied = run(&app, &text, false, false).await.unwrap();
    assert!(applied.contains("+ create upstream corp"), "{applied}");
    let (status, corp) = app.admin(Method::GET, "/admin/upstreams/corp", None).await;
    assert_eq!(status, 200, "{corp}");
    assert_eq!(corp["display_name"], "Corp");
    assert!(!corp.to_string().contains(SECRET));
    assert_eq!(app.events("kind=upstream_created").await.len(), 1);
    // The applied upstream works: the sealed secret is the one the upstream checks.
    let outcome = upstream_flow(&Browser::new(&app), &client, "corp", false).await;
    assert!(outcome.query.contains_key("code"), "{:?}", outcome.query);

    let again = run(&app, &text, false, false).await.unwrap();
    assert!(again.contains("No changes"), "idempotent: {again}");

    let renamed = run(
        &app,
        &file(&upstream.base, "Corp SSO", "CORP_SECRET"),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(renamed.contains("~ update upstream corp"), "{renamed}");
    assert!(renamed.contains("display_name"), "{renamed}");
    assert!(
        !renamed.contains("client_secret"),
        "the same secret: {renamed}"
    );
    let rotated = run(
        &app,
        &file(&upstream.base, "Corp SSO", "NEW_SECRET"),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(rotated.contains("client_secret"), "{rotated}");
    assert!(!rotated.contains("another-upstream-secret"), "{rotated}");
    assert_eq!(app.events("kind=upstream_updated").await.len(), 2);

    // Without --prune an upstream the file leaves out stays; with it, it goes (and its links).
    let without = "[[user]]\nusername = \"alice\"\n";
    let kept = run(&app, without, false, false).await.unwrap();
    assert!(!kept.contains("upstream"), "{kept}");
    let pruned = run(&app, without, false, true).await.unwrap();
    assert!(pruned.contains("- delete upstream corp"), "{pruned}");
    let (status, _) = app.admin(Method::GET, "/admin/upstreams/corp", None).await;
    assert_eq!(status, 404);
    assert_eq!(app.events("kind=upstream_deleted").await.len(), 1);
}

async fn upstream_entries_are_checked_as_the_admin_api_checks_them(backend: Backend) {
    let (app, _) = spawn(backend).await;
    let upstream = FakeUpstream::start(Twist::None).await;
    let base = upstream.base.clone();
    let refused = |text: String| {
        let app = &app;
        async move {
            let error = run(app, &text, false, false).await.unwrap_err();
            let (_, listed) = app.admin(Method::GET, "/admin/upstreams", None).await;
            assert_eq!(listed["items"], json!([]), "nothing applied for: {error}");
            error
        }
    };
    let clear = file(&base, "Corp", "CORP_SECRET").replace("env:CORP_SECRET", "plain-secret");
    assert!(refused(clear).await.contains("env:NAME"));
    let unset = file(&base, "Corp", "UNSET_VARIABLE");
    assert!(refused(unset).await.contains("UNSET_VARIABLE"));
    let no_secret =
        file(&base, "Corp", "CORP_SECRET").replace("client_secret = \"env:CORP_SECRET\"\n", "");
    assert!(refused(no_secret).await.contains("client_secret"));
    let plain_http = file("http://id.example.com", "Corp", "CORP_SECRET");
    assert!(refused(plain_http).await.contains("issuer"));
    let bad_id = file(&base, "Corp", "CORP_SECRET").replace("id = \"corp\"", "id = \"Corp Inc\"");
    refused(bad_id).await;
    let twice = format!(
        "{}{}",
        file(&base, "Corp", "CORP_SECRET"),
        file(&base, "Corp", "CORP_SECRET").replace("[[user]]\nusername = \"alice\"\n", "")
    );
    assert!(refused(twice).await.contains("declared twice"));
    let unknown = file(&base, "Corp", "CORP_SECRET").replace("create_users", "create_everything");
    refused(unknown).await;
}
