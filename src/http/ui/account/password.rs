//! `POST /account/password`: the account page's password change (`current_password`,
//! `password`; `accounts::account::password`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Feedback, acting_session, done, render, wording};
use crate::accounts::account::password::{self, Change};
use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::ui::text;
use crate::http::ui::{PageForm, client_left, error_page, with_retry_after};
use crate::protocol::discovery::paths;

pub async fn change(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = text::preferred();
    let a = wording::for_lang(t.lang);
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let current = params.get("current_password").unwrap_or_default();
    let new = params.get("password").unwrap_or_default();
    // Each refusal is shown next to the field it concerns: the current password's, or the
    // new one's.
    let (feedback, status) = match password::change(&app, &session, current, new, ip).await {
        Ok(Change::Changed) => return done("password"),
        Ok(Change::WrongCurrent) => (
            Feedback {
                current_password_error: Some(a.password_wrong),
                ..Feedback::default()
            },
            StatusCode::UNAUTHORIZED,
        ),
        Ok(Change::Refused(refusal)) => (
            Feedback {
                new_password_error: Some(a.refusal(refusal)),
                ..Feedback::default()
            },
            StatusCode::BAD_REQUEST,
        ),
        Ok(Change::Throttled { retry_after }) => {
            let feedback = Feedback {
                current_password_error: Some(t.throttled),
                ..Feedback::default()
            };
            let page = render(
                &app,
                t,
                jar,
                &session,
                feedback,
                StatusCode::TOO_MANY_REQUESTS,
            );
            return with_retry_after(page.await, retry_after);
        }
        Ok(Change::NoPassword) => (
            Feedback {
                notice: Some(a.password_none),
                ..Feedback::default()
            },
            StatusCode::BAD_REQUEST,
        ),
        Ok(Change::ClientLeft) => return client_left(),
        Ok(Change::SignedOut) => return Redirect::to(paths::ACCOUNT).into_response(),
        Err(e) => return error_page(t, &e),
    };
    render(&app, t, jar, &session, feedback, status).await
}
