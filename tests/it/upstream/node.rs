//! node-oidc-provider (tests/upstream/provider.mjs, npm `oidc-provider` pinned in its lock
//! file, installed by tests/interop/install.sh) as a real upstream over loopback: the whole
//! flow from a relying party through Latchkey to the upstream and back, as `kind: "oidc"`
//! (discovery, RFC 9207 `iss`, ES256 ID token, userinfo) and as `kind: "oauth2"` with
//! explicit endpoints. Node is required: the test fails, never skips, when it is missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::json;

use super::{spawn, upstream_flow};
use crate::both_backends;
use crate::helpers::{Backend, Browser, jwt_part, redeem};

both_backends!(node_oidc_provider_is_a_real_upstream);

const SECRET: &str = "node-upstream-secret";

/// The node process; killed when dropped.
struct NodeUpstream {
    child: Child,
    base: String,
}

impl Drop for NodeUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeUpstream {
    fn start(oidc_callback: &str, oauth2_callback: &str) -> NodeUpstream {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstream");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "tests/upstream/node_modules is missing: run tests/interop/install.sh (npm ci)"
        );
        let mut child = Command::new("node")
            .current_dir(dir)
            .arg("provider.mjs")
            .arg(oidc_callback)
            .arg(oauth2_callback)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed to run the upstream tests");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // Keep reading, so that a later line does not hit a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("node-oidc-provider did not start: {line:?}"));
        NodeUpstream {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

async fn node_oidc_provider_is_a_real_upstream(backend: Backend) {
    let (app, client) = spawn(backend).await;
    let node = NodeUpstream::start(
        &format!("{}/upstream/node/callback", app.base),
        &format!("{}/upstream/node-oauth2/callback", app.base),
    );
    let (status, answer) = app
        .admin(
            Method::POST,
            "/admin/upstreams",
            Some(
                &json!({"id": "node", "display_name": "Node", "kind": "oidc",
                "issuer": node.base, "client_id": "latchkey", "client_secret": SECRET,
                "create_users": true}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = app
        .admin(
            Method::POST,
            "/admin/upstreams",
            Some(
                &json!({"id": "node-oauth2", "display_name": "Node (OAuth 2.0)",
                "kind": "oauth2", "client_id": "latchkey-oauth2", "client_secret": SECRET,
                "issuer": node.base,
                "authorization_endpoint": format!("{}/auth", node.base),
                "token_endpoint": format!("{}/token", node.base),
                "userinfo_endpoint": format!("{}/me", node.base),
                "subject_claim": "sub", "scope": "openid email profile",
                "create_users": true}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");

    // kind oidc, through the login page's button.
    let browser = Browser::new(&app);
    let outcome = upstream_flow(&browser, &client, "node", true).await;
    assert_eq!(outcome.query["state"], "state-123");
    let code = outcome
        .query
        .get("code")
        .unwrap_or_else(|| panic!("{:?}", outcome.query));
    let (status, tokens) = redeem(&app, &client, code, Some(&outcome.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["idp"], "node");
    // node-oidc-provider releases amr only when a request asks for it by name, so the
    // upstream's values (tested against the fake upstream) are not here.
    assert_eq!(claims["amr"][0], "fed");
    let oidc_sub = claims["sub"].as_str().unwrap().to_owned();
    let (_, user) = app
        .admin(Method::GET, &format!("/admin/users/{oidc_sub}"), None)
        .await;
    assert_eq!(
        user["identities"],
        json!([{"upstream": "node", "subject": "node-user-1"}])
    );
    assert_eq!(user["email"], "node-user@example.com", "from userinfo");
    assert_eq!(user["email_verified"], true);

    // kind oauth2 against the same server, with `upstream=` skipping the login page.
    let outcome = upstream_flow(&Browser::new(&app), &client, "node-oauth2", false).await;
    let code = outcome
        .query
        .get("code")
        .unwrap_or_else(|| panic!("{:?}", outcome.query));
    let (status, tokens) = redeem(&app, &client, code, Some(&outcome.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["idp"], "node-oauth2");
    assert_eq!(
        claims["amr"],
        json!(["fed"]),
        "plain OAuth 2.0 reports no amr"
    );
    assert_ne!(
        claims["sub"], oidc_sub,
        "another upstream's identity is another user (no linking rule)"
    );
}
