//! The pages around mailed links: `GET|POST /password/forgot` ("Forgot password?"),
//! `GET|POST /password/reset?token=…` (choose a new password), `GET /email/verify?token=…`,
//! and the flow's "check your mail" stage, `GET|POST /email/pending?interaction=…`.
//! All answer 404 when mail is off. The core (`accounts::email_links`) decides; this only
//! translates.
//!
//! The forgot form needs no CSRF token: a forged submission can only make Latchkey mail the
//! account's own address, counted by the same throttle. The reset form is authorised by the
//! link's token itself, which it carries.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::email_text::{self, EmailText};
use super::text::{self, Text};
use super::{
    InteractionForm, InteractionPage, PageForm, client_left, csrf_token, error_page, expired_page,
    html, render_decision, with_retry_after,
};
use crate::accounts::email_links::{self, Resend, ResetOutcome, ResetProblem, ResetRequest};
use crate::accounts::session::StartedFrom;
use crate::accounts::signup::{self, Completion};
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{self, Pending};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;
use crate::store::UserRecord;
use axum_extra::extract::cookie::CookieJar;

#[derive(Template, serde::Serialize)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    t: &'a Text,
    e: &'a EmailText,
    interaction: &'a str,
    error: Option<&'a str>,
}

impl super::Page for ForgotPage<'_> {
    const TEMPLATE: &'static str = "forgot.html";
}

#[derive(Template, serde::Serialize)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    t: &'a Text,
    e: &'a EmailText,
    token: &'a str,
    error: Option<&'a str>,
}

impl super::Page for ResetPage<'_> {
    const TEMPLATE: &'static str = "reset.html";
}

/// A page that only says something: a title, a message, and a link back to sign-in when
/// there is an authorization request to go back to.
#[derive(Template, serde::Serialize)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    t: &'a Text,
    e: &'a EmailText,
    title: &'a str,
    message: &'a str,
    alert: bool,
    back: Option<String>,
}

impl super::Page for NoticePage<'_> {
    const TEMPLATE: &'static str = "notice.html";
}

/// The language of a page outside an authorization request: the browser's first known one.
fn language(headers: &HeaderMap) -> (&'static Text, &'static EmailText) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let m = crate::mail::for_language(accept);
    let t = text::for_locales(Some(m.lang));
    (t, email_text::for_text(t))
}

fn query(uri: &axum::http::Uri) -> Params {
    Params::parse(uri.query().unwrap_or_default().as_bytes()).unwrap_or_default()
}

/// The login page of a pending interaction, for "back to sign-in" (an id is opaque and
/// URL-safe; anything else is dropped).
fn back_link(interaction: &str) -> Option<String> {
    let safe = !interaction.is_empty()
        && interaction.len() <= 2048
        && interaction
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    safe.then(|| format!("{}?interaction={interaction}", paths::LOGIN))
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

pub fn notice_page(
    status: StatusCode,
    t: &Text,
    e: &EmailText,
    title: &str,
    message: &str,
    back: Option<String>,
) -> Response {
    html(
        status,
        &NoticePage {
            t,
            e,
            title,
            message,
            alert: status.is_client_error(),
            back,
        },
    )
}

fn expired(t: &Text, e: &EmailText) -> Response {
    notice_page(
        StatusCode::BAD_REQUEST,
        t,
        e,
        e.link_expired_title,
        e.link_expired,
        None,
    )
}

pub async fn forgot_show(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if app.mailer.is_none() {
        return not_found();
    }
    let (t, e) = language(&headers);
    let params = query(&uri);
    let interaction = params.get("interaction").unwrap_or_default();
    let interaction = if back_link(interaction).is_some() {
        interaction
    } else {
        ""
    };
    html(
        StatusCode::OK,
        &ForgotPage {
            t,
            e,
            interaction,
            error: None,
        },
    )
}

pub async fn forgot_submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: PageForm,
) -> Response {
    if app.mailer.is_none() {
        return not_found();
    }
    let (t, e) = language(&headers);
    let login = form.params.get("login").unwrap_or_default();
    let back = back_link(form.params.get("interaction").unwrap_or_default());
    if login.trim().is_empty() {
        return html(
            StatusCode::BAD_REQUEST,
            &ForgotPage {
                t,
                e,
                interaction: "",
                error: Some(e.forgot_intro),
            },
        );
    }
    match email_links::request_password_reset(&app, login, ip, t.lang).await {
        Ok(ResetRequest::Accepted) => notice_page(
            StatusCode::OK,
            t,
            e,
            e.forgot_sent_title,
            e.forgot_sent,
            back,
        ),
        Ok(ResetRequest::Throttled { retry_after }) => with_retry_after(
            notice_page(
                StatusCode::TOO_MANY_REQUESTS,
                t,
                e,
                e.forgot_title,
                e.throttled,
                back,
            ),
            retry_after,
        ),
        Err(err) => error_page(t, &err),
    }
}

fn reset_form(t: &Text, e: &EmailText, token: &str, error: Option<&str>) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, &ResetPage { t, e, token, error })
}

pub async fn reset_show(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if app.mailer.is_none() {
        return not_found();
    }
    let (t, e) = language(&headers);
    let params = query(&uri);
    let token = params.get("token").unwrap_or_default();
    match email_links::reset_link_user(&app, token).await {
        Ok(Some(_)) => reset_form(t, e, token, None),
        Ok(None) => expired(t, e),
        Err(err) => error_page(t, &err),
    }
}

pub async fn reset_submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: PageForm,
) -> Response {
    if app.mailer.is_none() {
        return not_found();
    }
    let (t, e) = language(&headers);
    let params = &form.params;
    let token = params.get("token").unwrap_or_default();
    let outcome = email_links::reset_password(
        &app,
        token,
        params.get("password").unwrap_or_default(),
        params.get("password_confirm").unwrap_or_default(),
        ip,
    )
    .await;
    match outcome {
        Ok(ResetOutcome::Done) => {
            notice_page(StatusCode::OK, t, e, e.reset_done_title, e.reset_done, None)
        }
        Ok(ResetOutcome::Expired) => expired(t, e),
        Ok(ResetOutcome::Again(problem)) => {
            let message = match problem {
                ResetProblem::Mismatch => e.password_mismatch,
                ResetProblem::Common => e.password_common,
                ResetProblem::Length(reason) => reason,
            };
            reset_form(t, e, token, Some(message))
        }
        Ok(ResetOutcome::ClientLeft) => client_left(),
        Err(err) => error_page(t, &err),
    }
}

pub async fn verify(
    State(app): State<App>,
    from: StartedFrom,
    headers: HeaderMap,
    jar: CookieJar,
    uri: axum::http::Uri,
) -> Response {
    if app.mailer.is_none() {
        return not_found();
    }
    let (t, e) = language(&headers);
    let params = query(&uri);
    let token = params.get("token").unwrap_or_default();
    match email_links::verify_email(&app, token).await {
        Ok(Some(_)) => {
            return notice_page(StatusCode::OK, t, e, e.verified_title, e.verified, None);
        }
        Ok(None) => {}
        Err(err) => return error_page(t, &err),
    }
    // Not a verification link: perhaps the link that finishes a sign-up.
    if !app.config.signup {
        return expired(t, e);
    }
    match signup::complete(&app, token).await {
        Ok(Completion::Created(done)) => continue_signup(&app, jar, &from, t, e, *done).await,
        Ok(Completion::Taken) => notice_page(
            StatusCode::CONFLICT,
            t,
            e,
            e.link_expired_title,
            e.signup_lost,
            None,
        ),
        Ok(Completion::Unknown) => expired(t, e),
        Err(err) => error_page(t, &err),
    }
}

/// After a sign-up's link was used: in the browser the sign-up started in (its binding cookie
/// opens the sealed authorization request), the new user is signed in and the request goes
/// on; anywhere else the page says the account is ready.
async fn continue_signup(
    app: &App,
    jar: CookieJar,
    from: &StartedFrom,
    t: &'static Text,
    e: &'static EmailText,
    done: signup::Completed,
) -> Response {
    let done_page = || {
        notice_page(
            StatusCode::OK,
            t,
            e,
            e.signup_done_title,
            e.signup_done,
            None,
        )
    };
    let binding = cookies::read(&jar, cookies::binding_name(&app.config));
    let pending = match authorize::load_pending(app, &done.interaction, binding).await {
        Ok(Some(p)) => p,
        _ => return done_page(),
    };
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let event =
        crate::accounts::login::succeeded(&done.user.sub, None, Some(&pending.client.client_id))
            .detail("by", "signup");
    match super::begin_session(app, jar, from, &done.user.sub, Some(event)).await {
        Ok((jar, session)) => {
            let decision = authorize::continue_after_login(app, &pending, &session).await;
            (jar, render_decision(t, decision)).into_response()
        }
        Err(err) => error_page(t, &err),
    }
}

/// The CSRF purpose of the "send the link again" button.
const PENDING_PURPOSE: &str = "email-pending";

#[derive(Template, serde::Serialize)]
#[template(path = "email_pending.html")]
struct PendingPage<'a> {
    t: &'a Text,
    e: &'a EmailText,
    interaction: &'a str,
    csrf_token: &'a str,
    /// The address the link went to, masked; `None` when the user has none.
    address: Option<String>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

impl super::Page for PendingPage<'_> {
    const TEMPLATE: &'static str = "email_pending.html";
}

fn render_pending(
    app: &App,
    t: &Text,
    pending: &Pending,
    user: &UserRecord,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(
        app,
        PENDING_PURPOSE,
        &pending.interaction_id,
        &pending.binding,
        "",
    );
    html(
        status,
        &PendingPage {
            t,
            e: email_text::for_text(t),
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            address: user
                .claims
                .email
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(email_links::masked),
            notice,
            error,
        },
    )
}

/// The session the "check your mail" stage names, with its user; or the page to show instead
/// (the login page when the browser no longer has that session).
async fn pending_user(
    app: &App,
    t: &Text,
    pending: &Pending,
    jar: &CookieJar,
) -> Result<(crate::store::SessionRecord, UserRecord), Response> {
    if !pending.admits(Page::VerifyEmail) {
        return Err(expired_page(t));
    }
    let cookie = cookies::read(jar, cookies::session_name(&app.config));
    let view = match authorize::stage_session(app, pending, Page::VerifyEmail, cookie).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            return Err(render_decision(
                t,
                Ok(authorize::Decision::Login {
                    interaction_id: pending.interaction_id.clone(),
                }),
            ));
        }
        Err(e) => return Err(error_page(t, &e.into())),
    };
    match app.store.get_user(&view.session.user_sub).await {
        Ok(Some(user)) => Ok((view.session, user)),
        Ok(None) => Err(expired_page(t)),
        Err(e) => Err(error_page(t, &e.into())),
    }
}

/// `GET /email/pending`: "check your mail" while the address is unverified (the page reloads
/// itself every few seconds, without script); once it is, the flow goes on.
pub async fn pending_show(State(app): State<App>, page: InteractionPage) -> Response {
    let InteractionPage { pending, t, jar } = page;
    let (session, user) = match pending_user(&app, t, &pending, &jar).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if email_links::is_verified(&user) {
        let decision = authorize::continue_after_login(&app, &pending, &session).await;
        return render_decision(t, decision);
    }
    render_pending(&app, t, &pending, &user, None, None, StatusCode::OK)
}

/// `POST /email/pending`: send the link again.
pub async fn pending_resend(State(app): State<App>, form: InteractionForm) -> Response {
    let t = form.t;
    if !form.csrf_ok(&app, PENDING_PURPOSE, "") {
        return expired_page(t);
    }
    let (_, user) = match pending_user(&app, t, &form.pending, &form.jar).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let e = email_text::for_text(t);
    match email_links::resend_verification(&app, &user, t.lang).await {
        Ok(Resend::Sent) => render_pending(
            &app,
            t,
            &form.pending,
            &user,
            Some(e.pending_resent),
            None,
            StatusCode::OK,
        ),
        Ok(Resend::NoAddress) => {
            render_pending(&app, t, &form.pending, &user, None, None, StatusCode::OK)
        }
        Ok(Resend::Throttled { retry_after }) => with_retry_after(
            render_pending(
                &app,
                t,
                &form.pending,
                &user,
                None,
                Some(e.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            retry_after,
        ),
        Err(err) => error_page(t, &err),
    }
}

/// Samples of the pages around mailed links, for checking template overrides: each with and
/// without its optional parts.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let e = email_text::for_text(t);
    let mut all = Vec::new();
    for (interaction, error) in [("", None), ("interaction", Some(e.throttled))] {
        all.push(super::overrides::sample(&ForgotPage {
            t,
            e,
            interaction,
            error,
        }));
    }
    for error in [None, Some(e.password_mismatch)] {
        all.push(super::overrides::sample(&ResetPage {
            t,
            e,
            token: "token",
            error,
        }));
    }
    for (alert, back) in [
        (false, None),
        (
            true,
            Some(format!("{}?interaction=interaction", paths::LOGIN)),
        ),
    ] {
        all.push(super::overrides::sample(&NoticePage {
            t,
            e,
            title: e.link_expired_title,
            message: e.link_expired,
            alert,
            back,
        }));
    }
    for (address, notice, error) in [
        (None, None, None),
        (
            Some(email_links::masked("alice@example.com")),
            Some(e.pending_resent),
            Some(e.throttled),
        ),
    ] {
        all.push(super::overrides::sample(&PendingPage {
            t,
            e,
            interaction: "interaction",
            csrf_token: "csrf",
            address,
            notice,
            error,
        }));
    }
    all
}
