//! The second-factor step of a flow (`flow::Stage::SecondFactor`): `GET /login/otp` shows a
//! form with one text input `otp` (a TOTP code or a recovery code), `POST /login/otp` checks it
//! (`accounts::factors::check_otp`, throttled per account) and replaces the browser's session
//! with one that records both factors, then lets the flow go on. `POST /login/resume`
//! continues a flow after an enrolment inside it (`Stage::Resume`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::text::Text;
use super::{
    InteractionForm, InteractionPage, begin_session_with, csrf_token, error_page, expired_page,
    html, render_decision, with_retry_after,
};
use crate::accounts::assurance;
use crate::accounts::factors::{self, OtpOutcome};
use crate::accounts::login;
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{self, Pending};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::discovery::paths;

const PURPOSE: &str = "second-factor";
const RESUME_PURPOSE: &str = "resume";

#[derive(Template)]
#[template(path = "otp.html")]
pub struct OtpPage<'a> {
    pub t: &'a Text,
    /// Who is signing in (the user whose second factor is asked for).
    pub username: &'a str,
    pub action: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
    /// With passkeys on, the token the passkey script sends (the login form's in a flow, the
    /// account page's on the account's step-up): the page then offers a passkey too.
    pub passkey_csrf: Option<String>,
}

fn render(
    app: &App,
    t: &Text,
    pending: &Pending,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(app, PURPOSE, &pending.interaction_id, &pending.binding, "");
    html(
        status,
        &OtpPage {
            t,
            username,
            action: paths::LOGIN_OTP,
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            error,
            passkey_csrf: app.passkeys.as_ref().map(|_| {
                csrf_token(
                    app,
                    super::login::PURPOSE,
                    &pending.interaction_id,
                    &pending.binding,
                    "",
                )
            }),
        },
    )
}

fn to_login(t: &Text, pending: &Pending) -> Response {
    render_decision(
        t,
        Ok(authorize::Decision::Login {
            interaction_id: pending.interaction_id.clone(),
        }),
    )
}

pub async fn show(State(app): State<App>, page: InteractionPage) -> Response {
    let InteractionPage { pending, t, jar } = page;
    if !pending.admits(Page::SecondFactor) {
        return expired_page(t);
    }
    let cookie = cookies::read(&jar, cookies::session_name(&app.config));
    match authorize::stage_session(&app, &pending, Page::SecondFactor, cookie).await {
        Ok(Some(view)) => render(&app, t, &pending, &view.username, None, StatusCode::OK),
        Ok(None) => to_login(t, &pending),
        Err(e) => error_page(t, &e.into()),
    }
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    form: InteractionForm,
) -> Response {
    let t = form.t;
    if !form.pending.admits(Page::SecondFactor) || !form.csrf_ok(&app, PURPOSE, "") {
        return expired_page(t);
    }
    let InteractionForm {
        params,
        jar,
        pending,
        ..
    } = form;
    let cookie = cookies::read(&jar, cookies::session_name(&app.config));
    // The first factor is the session the stage names: without it, log in again.
    let (session, username) =
        match authorize::stage_session(&app, &pending, Page::SecondFactor, cookie).await {
            Ok(Some(view)) => (view.session, view.username),
            Ok(None) => return to_login(t, &pending),
            Err(e) => return error_page(t, &e.into()),
        };
    let client_id = pending.client.client_id.clone();
    let typed = params.get("otp").unwrap_or_default();
    let outcome =
        match factors::check_otp(&app, &session.user_sub, typed, ip, Some(&client_id)).await {
            Ok(o) => o,
            Err(e) => return error_page(t, &e),
        };
    let method = match outcome {
        OtpOutcome::Accepted { method, .. } => method,
        OtpOutcome::Rejected => {
            return render(
                &app,
                t,
                &pending,
                &username,
                Some(t.otp_failed),
                StatusCode::UNAUTHORIZED,
            );
        }
        OtpOutcome::Throttled { retry_after } => {
            let response = render(
                &app,
                t,
                &pending,
                &username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            );
            return with_retry_after(response, retry_after);
        }
    };
    let amr = assurance::with_method(&session.amr, method);
    let event =
        login::succeeded(&session.user_sub, ip, Some(&client_id)).detail("amr", amr.clone());
    let (jar, session) =
        match begin_session_with(&app, jar, &session.user_sub, &amr, Some(event)).await {
            Ok(v) => v,
            Err(e) => return error_page(t, &e),
        };
    let decision = authorize::continue_after_login(&app, &pending, &session).await;
    (jar, render_decision(t, decision)).into_response()
}

/// The CSRF token of the continue button under the recovery codes shown after an enrolment
/// inside a flow, for the interaction `interaction` (sealed at `Stage::Resume`).
pub fn resume_csrf(app: &App, interaction: &str, binding: &str) -> String {
    csrf_token(app, RESUME_PURPOSE, interaction, binding, "")
}

pub async fn resume(State(app): State<App>, form: InteractionForm) -> Response {
    let t = form.t;
    if !form.pending.admits(Page::Resume) || !form.csrf_ok(&app, RESUME_PURPOSE, "") {
        return expired_page(t);
    }
    let cookie = cookies::read(&form.jar, cookies::session_name(&app.config));
    match authorize::stage_session(&app, &form.pending, Page::Resume, cookie).await {
        Ok(Some(view)) => {
            let decision =
                authorize::continue_after_login(&app, &form.pending, &view.session).await;
            render_decision(t, decision)
        }
        Ok(None) => to_login(t, &form.pending),
        Err(e) => error_page(t, &e.into()),
    }
}
