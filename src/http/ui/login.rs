//! `GET /login` shows the form; `POST /login` checks the credentials, starts a new session
//! (a fresh id on every login, so a planted cookie cannot be fixed) and resumes the
//! authorization request.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::text::Text;
use super::{
    InteractionForm, InteractionPage, LoginPage, client_left, csrf_token, error_page, expired_page,
    html, log_in, render_decision, with_retry_after,
};
use crate::accounts::assurance::Method;
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::password_change::TicketScope;
use crate::accounts::session::StartedFrom;
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{Pending, Proof};
use crate::clients::display_name;
use crate::http::client_ip::ClientIp;

/// The CSRF purpose of the login form and the login page's passkey script.
pub const PURPOSE: &str = "login";

/// The login page's upstream buttons (`ui::upstream_buttons`). A database failure leaves
/// them out rather than failing the password form.
async fn upstream_buttons(app: &App) -> Vec<super::UpstreamButton> {
    super::upstream_buttons(app).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "upstreams could not be listed for the login page");
        Vec::new()
    })
}

async fn render_form(
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
        &LoginPage {
            t,
            action: crate::protocol::discovery::paths::LOGIN,
            client_name: display_name(&pending.client),
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            username,
            error,
            passkeys: app.passkeys.is_some(),
            forgot_password: app.mailer.is_some().then(|| super::email_text::for_text(t)),
            signup: app.config.signup,
            upstreams: upstream_buttons(app).await,
        },
    )
}

pub async fn show(State(app): State<App>, page: InteractionPage) -> Response {
    let InteractionPage { pending, t, .. } = page;
    let hint = pending.request.login_hint.as_deref().unwrap_or_default();
    render_form(&app, t, &pending, hint, None, StatusCode::OK).await
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: InteractionForm,
) -> Response {
    let t = form.t;
    if !form.pending.admits(Page::Login) || !form.csrf_ok(&app, PURPOSE, "") {
        return expired_page(t);
    }
    let InteractionForm {
        params,
        jar,
        pending,
        ..
    } = form;
    // A button `name="upstream"`: the login happens at that upstream.
    if let Some(upstream) = params.get("upstream") {
        let departure = crate::upstream::flow::begin(&app, &pending, upstream).await;
        return render_decision(t, departure.map(crate::authorize::Decision::Upstream));
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
                username,
                Some(t.login_failed),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        Ok(LoginOutcome::ClientLeft) => return client_left(),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let response = render_form(
                &app,
                t,
                &pending,
                username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
            return with_retry_after(response, retry_after);
        }
        Err(e) => return error_page(t, &e),
    };
    // A new password is owed first: the sign-in finishes at `POST /password`, which records
    // its `login_succeeded` with the session it starts.
    if user.password_reset_required {
        let scope = TicketScope {
            interaction: &pending.interaction_id,
            binding: &pending.binding,
        };
        return super::password::render(&app, t, &scope, &user, None, StatusCode::OK);
    }
    let succeeded = login::succeeded(&user.sub, ip, Some(&pending.client.client_id));
    let proof = Proof {
        user_sub: &user.sub,
        from: &from,
        method: Method::Pwd,
        event: Some(succeeded),
    };
    log_in(&app, t, jar, &pending, proof).await
}
