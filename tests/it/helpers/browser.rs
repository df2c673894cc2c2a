//! `Browser`: cookies kept, redirects not followed, so that a test sees and checks every hop of
//! a flow. Its flow steps: `authorize_for` (the usual authorization request of a client),
//! `login`, `consent`, and `code_flow`, which walks all of them to the code.

use std::collections::HashMap;
use std::sync::Arc;

use super::{PASSWORD, TestApp, TestClient, hidden_field, pkce_params, query_of};

/// The usual authorization request of `client`: `response_type=code`, its `client_id` and
/// (first) `redirect_uri`, `scope`, then `extra` in order.
pub fn authorize_params<'a>(
    client: &'a TestClient,
    scope: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", scope),
    ];
    params.extend_from_slice(extra);
    params
}

/// A browser: keeps cookies, does not follow redirects, so every hop can be checked.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub http: reqwest::Client,
    /// The browser's cookies (cookies ignore ports, so they hold for every node on
    /// 127.0.0.1).
    pub jar: Arc<reqwest::cookie::Jar>,
}

/// One answer the browser got.
pub struct Step {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Browser { app, http, jar }
    }

    /// The value of the cookie `name` this browser would send to the app.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = url::Url::parse(&self.app.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    pub async fn step(response: reqwest::Response) -> Step {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Step {
            status,
            location,
            body: response.text().await.unwrap(),
            headers,
        }
    }

    pub async fn get(&self, url: &str) -> Step {
        let url = if url.starts_with('/') {
            self.app.url(url)
        } else {
            url.to_owned()
        };
        Self::step(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Step {
        Self::step(
            self.http
                .post(self.app.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET /authorize with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Step {
        let query = serde_urlencoded::to_string(params).unwrap();
        self.get(&format!("/authorize?{query}")).await
    }

    /// GET /authorize with the usual request of `client` for `scope` (`authorize_params`).
    pub async fn authorize_for(&self, client: &TestClient, scope: &str) -> Step {
        self.authorize(&authorize_params(client, scope, &[])).await
    }

    /// `authorize_for` with `extra` parameters after the usual ones.
    pub async fn authorize_with(
        &self,
        client: &TestClient,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> Step {
        self.authorize(&authorize_params(client, scope, extra))
            .await
    }

    /// Where `authorize_for` sends the browser: for a browser without a session, the login
    /// page.
    pub async fn authorize_location(&self, client: &TestClient, scope: &str) -> String {
        self.authorize_for(client, scope).await.location.unwrap()
    }

    /// Submits the login form found at `login_url`.
    pub async fn login(&self, login_url: &str, username: &str, password: &str) -> Step {
        let page = self.get(login_url).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        self.login_form_post(&page.body, username, password).await
    }

    /// Submits a login form already loaded (its page body) with these credentials.
    pub async fn login_form_post(&self, page: &str, username: &str, password: &str) -> Step {
        let interaction = hidden_field(page, "interaction").expect("interaction field");
        let csrf = hidden_field(page, "csrf_token").expect("csrf field");
        self.post_form(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Loads the consent page at `consent_url` and answers it.
    pub async fn consent(&self, consent_url: &str, decision: &str) -> (Step, Step) {
        let page = self.get(consent_url).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let interaction = hidden_field(&page.body, "interaction").expect("interaction field");
        let csrf = hidden_field(&page.body, "csrf_token").expect("csrf field");
        let answer = self
            .post_form(
                "/consent",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", &csrf),
                    ("decision", decision),
                ],
            )
            .await;
        (page, answer)
    }

    /// Runs the whole browser flow (authorize with `state-123` and `nonce-456` → login as
    /// alice → consent if asked → code) and returns the query of the final redirect to the
    /// client.
    pub async fn code_flow(
        &self,
        client: &TestClient,
        scope: &str,
        challenge: Option<&str>,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut rest = vec![("state", "state-123"), ("nonce", "nonce-456")];
        if let Some(c) = challenge {
            rest.extend(pkce_params(c));
        }
        rest.extend_from_slice(extra);
        let mut step = self.authorize_with(client, scope, &rest).await;
        assert_eq!(step.status, 303, "authorize: {}", step.body);
        let mut location = step.location.clone().unwrap();
        if location.starts_with("/login") {
            step = self.login(&location, "alice", PASSWORD).await;
            assert_eq!(step.status, 303, "login: {}", step.body);
            location = step.location.clone().unwrap();
        }
        if location.starts_with("/consent") {
            let (_, answer) = self.consent(&location, "allow").await;
            assert_eq!(answer.status, 303, "consent: {}", answer.body);
            location = answer.location.unwrap();
        }
        assert!(
            location.starts_with(&client.redirect_uri),
            "redirected to {location}"
        );
        query_of(&location)
    }
}
