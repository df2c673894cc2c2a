//! The forced password change (`accounts::password_change`): when an administrator set
//! `password_reset_required`, a correct login leads to this form instead of into a session.
//! `POST /password` sets the new password, then finishes the sign-in the login step began (one
//! sign-in, one session, one `login_succeeded` event) and resumes what the user was doing: the
//! authorization request, or the account page.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::text::{self, Text};
use super::{PageForm, begin_session, client_left, error_page, expired_page, html, log_in};
use crate::accounts::assurance::Method;
use crate::accounts::login;
use crate::accounts::password_change::{self, Outcome, Problem, Submission, TicketScope, User};
use crate::accounts::session::StartedFrom;
use crate::app::App;
use crate::authorize::{self, Proof, flow::Page};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;

#[derive(Template, serde::Serialize)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    t: &'a Text,
    interaction: &'a str,
    sub: &'a str,
    ticket: &'a str,
    error: Option<&'a str>,
}

impl super::Page for PasswordPage<'_> {
    const TEMPLATE: &'static str = "password.html";
}

/// The password form for `user`, who just logged in correctly in this browser, in `scope`
/// (an authorization request's interaction, or the account page's empty one).
pub fn render(
    app: &App,
    t: &Text,
    scope: &TicketScope<'_>,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let ticket = password_change::ticket(app, user, scope);
    html(
        status,
        &PasswordPage {
            t,
            interaction: scope.interaction,
            sub: &user.sub,
            ticket: &ticket,
            error,
        },
    )
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: PageForm,
) -> Response {
    let PageForm { params, jar } = form;
    let binding = cookies::read(&jar, cookies::binding_name(&app.config)).unwrap_or_default();
    let interaction = params.get("interaction").unwrap_or_default();
    // In an authorization request the interaction must still be pending in this browser.
    let pending = if interaction.is_empty() {
        None
    } else {
        match authorize::load_pending(&app, interaction, Some(binding)).await {
            Ok(Some(p)) if p.admits(Page::PasswordChange) => Some(p),
            Ok(_) => return expired_page(text::preferred()),
            Err(e) => return error_page(text::preferred(), &e.into()),
        }
    };
    let t = text::for_locales(
        pending
            .as_ref()
            .and_then(|p| p.request.ui_locales.as_deref()),
    );
    let scope = TicketScope {
        interaction,
        binding,
    };
    let submission = Submission {
        sub: params.get("sub").unwrap_or_default(),
        ticket: params.get("csrf_token").unwrap_or_default(),
        new_password: params.get("new_password").unwrap_or_default(),
        confirm_password: params.get("confirm_password").unwrap_or_default(),
    };
    let user = match password_change::submit(&app, &submission, &scope, ip).await {
        Ok(Outcome::Changed(user)) => user,
        Ok(Outcome::Expired) => return expired_page(t),
        Ok(Outcome::ClientLeft) => return client_left(),
        Ok(Outcome::Again { user, problem }) => {
            let message = match problem {
                Problem::Mismatch => t.password_mismatch,
                Problem::TooShort => t.password_too_short,
                Problem::SameAsBefore => t.password_same,
            };
            return render(
                &app,
                t,
                &scope,
                &user,
                Some(message),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(e) => return error_page(t, &e),
    };
    // The sign-in the login step began goes on from here exactly as a login without the
    // change would: its `login_succeeded` event (recorded now, once, with the session it
    // starts), the browser's session replaced, and in a flow the same `authorize::log_in`
    // every login page ends in (the amr, the second-factor or consent stage that follows).
    let client_id = pending.as_ref().map(|p| p.client.client_id.as_str());
    let succeeded = login::succeeded(&user.sub, ip, client_id);
    match pending {
        Some(p) => {
            let proof = Proof {
                user_sub: &user.sub,
                from: &from,
                method: Method::Pwd,
                event: Some(succeeded),
            };
            log_in(&app, t, jar, &p, proof).await
        }
        None => match begin_session(&app, jar, &from, &user.sub, Some(succeeded)).await {
            Ok((jar, _)) => (
                jar,
                Redirect::to(crate::protocol::discovery::paths::ACCOUNT),
            )
                .into_response(),
            Err(e) => error_page(t, &e),
        },
    }
}

/// Samples of the forced password change for checking template overrides.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    [None, Some(t.password_mismatch)]
        .into_iter()
        .map(|error| {
            super::overrides::sample(&PasswordPage {
                t,
                interaction: "interaction",
                sub: "sub",
                ticket: "ticket",
                error,
            })
        })
        .collect()
}
