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
use crate::accounts::factors::passkey;
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::password_change::TicketScope;
use crate::accounts::session::{self, Session};
use crate::accounts::{account, factors};
use crate::app::App;
use crate::crypto::random_secret;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::{OAuthError, Scope};

use crate::protocol::discovery::paths::{ACCOUNT as PATH, ACCOUNT_LOGIN as LOGIN_PATH};
const LOGIN_PURPOSE: &str = "account-login";
/// The CSRF purpose of the account page's forms and its passkey script.
pub const PURPOSE: &str = "account";

pub struct AppLine {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<ScopeLine>,
}

/// A passkey as the account page lists it.
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
}

pub struct FactorLine {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub last_used: Option<i64>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    username: &'a str,
    csrf_token: &'a str,
    apps: Vec<AppLine>,
    passkeys_enabled: bool,
    passkeys: Vec<PasskeyLine>,
    factors_csrf: &'a str,
    factors: Vec<FactorLine>,
    has_totp: bool,
    /// Linked sign-ins (`identities`): the user's, and the upstreams offered to link.
    identities: Vec<super::identities::IdentityLine>,
    upstreams: Vec<(String, String)>,
}

/// A Unix time as the account page shows it: `2026-12-05 20:41 UTC`.
fn when(unix: i64) -> String {
    match cookie::time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
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
            passkeys: false,
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
    // A user who has (or must have) a second factor uses it here too: a session won with
    // the password alone gets the second-factor step, or the enrolment, first.
    let standing = match factors::standing(&app, &session.user_sub).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return error_page(t, &e.into()),
    };
    if !factors::account_level_met(&standing, &session.amr) {
        if standing.has_second_factor() {
            return super::factors::account_otp_page(&app, t, &session, None, StatusCode::OK);
        }
        return Redirect::to(crate::protocol::discovery::paths::ACCOUNT_TOTP).into_response();
    }
    let overview = match account::overview(&app, &session).await {
        Ok(Some(o)) => o,
        Ok(None) => return login_form(&app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e),
    };
    let listed = match factors::list(&app, &session.user_sub).await {
        Ok(l) => l,
        Err(e) => return error_page(t, &e.into()),
    };
    let has_totp = listed.iter().any(|f| f.kind == "totp");
    // Passkeys have a section of their own (with their dates and the add form).
    let factor_lines = listed
        .into_iter()
        .filter(|f| f.kind != "passkey")
        .map(|f| FactorLine {
            id: f.id,
            name: f.name,
            kind: f.kind,
            last_used: f.last_used_at,
        })
        .collect();
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
    let passkeys = match passkey::list(&app, &session.user_sub).await {
        Ok(list) => list
            .into_iter()
            .map(|p| PasskeyLine {
                id: p.passkey_id,
                name: p.name,
                created: when(p.created_at),
                last_used: p.last_used_at.map(when),
            })
            .collect(),
        Err(e) => return error_page(t, &e.into()),
    };
    let (identities, upstreams) = match super::identities::lines(&app, &session.user_sub).await {
        Ok(l) => l,
        Err(e) => return error_page(t, &e.into()),
    };
    let csrf = csrf_token(&app, PURPOSE, "", "", &session.sid);
    let factors_csrf = super::factors::account_csrf(&app, &session);
    html(
        StatusCode::OK,
        &AccountPage {
            t,
            username: &overview.username,
            csrf_token: &csrf,
            apps,
            passkeys_enabled: app.passkeys.is_some(),
            passkeys,
            factors_csrf: &factors_csrf,
            factors: factor_lines,
            has_totp,
            identities,
            upstreams,
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
    match factors::standing(&app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => {}
        Ok(_) => return Redirect::to(PATH).into_response(),
        Err(e) => return error_page(t, &e.into()),
    }
    let Some(client_id) = params.get("client_id") else {
        return error_page(t, &OAuthError::invalid_request("client_id is required"));
    };
    match account::withdraw(&app, &session, client_id, ip).await {
        Ok(()) => Redirect::to(PATH).into_response(),
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/passkeys/remove`: remove one of the user's passkeys (a plain form, so it
/// works without scripts). The last second factor of a user who must use one is refused, as
/// for every factor (`factors::remove_own`).
pub async fn remove_passkey(State(app): State<App>, form: PageForm) -> Response {
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
    let Some(passkey_id) = params.get("passkey_id") else {
        return error_page(t, &OAuthError::invalid_request("passkey_id is required"));
    };
    match factors::standing(&app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => {}
        Ok(_) => return Redirect::to(PATH).into_response(),
        Err(e) => return error_page(t, &e.into()),
    }
    match factors::remove_own(&app, &session.user_sub, passkey_id).await {
        Ok(true) => Redirect::to(PATH).into_response(),
        Ok(false) => error_page(t, &OAuthError::invalid_request("no such passkey")),
        Err(e) => error_page(t, &e),
    }
}
