//! `GET /device` shows where a person types the code their device shows (RFC 8628 §3.3);
//! `POST /device` looks the code up (`authorize::device::enter`, throttled per address) and
//! continues to the login and consent pages, which end by approving or denying the device.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::text::{self, Text};
use super::{
    PageForm, csrf_matches, csrf_token, error_page, expired_page, html, render_decision,
    with_retry_after,
};
use crate::accounts::session;
use crate::app::App;
use crate::authorize::device::{self, Entered};
use crate::crypto::random_secret;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::form::Params;

const PURPOSE: &str = "device";

#[derive(Template, serde::Serialize)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    t: &'a Text,
    csrf_token: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

impl super::Page for DevicePage<'_> {
    const TEMPLATE: &'static str = "device.html";
}

/// The code form, bound to the browser's binding cookie (set here when it has none).
fn form(
    app: &App,
    jar: CookieJar,
    t: &Text,
    user_code: &str,
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
    let csrf = csrf_token(app, PURPOSE, "", &binding, "");
    let page = html(
        status,
        &DevicePage {
            t,
            csrf_token: &csrf,
            user_code,
            error,
        },
    );
    (jar, page).into_response()
}

pub async fn show(State(app): State<App>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let t = text::for_locales(params.get("ui_locales"));
    // A prefilled code is shown as typed, never acted on: the person submits it.
    let code: String = params
        .get("user_code")
        .unwrap_or_default()
        .chars()
        .take(16)
        .collect();
    form(&app, jar, t, &code, None, StatusCode::OK)
}

pub async fn submit(State(app): State<App>, ClientIp(ip): ClientIp, page: PageForm) -> Response {
    let PageForm { params, jar } = page;
    let t = text::for_locales(params.get("ui_locales"));
    let Some(binding) = cookies::read(&jar, cookies::binding_name(&app.config)).map(str::to_owned)
    else {
        return expired_page(t);
    };
    if !csrf_matches(
        &csrf_token(&app, PURPOSE, "", &binding, ""),
        params.get("csrf_token"),
    ) {
        return expired_page(t);
    }
    let typed = params.get("user_code").unwrap_or_default();
    let session_cookie = cookies::read(&jar, cookies::session_name(&app.config));
    let session = match session::current(&app, session_cookie).await {
        Ok(s) => s,
        Err(e) => return error_page(t, &e),
    };
    match device::enter(&app, typed, ip, &binding, session.as_ref()).await {
        Ok(Entered::Go(decision)) => (jar, render_decision(t, Ok(decision))).into_response(),
        Ok(Entered::Unknown) => form(
            &app,
            jar,
            t,
            typed,
            Some(t.device_unknown),
            StatusCode::BAD_REQUEST,
        ),
        Ok(Entered::Throttled { retry_after }) => with_retry_after(
            form(
                &app,
                jar,
                t,
                typed,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            retry_after,
        ),
        Err(e) => error_page(t, &e),
    }
}

/// Samples of the code form for checking template overrides.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    [None, Some(t.device_unknown)]
        .into_iter()
        .map(|error| {
            super::overrides::sample(&DevicePage {
                t,
                csrf_token: "csrf",
                user_code: "BCDF-GHJK",
                error,
            })
        })
        .collect()
}
