//! Sign-up pages (`LATCHKEY_SIGNUP=true`): `GET /signup?interaction=…` (linked from the
//! login page of an authorization request) shows the form, `POST /signup` hands it to
//! `accounts::signup`. Both answer 404 when sign-up is off. The link in the mail
//! (`/email/verify`) finishes the sign-up and, in the browser the sign-up started in,
//! continues the authorization request (`email_links::verify`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::email_text::{self, EmailText};
use super::text::Text;
use super::{
    InteractionForm, InteractionPage, client_left, csrf_token, error_page, expired_page, html,
    with_retry_after,
};
use crate::accounts::signup::{self, Form, Outcome, Problem};
use crate::app::App;
use crate::authorize::Pending;
use crate::http::client_ip::ClientIp;

const PURPOSE: &str = "signup";

#[derive(Template, serde::Serialize)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    t: &'a Text,
    e: &'a EmailText,
    interaction: &'a str,
    csrf_token: &'a str,
    username: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

impl super::Page for SignupPage<'_> {
    const TEMPLATE: &'static str = "signup.html";
}

fn render(
    app: &App,
    t: &Text,
    pending: &Pending,
    username: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(app, PURPOSE, &pending.interaction_id, &pending.binding, "");
    html(
        status,
        &SignupPage {
            t,
            e: email_text::for_text(t),
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            username,
            email,
            error,
        },
    )
}

fn off() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

pub async fn show(State(app): State<App>, page: InteractionPage) -> Response {
    if !app.config.signup {
        return off();
    }
    let InteractionPage { pending, t, .. } = page;
    render(&app, t, &pending, "", "", None, StatusCode::OK)
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    form: InteractionForm,
) -> Response {
    if !app.config.signup {
        return off();
    }
    let t = form.t;
    if !form.csrf_ok(&app, PURPOSE, "") {
        return expired_page(t);
    }
    let e = email_text::for_text(t);
    let params = &form.params;
    let username = params.get("username").unwrap_or_default();
    let email = params.get("email").unwrap_or_default();
    let submitted = Form {
        username,
        email,
        password: params.get("password").unwrap_or_default(),
        interaction: &form.pending.interaction_id,
        lang: t.lang,
    };
    let again = |message: &str, status| {
        render(
            &app,
            t,
            &form.pending,
            username,
            email,
            Some(message),
            status,
        )
    };
    match signup::sign_up(&app, &submitted, ip).await {
        Ok(Outcome::Pending) => super::email_links::notice_page(
            StatusCode::OK,
            t,
            e,
            e.forgot_sent_title,
            e.signup_sent,
            None,
        ),
        Ok(Outcome::Refused(problem)) => {
            let message = match &problem {
                Problem::Username(reason) => reason.as_str(),
                Problem::UsernameTaken => e.signup_taken,
                Problem::Email => e.signup_bad_email,
                Problem::PasswordLength(reason) => reason,
                Problem::PasswordCommon => e.password_common,
            };
            again(message, StatusCode::BAD_REQUEST)
        }
        Ok(Outcome::Throttled { retry_after }) => with_retry_after(
            again(e.throttled, StatusCode::TOO_MANY_REQUESTS),
            retry_after,
        ),
        Ok(Outcome::ClientLeft) => client_left(),
        Err(err) => error_page(t, &err),
    }
}

/// Samples of the sign-up page for checking template overrides: empty, and refused with what
/// was typed.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let e = email_text::for_text(t);
    [
        ("", "", None),
        ("alice", "alice@example.com", Some(e.signup_taken)),
    ]
    .into_iter()
    .map(|(username, email, error)| {
        super::overrides::sample(&SignupPage {
            t,
            e,
            interaction: "interaction",
            csrf_token: "csrf",
            username,
            email,
            error,
        })
    })
    .collect()
}
