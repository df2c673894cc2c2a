//! The one way tests call the admin API, whatever serves it: `admin_call` (the admin token, a
//! JSON body, the JSON answer), behind `TestApp::admin`, `ServerProcess::admin` and
//! `Cluster::admin`; and `admin_request` for the tests of the admin API itself, which send
//! no token, a wrong one, or bodies that are not JSON.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{ADMIN_TOKEN, TestApp};

/// `method path` on the server at `base` with the admin token and `body` as JSON; the status
/// and the JSON answer (`Null` when there is none, as for 204).
pub async fn admin_call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map_or(AdminBody::None, AdminBody::Json);
    let answer = admin_request(
        http,
        &format!("{base}{path}"),
        method,
        Some(ADMIN_TOKEN),
        body,
    )
    .await;
    (answer.status, answer.json())
}

/// What an admin request sends as its body.
#[derive(Clone, Copy)]
pub enum AdminBody<'a> {
    None,
    Json(&'a Value),
    /// These bytes, with this `Content-Type` (or none).
    Raw {
        content_type: Option<&'a str>,
        text: &'a str,
    },
}

/// An admin API answer, whole.
pub struct AdminAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl AdminAnswer {
    /// The body as JSON, `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The body as JSON; panics when it is not (every admin answer with a body is JSON).
    pub fn expect_json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not a JSON answer ({}): {:?}", self.status, self.text))
    }
}

/// Any request to `url` with `token` as the bearer token (none with `None`).
pub async fn admin_request(
    http: &reqwest::Client,
    url: &str,
    method: Method,
    token: Option<&str>,
    body: AdminBody<'_>,
) -> AdminAnswer {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        AdminBody::None => request,
        AdminBody::Json(value) => request.json(value),
        AdminBody::Raw { content_type, text } => {
            let request = request.body(text.to_owned());
            match content_type {
                Some(ct) => request.header("content-type", ct),
                None => request,
            }
        }
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    AdminAnswer {
        status,
        headers,
        text: response.text().await.unwrap(),
    }
}

impl TestApp {
    /// `admin_call` on this server.
    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        admin_call(&self.http, &self.base, method, path, body).await
    }

    /// `admin_request` on this server.
    pub async fn admin_request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: AdminBody<'_>,
    ) -> AdminAnswer {
        admin_request(&self.http, &self.url(path), method, token, body).await
    }

    /// `method path` on this server with the admin token and a body that may not be JSON:
    /// `text` with `content_type` (none with `None`). The status, the headers, and the
    /// answer, which must be JSON.
    pub async fn admin_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        text: &str,
    ) -> (u16, HeaderMap, Value) {
        let body = AdminBody::Raw { content_type, text };
        let answer = self
            .admin_request(method, path, Some(ADMIN_TOKEN), body)
            .await;
        let json = answer.expect_json();
        (answer.status, answer.headers, json)
    }

    /// The audit events `GET /admin/events?{query}` lists (newest first).
    pub async fn events(&self, query: &str) -> Vec<Value> {
        let path = format!("/admin/events?{query}");
        let (status, body) = self.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }
}
