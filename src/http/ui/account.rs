//! The account page (`accounts::account`): a signed-in user sees which applications they gave
//! access, with which scopes, and can withdraw that access. Without a session the page shows
//! a login form of its own (`/account/login`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::text::{self, Text};
use super::{
    LoginPage, PageForm, ScopeLine, begin_session, client_left, csrf_matches, csrf_token,
    error_page, expired_page, html, with_retry_after,
};
use crate::accounts::account;
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::password_change::TicketScope;
use crate::accounts::session::{self, Session};
use crate::app::App;
use crate::crypto::random_secret;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::{OAuthError, Scope};

use crate::protocol::discovery::paths::{ACCOUNT as PATH, ACCOUNT_LOGIN as LOGIN_PATH};
const LOGIN_PURPOSE: &str = "account-login";
const PURPOSE: &str = "account";

pub struct AppLine {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<ScopeLine>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    username: &'a str,
    csrf_token: &'a str,
    apps: Vec<AppLine>,
}

async fn current_session(app: &App, jar: &CookieJar) -> Result<Option<Session>, OAuthError> {
    session::current(app, cookies::read(jar, cookies::session_name(&app.config))).await
}

/// The login form of the account page, bound to this browser's binding cookie (set here when
/// the browser has none).
fn login_form(
    app: &App,
    jar: CookieJar,
    t: &Text,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (jar, binding) = match cookies::read(&jar, cookies::binding_name(&app.config)) {
        Some(b) => {
            let b = b.to_owned();
            (jar, b)
        }
        None => {
            let b = random_secret();
            (jar.add(cookies::binding_cookie(&app.config, b.clone())), b)
        }
    };
    let csrf = csrf_token(app, LOGIN_PURPOSE, "", &binding, "");
    let page = html(
        status,
        &LoginPage {
            upstreams: Vec::new(),
            t,
            action: LOGIN_PATH,
            client_name: t.account_sign_in,
            interaction: "",
            csrf_token: &csrf,
            username,
            error,
        },
    );
    (jar, page).into_response()
}

pub async fn show(State(app): State<App>, jar: CookieJar) -> Response {
    let t = &text::EN;
    let session = match current_session(&app, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return login_form(&app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e),
    };
    let overview = match account::overview(&app, &session).await {
        Ok(Some(o)) => o,
        Ok(None) => return login_form(&app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e),
    };
    let apps = overview
        .granted
        .into_iter()
        .map(|granted| AppLine {
            scopes: Scope::parse_lenient(&granted.scope)
                .iter()
                .map(|s| ScopeLine {
                    name: s.to_owned(),
                    description: t.describe_scope(s),
                })
                .collect(),
            client_id: granted.client_id,
            name: granted.name,
        })
        .collect();
    let csrf = csrf_token(&app, PURPOSE, "", "", &session.sid);
    html(
        StatusCode::OK,
        &AccountPage {
            t,
            username: &overview.username,
            csrf_token: &csrf,
            apps,
        },
    )
}

pub async fn login(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = &text::EN;
    let PageForm { params, jar } = form;
    let Some(binding) = cookies::read(&jar, cookies::binding_name(&app.config)).map(str::to_owned)
    else {
        return expired_page(t);
    };
    if !csrf_matches(
        &csrf_token(&app, LOGIN_PURPOSE, "", &binding, ""),
        params.get("csrf_token"),
    ) {
        return expired_page(t);
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    match login::check_credentials(&app, username, password, ip, None).await {
        Ok(LoginOutcome::Success(user)) => {
            let succeeded = login::succeeded(&user.sub, ip, None);
            if user.password_reset_required {
                crate::audit::record(&app, succeeded).await;
                let scope = TicketScope {
                    interaction: "",
                    binding: &binding,
                };
                return super::password::render(&app, t, &scope, &user, None, StatusCode::OK);
            }
            match begin_session(&app, jar, &user.sub, Some(succeeded)).await {
                Ok((jar, _)) => (jar, Redirect::to(PATH)).into_response(),
                Err(e) => error_page(t, &e),
            }
        }
        Ok(LoginOutcome::Failed) => login_form(
            &app,
            jar,
            t,
            username,
            Some(t.login_failed),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(LoginOutcome::ClientLeft) => client_left(),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let response = login_form(
                &app,
                jar,
                t,
                username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            );
            with_retry_after(response, retry_after)
        }
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/consents`: withdraw what the user granted one client.
pub async fn withdraw(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = &text::EN;
    let PageForm { params, jar } = form;
    let session = match current_session(&app, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to(PATH).into_response(),
        Err(e) => return error_page(t, &e),
    };
    if !csrf_matches(
        &csrf_token(&app, PURPOSE, "", "", &session.sid),
        params.get("csrf_token"),
    ) {
        return expired_page(t);
    }
    let Some(client_id) = params.get("client_id") else {
        return error_page(t, &OAuthError::invalid_request("client_id is required"));
    };
    match account::withdraw(&app, &session, client_id, ip).await {
        Ok(()) => Redirect::to(PATH).into_response(),
        Err(e) => error_page(t, &e),
    }
}
