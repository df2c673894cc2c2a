//! The account page: a signed-in user sees which applications they gave access, with which
//! scopes, and can withdraw that access. Withdrawing deletes the remembered consent and ends
//! every refresh-token family the user has with that client, so the application has to ask
//! again. Without a session the page shows a login form of its own (`/account/login`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::login::{begin_session, display_name};
use super::text::{self, Text};
use super::{LoginPage, ScopeLine, csrf_matches, csrf_token, error_page, expired_page, html};
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::session;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_secret;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::form::form_params;
use crate::protocol::{OAuthError, Scope};
use crate::store::SessionRecord;

pub const PATH: &str = "/account";
pub const LOGIN_PATH: &str = "/account/login";
pub const CONSENTS_PATH: &str = "/account/consents";
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

async fn current_session(app: &App, jar: &CookieJar) -> Result<Option<SessionRecord>, OAuthError> {
    let cookie = cookies::read(jar, cookies::session_name(&app.config));
    Ok(session::find(app.store.as_ref(), &app.hasher, cookie, app.now()).await?)
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
    let user = match app.store.get_user(&session.user_sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return login_form(&app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e.into()),
    };
    let consents = match app.store.list_consents(&user.sub).await {
        Ok(c) => c,
        Err(e) => return error_page(t, &e.into()),
    };
    let mut apps = Vec::with_capacity(consents.len());
    for consent in consents {
        let name = match app.client(&consent.client_id).await {
            Ok(Some(client)) => display_name(&client).to_owned(),
            Ok(None) => continue,
            Err(e) => return error_page(t, &e.into()),
        };
        let scopes = Scope::parse_lenient(&consent.scope)
            .iter()
            .map(|s| ScopeLine {
                name: s.to_owned(),
                description: t.describe_scope(s),
            })
            .collect();
        apps.push(AppLine {
            client_id: consent.client_id,
            name,
            scopes,
        });
    }
    let csrf = csrf_token(&app, PURPOSE, "", "", &session.sid);
    html(
        StatusCode::OK,
        &AccountPage {
            t,
            username: &user.username,
            csrf_token: &csrf,
            apps,
        },
    )
}

pub async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = &text::EN;
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(t, &e),
    };
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
                return super::password::render(&app, t, "", &binding, &user, None, StatusCode::OK);
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
        Ok(LoginOutcome::ClientLeft) => super::login::client_left(),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let mut response = login_form(
                &app,
                jar,
                t,
                username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/consents`: withdraw what the user granted one client.
pub async fn withdraw(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = &text::EN;
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(t, &e),
    };
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
    let now = app.now();
    let withdrawn = match app.store.delete_consent(&session.user_sub, client_id).await {
        Ok(w) => w,
        Err(e) => return error_page(t, &e.into()),
    };
    // The application loses its refresh tokens too: consent withdrawn ends the families.
    if let Err(e) = app
        .store
        .revoke_grants_for_user(&session.user_sub, Some(client_id), now)
        .await
    {
        return error_page(t, &e.into());
    }
    if withdrawn {
        audit::record(
            &app,
            Event::new(Kind::ConsentWithdrawn)
                .user(&session.user_sub)
                .client(client_id)
                .ip(ip),
        )
        .await;
    }
    Redirect::to(PATH).into_response()
}
