//! The pages a person sees: login, consent and errors. Plain HTML from askama templates,
//! one stylesheet, no JavaScript. Every form carries a CSRF token that is a MAC over the
//! interaction id and the browser's binding cookie (and, for consent, the session id), so a
//! form only works in the browser, and for the session, it was rendered for.

pub mod account;
pub mod consent;
pub mod login;
pub mod logout;
pub mod password;
pub mod text;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::App;
use crate::authorize::{AuthorizeError, Decision, Pending};
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError};
use axum_extra::extract::cookie::CookieJar;
use text::Text;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub t: &'a Text,
    /// Where the form posts: `/login` (an authorization request) or `/account/login`.
    pub action: &'a str,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub t: &'a Text,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub t: &'a Text,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

/// Renders a template as an HTML response with the given status; pages are never cached.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An error page for a protocol error that cannot go back to the client.
pub fn error_page(t: &Text, err: &OAuthError) -> Response {
    crate::http::error::log_cause(err);
    let status = match err.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = html(
        status,
        &ErrorPage {
            t,
            message: &err.description,
            code: Some(err.code.as_str()),
        },
    );
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The page shown when an interaction is unknown, expired, or belongs to another browser.
pub fn expired_page(t: &Text) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        &ErrorPage {
            t,
            message: t.error_expired,
            code: None,
        },
    )
}

/// The pending interaction `interaction`, opened for this browser, with the browser's
/// binding cookie value; or the page to show instead (expired, or an error).
pub async fn pending_or_page<'j>(
    app: &App,
    jar: &'j CookieJar,
    interaction: &str,
) -> Result<(Pending, &'j str), Response> {
    let binding = crate::http::cookies::read(jar, crate::http::cookies::binding_name(&app.config));
    match crate::authorize::load_pending(app, interaction, binding).await {
        Ok(Some(p)) => Ok((p, binding.unwrap_or_default())),
        Ok(None) => Err(expired_page(&text::EN)),
        Err(e) => Err(error_page(&text::EN, &e.into())),
    }
}

/// Turns the authorization pipeline's answer into a response.
pub fn render_decision(t: &Text, result: Result<Decision, AuthorizeError>) -> Response {
    match result {
        Ok(Decision::Redirect(url)) | Err(AuthorizeError::Redirect(url)) => {
            Redirect::to(&url).into_response()
        }
        Ok(Decision::Login { interaction_id }) => {
            Redirect::to(&format!("{}?interaction={interaction_id}", paths::LOGIN)).into_response()
        }
        Ok(Decision::Consent { interaction_id }) => {
            Redirect::to(&format!("{}?interaction={interaction_id}", paths::CONSENT))
                .into_response()
        }
        Err(AuthorizeError::Page(err)) => error_page(t, &err),
    }
}

/// The CSRF token of a form: a MAC binding it to its purpose, the interaction, the browser
/// and (for consent) the session.
pub fn csrf_token(app: &App, purpose: &str, interaction: &str, binding: &str, sid: &str) -> String {
    app.hasher.mac_parts(&[
        purpose.as_bytes(),
        interaction.as_bytes(),
        binding.as_bytes(),
        sid.as_bytes(),
    ])
}

pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| crate::crypto::constant_time_eq(expected.as_bytes(), p.as_bytes()))
}
