//! The second-factor pages of the account: TOTP enrolment at `/account/totp` (on its own, or
//! inside a flow that owes a factor the user does not have yet, `?interaction=`), the account
//! page's own second-factor step (`/account/otp`), new recovery codes and removing a factor.
//! The core is `accounts::factors`; here forms are read and pages rendered.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::second_factor::{Offer, OtpPage, resume_csrf};
use super::text::{self, Text};
use super::{
    PageForm, begin_session_with, csrf_matches, csrf_token, error_page, expired_page, html,
    pending_or_page, render_decision, with_retry_after,
};
use crate::accounts::assurance::{self, Method};
use crate::accounts::factors::{self, EnrolOutcome, Enrolment, OtpOutcome};
use crate::accounts::session::{self, Session, StartedFrom};
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{self, Pending};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError};

const ENROL_PURPOSE: &str = "totp-enrol";
const ACCOUNT_PURPOSE: &str = "account-factors";

#[derive(Template, serde::Serialize)]
#[template(path = "totp.html")]
struct TotpPage<'a> {
    t: &'a Text,
    action: &'a str,
    interaction: &'a str,
    csrf_token: &'a str,
    secret: &'a str,
    qr_svg: &'a str,
    enrolment: &'a str,
    error: Option<&'a str>,
}

impl super::Page for TotpPage<'_> {
    const TEMPLATE: &'static str = "totp.html";
}

#[derive(Template, serde::Serialize)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    t: &'a Text,
    codes: &'a [String],
    action: &'a str,
    interaction: &'a str,
    csrf_token: &'a str,
}

impl super::Page for RecoveryCodesPage<'_> {
    const TEMPLATE: &'static str = "recovery_codes.html";
}

/// Where an enrolment happens: in a flow (its interaction and the session its stage names),
/// or on the account page (the browser's session).
struct Place {
    pending: Option<Pending>,
    session: Session,
    username: String,
    t: &'static Text,
}

impl Place {
    fn interaction(&self) -> &str {
        self.pending
            .as_ref()
            .map_or("", |p| p.interaction_id.as_str())
    }

    fn csrf(&self, app: &App) -> String {
        match &self.pending {
            Some(p) => csrf_token(app, ENROL_PURPOSE, &p.interaction_id, &p.binding, ""),
            None => csrf_token(app, ENROL_PURPOSE, "", "", &self.session.sid),
        }
    }
}

async fn current_session(app: &App, jar: &CookieJar) -> Result<Option<Session>, OAuthError> {
    session::current(app, cookies::read(jar, cookies::session_name(&app.config))).await
}

/// Opens the place of an enrolment page, or the response to give instead.
async fn place(app: &App, jar: &CookieJar, interaction: &str) -> Result<Place, Response> {
    let t_visitor = text::preferred();
    let cookie = cookies::read(jar, cookies::session_name(&app.config));
    let (pending, session, t) = if interaction.is_empty() {
        let session = match current_session(app, jar).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(Redirect::to(paths::ACCOUNT).into_response()),
            Err(e) => return Err(error_page(t_visitor, &e)),
        };
        (None, session, t_visitor)
    } else {
        let pending = pending_or_page(app, jar, interaction).await?;
        let t = text::for_locales(pending.request.ui_locales.as_deref());
        if !pending.admits(Page::Enrol) {
            return Err(expired_page(t));
        }
        match authorize::stage_session(app, &pending, Page::Enrol, cookie).await {
            Ok(Some(view)) => (Some(pending), view.session, t),
            Ok(None) => {
                let login = authorize::Decision::Login {
                    interaction_id: pending.interaction_id.clone(),
                };
                return Err(render_decision(t, Ok(login)));
            }
            Err(e) => return Err(error_page(t, &e.into())),
        }
    };
    let user = match app.store.get_user(&session.user_sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return Err(Redirect::to(paths::ACCOUNT).into_response()),
        Err(e) => return Err(error_page(t, &e.into())),
    };
    // A user who has a second factor replaces it only from a session that used one: the
    // password alone must not be enough to take over the second factor.
    let standing = match factors::standing(app, &user.sub).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return Err(error_page(t, &e.into())),
    };
    if standing.has_second_factor() && !assurance::meets(&session.amr, assurance::Level::Mfa) {
        return Err(Redirect::to(paths::ACCOUNT).into_response());
    }
    Ok(Place {
        pending,
        session,
        username: user.username,
        t,
    })
}

fn render_enrolment(
    app: &App,
    place: &Place,
    enrolment: &Enrolment,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = place.csrf(app);
    html(
        status,
        &TotpPage {
            t: place.t,
            action: paths::ACCOUNT_TOTP,
            interaction: place.interaction(),
            csrf_token: &csrf,
            secret: &enrolment.secret,
            qr_svg: &enrolment.qr_svg,
            enrolment: &enrolment.sealed,
            error,
        },
    )
}

/// `GET /account/totp`: a new secret to enrol (nothing is stored until a code confirms it).
pub async fn show(State(app): State<App>, RawQuery(query): RawQuery, jar: CookieJar) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let place = match place(&app, &jar, params.get("interaction").unwrap_or_default()).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    match factors::begin_enrolment(
        &app,
        &place.session.user_sub,
        &place.username,
        &place.session.sid,
    ) {
        Ok(enrolment) => render_enrolment(&app, &place, &enrolment, None, StatusCode::OK),
        Err(e) => error_page(place.t, &e),
    }
}

/// `POST /account/totp`: the code from the app finishes the enrolment; the session is
/// replaced by one that records both factors, and the recovery codes are shown once.
pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: PageForm,
) -> Response {
    let PageForm { params, jar } = form;
    let place = match place(&app, &jar, params.get("interaction").unwrap_or_default()).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let t = place.t;
    if !csrf_matches(&place.csrf(&app), params.get("csrf_token")) {
        return expired_page(t);
    }
    let sub = place.session.user_sub.clone();
    let sealed = params.get("enrolment").unwrap_or_default();
    let code = params.get("code").unwrap_or_default();
    let outcome = factors::finish_enrolment(&app, &sub, sealed, code, &place.session.sid, ip).await;
    let codes = match outcome {
        Ok(EnrolOutcome::Done { recovery_codes }) => recovery_codes,
        Ok(EnrolOutcome::WrongCode) => {
            return match factors::reopen_enrolment(
                &app,
                &sub,
                &place.username,
                sealed,
                &place.session.sid,
            ) {
                Some(enrolment) => render_enrolment(
                    &app,
                    &place,
                    &enrolment,
                    Some(t.totp_wrong),
                    StatusCode::BAD_REQUEST,
                ),
                None => expired_page(t),
            };
        }
        Ok(EnrolOutcome::Expired) => return expired_page(t),
        Err(e) => return error_page(t, &e),
    };
    let amr = assurance::with_method(&place.session.amr, Method::Otp);
    let (jar, session) = match begin_session_with(&app, jar, &from, &sub, &amr, None).await {
        Ok(v) => v,
        Err(e) => return error_page(t, &e),
    };
    let page = match &place.pending {
        Some(pending) => {
            let interaction = match authorize::enrolled(&app, pending, &session) {
                Ok(id) => id,
                Err(e) => return render_decision(t, Err(e)),
            };
            let csrf = resume_csrf(&app, &interaction, &pending.binding);
            html(
                StatusCode::OK,
                &RecoveryCodesPage {
                    t,
                    codes: &codes,
                    action: paths::LOGIN_RESUME,
                    interaction: &interaction,
                    csrf_token: &csrf,
                },
            )
        }
        None => recovery_page(t, &codes),
    };
    (jar, page).into_response()
}

fn recovery_page(t: &Text, codes: &[String]) -> Response {
    html(
        StatusCode::OK,
        &RecoveryCodesPage {
            t,
            codes,
            action: paths::ACCOUNT,
            interaction: "",
            csrf_token: "",
        },
    )
}

/// The account page's CSRF token for its factor forms, bound to the session.
pub fn account_csrf(app: &App, session: &Session) -> String {
    csrf_token(app, ACCOUNT_PURPOSE, "", "", &session.sid)
}

/// The account page's second-factor step: the form, posting to `/account/otp`.
pub async fn account_otp_page(
    app: &App,
    t: &Text,
    session: &Session,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let offer = match Offer::for_user(app, &session.user_sub).await {
        Ok(o) => o,
        Err(e) => return error_page(t, &e.into()),
    };
    let csrf = account_csrf(app, session);
    html(
        status,
        &OtpPage {
            t,
            username: "",
            action: paths::ACCOUNT_OTP,
            interaction: "",
            csrf_token: &csrf,
            error,
            passkey_csrf: offer
                .passkey
                .then(|| csrf_token(app, super::account::PURPOSE, "", "", &session.sid)),
            offer,
        },
    )
}

/// A POST of the account page's factor forms: the session, once the CSRF token matches.
async fn account_form(app: &App, params: &Params, jar: &CookieJar) -> Result<Session, Response> {
    let t = text::preferred();
    let session = match current_session(app, jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Redirect::to(paths::ACCOUNT).into_response()),
        Err(e) => return Err(error_page(t, &e)),
    };
    if !csrf_matches(&account_csrf(app, &session), params.get("csrf_token")) {
        return Err(expired_page(t));
    }
    Ok(session)
}

/// `POST /account/otp`: the account page's second factor; the session is replaced by one
/// that records it.
pub async fn account_otp(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: PageForm,
) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match account_form(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let typed = params.get("otp").unwrap_or_default();
    let method = match factors::check_otp(&app, &session.user_sub, typed, ip, None).await {
        Ok(OtpOutcome::Accepted { method, .. }) => method,
        Ok(OtpOutcome::Rejected) => {
            return account_otp_page(
                &app,
                t,
                &session,
                Some(t.otp_failed),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        Ok(OtpOutcome::Throttled { retry_after }) => {
            let page = account_otp_page(
                &app,
                t,
                &session,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
            return with_retry_after(page, retry_after);
        }
        Err(e) => return error_page(t, &e),
    };
    let amr = assurance::with_method(&session.amr, method);
    match begin_session_with(&app, jar, &from, &session.user_sub, &amr, None).await {
        Ok((jar, _)) => (jar, Redirect::to(paths::ACCOUNT)).into_response(),
        Err(e) => error_page(t, &e),
    }
}

/// A session that may change the user's factors: one that used a second factor when the user
/// has (or must have) one.
async fn with_level(app: &App, session: &Session) -> Result<(), Response> {
    let t = text::preferred();
    match factors::standing(app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => Ok(()),
        Ok(_) => Err(Redirect::to(paths::ACCOUNT).into_response()),
        Err(e) => Err(error_page(t, &e.into())),
    }
}

/// `POST /account/recovery-codes`: a new set; the old one stops working.
pub async fn regenerate(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    form: PageForm,
) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match account_form(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(response) = with_level(&app, &session).await {
        return response;
    }
    match factors::regenerate_recovery_codes(&app, &session.user_sub, ip).await {
        Ok(codes) => recovery_page(t, &codes),
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/factors/remove`: removes one factor (`factor`). The last second factor of a
/// user who must use one stays.
pub async fn remove(State(app): State<App>, form: PageForm) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match account_form(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(response) = with_level(&app, &session).await {
        return response;
    }
    let id = params.get("factor").unwrap_or_default();
    match factors::remove_own(&app, &session.user_sub, id).await {
        Ok(true) => Redirect::to(paths::ACCOUNT).into_response(),
        Ok(false) => error_page(
            t,
            &OAuthError::new(ErrorCode::InvalidRequest, "no such factor"),
        ),
        Err(e) => error_page(t, &e),
    }
}

/// Samples of the enrolment pages for checking template overrides: on the account page (no
/// interaction) and in a flow, with and without an error.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let mut all = Vec::new();
    for error in [None, Some(t.totp_wrong)] {
        all.push(super::overrides::sample(&TotpPage {
            t,
            action: paths::ACCOUNT_TOTP,
            interaction: "interaction",
            csrf_token: "csrf",
            secret: "JBSWY3DPEHPK3PXP",
            qr_svg: "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>",
            enrolment: "enrolment",
            error,
        }));
    }
    let codes = ["aaaa-bbbb".to_owned(), "cccc-dddd".to_owned()];
    for interaction in ["", "interaction"] {
        all.push(super::overrides::sample(&RecoveryCodesPage {
            t,
            codes: &codes,
            action: paths::LOGIN_RESUME,
            interaction,
            csrf_token: "csrf",
        }));
    }
    all
}
