//! `response_mode=form_post` (OAuth 2.0 Form Post Response Mode): the authorization response,
//! success or error, arrives as a page whose form POSTs the parameters to the redirect URI,
//! submitted by a script from `/static` (no inline script under the CSP), or by its button.

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, Step, TestClient, authorize_params, code_form, hidden_field,
    spawn_app_with_alice,
};

both_backends!(
    a_code_is_posted_to_the_client,
    errors_are_posted_too,
    form_post_pages_escape_what_they_carry,
);

/// Checks a form_post page: the form, its target and the fields it posts.
fn posted_fields(page: &Step, client: &TestClient) -> std::collections::HashMap<String, String> {
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let body = &page.body;
    assert!(
        body.contains(&format!(
            r#"<form method="post" action="{}" id="form-post">"#,
            client.redirect_uri
        )),
        "{body}"
    );
    assert!(body.contains(r#"<script src="/static/form_post.js"></script>"#));
    assert_eq!(body.matches("<script").count(), 1, "no inline script");
    assert!(!body.contains("show-password.js"), "no password field here");
    assert!(
        body.contains(r#"<button type="submit">"#),
        "works without scripts"
    );
    ["code", "state", "iss", "error", "error_description"]
        .into_iter()
        .filter_map(|name| hidden_field(body, name).map(|v| (name.to_owned(), v)))
        .collect()
}

async fn a_code_is_posted_to_the_client(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let step = browser
        .authorize_with(
            &client,
            "openid",
            &[("state", "fp-1"), ("response_mode", "form_post")],
        )
        .await;
    let step = browser
        .login(step.location.as_deref().unwrap(), "alice", PASSWORD)
        .await;
    let (_, answer) = browser
        .consent(step.location.as_deref().unwrap(), "allow")
        .await;
    let fields = posted_fields(&answer, &client);
    assert_eq!(fields["state"], "fp-1");
    assert_eq!(fields["iss"], app.base);
    let (status, body, _) = app
        .token(&client, &code_form(&client, &fields["code"], None))
        .await;
    assert_eq!(status, 200, "the posted code is a real one: {body}");
    // The next request of the signed-in user answers at once, again by form.
    let again = browser
        .authorize_with(&client, "openid", &[("response_mode", "form_post")])
        .await;
    assert!(posted_fields(&again, &client).contains_key("code"));
    let script = browser.get("/static/form_post.js").await;
    assert_eq!(script.status, 200);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("submit()"));
    let doc = app.discovery().await;
    assert_eq!(
        doc["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
}

async fn errors_are_posted_too(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    for (extra, error) in [
        (("scope", "openid not-registered"), "invalid_scope"),
        (("prompt", "none"), "login_required"),
    ] {
        let mut params = authorize_params(
            &client,
            "openid",
            &[("state", "fp-2"), ("response_mode", "form_post")],
        );
        params.retain(|(k, _)| *k != extra.0);
        params.push(extra);
        let page = browser.authorize(&params).await;
        let fields = posted_fields(&page, &client);
        assert_eq!(fields["error"], error);
        assert_eq!(fields["state"], "fp-2");
        assert_eq!(fields["iss"], app.base);
    }
    // Denying consent is posted as access_denied.
    let step = browser
        .authorize_with(&client, "openid", &[("response_mode", "form_post")])
        .await;
    let step = browser
        .login(step.location.as_deref().unwrap(), "alice", PASSWORD)
        .await;
    let (_, answer) = browser
        .consent(step.location.as_deref().unwrap(), "deny")
        .await;
    assert_eq!(posted_fields(&answer, &client)["error"], "access_denied");
    // An unsupported mode is refused by query, the one mode every client understands.
    let refused = browser
        .authorize_with(&client, "openid", &[("response_mode", "fragment")])
        .await;
    assert_eq!(refused.status, 303);
    assert!(refused.location.unwrap().contains("error=invalid_request"));
}

async fn form_post_pages_escape_what_they_carry(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let state = r#""><script>alert(1)</script>"#;
    let page = browser
        .authorize_with(
            &client,
            "openid",
            &[
                ("state", state),
                ("prompt", "none"),
                ("response_mode", "form_post"),
            ],
        )
        .await;
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    let fields = posted_fields(&page, &client);
    assert_eq!(fields["error"], "login_required");
}
