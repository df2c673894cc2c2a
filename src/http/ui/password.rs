//! The forced password change: when an administrator set `password_reset_required`, a
//! correct login leads here instead of into a session. `POST /password` sets the new
//! password (which clears the flag and ends the user's other sessions), then signs the user in
//! and resumes what they were doing: the authorization request, or the account page.
//!
//! The form carries a ticket instead of a session: a MAC over the user, the interaction, the
//! browser's binding cookie, the time and the user's current password hash, valid for
//! `TICKET_TTL` while a new password is required. It proves that this browser just presented
//! the right password for this user. It is single use: the password it was issued for is
//! replaced in one conditional update (`replace_required_password`), after which the ticket
//! no longer matches; an operator's later reset (a new temporary password) kills it too.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::login::begin_session;
use super::text::{self, Text};
use super::{csrf_matches, error_page, expired_page, html, render_decision};
use crate::accounts::password::{HashError, check_new_password};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::authorize;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::form::form_params;
use crate::store::UserRecord;

/// How long the password form stays valid after the login that led to it.
const TICKET_TTL: i64 = 600;

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    t: &'a Text,
    interaction: &'a str,
    sub: &'a str,
    ticket: &'a str,
    error: Option<&'a str>,
}

fn ticket(
    app: &App,
    user: &UserRecord,
    interaction: &str,
    binding: &str,
    issued_at: i64,
) -> String {
    let mac = app.hasher.mac_parts(&[
        b"password-reset",
        user.sub.as_bytes(),
        interaction.as_bytes(),
        binding.as_bytes(),
        issued_at.to_string().as_bytes(),
        user.password_hash.as_bytes(),
    ]);
    format!("{issued_at}.{mac}")
}

/// Whether `presented` is a live ticket for `user` as the user stands now: enabled, still
/// required to choose a new password, and with the password the ticket was issued for.
fn ticket_valid(
    app: &App,
    presented: Option<&str>,
    user: &UserRecord,
    interaction: &str,
    binding: &str,
) -> bool {
    let Some((issued_at, _)) = presented.and_then(|p| p.split_once('.')) else {
        return false;
    };
    let Ok(issued_at) = issued_at.parse::<i64>() else {
        return false;
    };
    let age = app.now() - issued_at;
    !user.disabled
        && user.password_reset_required
        && (0..=TICKET_TTL).contains(&age)
        && csrf_matches(
            &ticket(app, user, interaction, binding, issued_at),
            presented,
        )
}

/// The password form for `sub`, who just logged in correctly in this browser.
/// `interaction` is empty when the login came from the account page.
pub fn render(
    app: &App,
    t: &Text,
    interaction: &str,
    binding: &str,
    user: &UserRecord,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let ticket = ticket(app, user, interaction, binding, app.now());
    html(
        status,
        &PasswordPage {
            t,
            interaction,
            sub: &user.sub,
            ticket: &ticket,
            error,
        },
    )
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
    let binding = cookies::read(&jar, cookies::binding_name(&app.config)).unwrap_or_default();
    let interaction = params.get("interaction").unwrap_or_default();
    let sub = params.get("sub").unwrap_or_default();
    // In an authorization request the interaction must still be pending in this browser.
    let pending = if interaction.is_empty() {
        None
    } else {
        match authorize::load_pending(&app, interaction, Some(binding)).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => return expired_page(&text::EN),
            Err(e) => return error_page(&text::EN, &e.into()),
        }
    };
    let t = text::for_locales(
        pending
            .as_ref()
            .and_then(|p| p.request.ui_locales.as_deref()),
    );
    let user = match app.store.get_user(sub).await {
        Ok(Some(u)) => u,
        Ok(None) => return expired_page(t),
        Err(e) => return error_page(t, &e.into()),
    };
    if binding.is_empty()
        || !ticket_valid(&app, params.get("csrf_token"), &user, interaction, binding)
    {
        return expired_page(t);
    }
    let new_password = params.get("new_password").unwrap_or_default();
    let again = |message: &str| {
        render(
            &app,
            t,
            interaction,
            binding,
            &user,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
    };
    if Some(new_password) != params.get("confirm_password") {
        return again(t.password_mismatch);
    }
    if check_new_password(new_password).is_err() {
        return again(t.password_too_short);
    }
    match app
        .passwords
        .verify(new_password, Some(&user.password_hash))
        .await
    {
        Ok(false) => {}
        Ok(true) => return again(t.password_same),
        Err(HashError::ClientLeft) => return super::login::client_left(),
        Err(e) => return error_page(t, &crate::protocol::OAuthError::server_error(e)),
    }
    let hash = match app.passwords.hash(new_password).await {
        Ok(h) => h,
        Err(HashError::ClientLeft) => return super::login::client_left(),
        Err(e) => return error_page(t, &crate::protocol::OAuthError::server_error(e)),
    };
    // Only if the password is still the one the ticket was issued for: of racing or replayed
    // submissions one wins; the others find the ticket dead. Setting it clears
    // password_reset_required; the user's other sessions end.
    match app
        .store
        .replace_required_password(sub, &user.password_hash, &hash, app.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return expired_page(t),
        Err(e) => return error_page(t, &e.into()),
    }
    if let Err(e) = app.store.delete_sessions_for_user(sub).await {
        return error_page(t, &e.into());
    }
    audit::record(
        &app,
        Event::new(Kind::PasswordChanged)
            .user(sub)
            .ip(ip)
            .detail("by", "user"),
    )
    .await;
    let (jar, session) = match begin_session(&app, jar, sub, None).await {
        Ok(v) => v,
        Err(e) => return error_page(t, &e),
    };
    match pending {
        Some(p) => {
            let decision = authorize::continue_after_login(&app, &p, &session).await;
            (jar, render_decision(t, decision)).into_response()
        }
        None => (jar, Redirect::to(super::account::PATH)).into_response(),
    }
}
