//! `POST /account/email`: sets the user's email address (`email`, `current_password`;
//! `accounts::account::email`). Answers 404 unless the operator made `email` editable and
//! mail is on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Feedback, acting_session, done, render, wording};
use crate::accounts::account::email::{self, EmailChange};
use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::ui::text;
use crate::http::ui::{PageForm, client_left, error_page, with_retry_after};
use crate::protocol::discovery::paths;

pub async fn change(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    if !email::editable(&app) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let t = text::preferred();
    let a = wording::for_lang(t.lang);
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let typed = params.get("email").unwrap_or_default();
    let current = params.get("current_password").unwrap_or_default();
    let refused = |email_error, email_password_error| Feedback {
        email_value: Some(typed.trim().chars().take(320).collect()),
        email_error,
        email_password_error,
        ..Feedback::default()
    };
    let (feedback, status, retry_after) =
        match email::change(&app, &session, typed, current, ip, t.lang).await {
            Ok(EmailChange::Sent) => return done("email"),
            Ok(EmailChange::Unchanged) => return done("email-unchanged"),
            Ok(EmailChange::Invalid) => (
                refused(Some(a.email_invalid), None),
                StatusCode::BAD_REQUEST,
                None,
            ),
            Ok(EmailChange::WrongCurrent) => (
                refused(None, Some(a.password_wrong)),
                StatusCode::UNAUTHORIZED,
                None,
            ),
            Ok(EmailChange::Throttled { retry_after }) => (
                refused(Some(t.throttled), None),
                StatusCode::TOO_MANY_REQUESTS,
                Some(retry_after),
            ),
            Ok(EmailChange::NoPassword) => (
                refused(None, Some(a.email_needs_password)),
                StatusCode::BAD_REQUEST,
                None,
            ),
            Ok(EmailChange::ClientLeft) => return client_left(),
            Ok(EmailChange::SignedOut) => return Redirect::to(paths::ACCOUNT).into_response(),
            Err(e) => return error_page(t, &e),
        };
    let page = render(&app, t, jar, &session, feedback, status).await;
    match retry_after {
        Some(seconds) => with_retry_after(page, seconds),
        None => page,
    }
}
