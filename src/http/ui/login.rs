//! `GET /login` shows the form; `POST /login` checks the credentials, starts a new session
//! (a fresh id on every login, so a planted cookie cannot be fixed) and resumes the
//! authorization request.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::text::{self, Text};
use super::{
    LoginPage, csrf_matches, csrf_token, error_page, expired_page, html, pending_or_page,
    render_decision,
};
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::session;
use crate::app::App;
use crate::audit::Event;
use crate::authorize::{self, Pending};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::form::form_params;
use crate::protocol::OAuthError;
use crate::protocol::form::Params;
use crate::store::SessionRecord;

const PURPOSE: &str = "login";

fn render_form(
    app: &App,
    t: &Text,
    pending: &Pending,
    binding: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(app, PURPOSE, &pending.interaction_id, binding, "");
    let client_name = display_name(&pending.client);
    html(
        status,
        &LoginPage {
            t,
            action: crate::protocol::discovery::paths::LOGIN,
            client_name,
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            username,
            error,
        },
    )
}

pub fn display_name(client: &crate::store::ClientRecord) -> &str {
    if client.metadata.client_name.is_empty() {
        &client.client_id
    } else {
        &client.metadata.client_name
    }
}

pub async fn show(State(app): State<App>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let interaction = params.get("interaction").unwrap_or_default();
    let (pending, binding) = match pending_or_page(&app, &jar, interaction).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let hint = pending.request.login_hint.as_deref().unwrap_or_default();
    render_form(&app, t, &pending, binding, hint, None, StatusCode::OK)
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(&text::EN, &e),
    };
    let interaction = params.get("interaction").unwrap_or_default();
    let (pending, binding) = match pending_or_page(&app, &jar, interaction).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let expected = csrf_token(&app, PURPOSE, &pending.interaction_id, binding, "");
    if !csrf_matches(&expected, params.get("csrf_token")) {
        return expired_page(t);
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let outcome = login::check_credentials(
        &app,
        username,
        password,
        ip,
        Some(&pending.client.client_id),
    )
    .await;
    let user = match outcome {
        Ok(LoginOutcome::Success(user)) => user,
        Ok(LoginOutcome::Failed) => {
            return render_form(
                &app,
                t,
                &pending,
                binding,
                username,
                Some(t.login_failed),
                StatusCode::UNAUTHORIZED,
            );
        }
        Ok(LoginOutcome::ClientLeft) => return client_left(),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let mut response = render_form(
                &app,
                t,
                &pending,
                binding,
                username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            return response;
        }
        Err(e) => return error_page(t, &e),
    };
    let succeeded = login::succeeded(&user.sub, ip, Some(&pending.client.client_id));
    if user.password_reset_required {
        crate::audit::record(&app, succeeded).await;
        return super::password::render(
            &app,
            t,
            &pending.interaction_id,
            binding,
            &user,
            None,
            StatusCode::OK,
        );
    }
    let (jar, session) = match begin_session(&app, jar, &user.sub, Some(succeeded)).await {
        Ok(v) => v,
        Err(e) => return error_page(t, &e),
    };
    let decision = authorize::continue_after_login(&app, &pending, &session).await;
    (jar, render_decision(t, decision)).into_response()
}

/// Starts a new session for `sub` after a successful login, replacing (and deleting) any
/// session this browser had: a fresh id on every login, so a planted cookie cannot be fixed.
/// `event` (the login's audit event) is stored with the session, and logged once it is.
pub async fn begin_session(
    app: &App,
    jar: CookieJar,
    sub: &str,
    event: Option<Event>,
) -> Result<(CookieJar, SessionRecord), OAuthError> {
    if let Some(old) = cookies::read(&jar, cookies::session_name(&app.config)) {
        app.store.delete_session(&app.hasher.hash(old)).await?;
    }
    let event = event.map(|e| crate::audit::row(app, e));
    let (cookie_value, session) = session::start(
        app.store.as_ref(),
        &app.hasher,
        sub,
        "pwd",
        (app.now(), app.config.session_ttl),
        event.as_ref(),
    )
    .await?;
    if let Some(event) = &event {
        crate::audit::log(event);
    }
    Ok((
        jar.add(cookies::session_cookie(&app.config, cookie_value)),
        session,
    ))
}

/// The answer to a request whose client has gone: nobody reads it.
pub fn client_left() -> Response {
    StatusCode::REQUEST_TIMEOUT.into_response()
}
