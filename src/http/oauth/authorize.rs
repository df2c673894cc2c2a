//! `GET|POST /authorize`: translate the request and cookies into a call to the
//! `authorize` pipeline and render its decision.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::accounts::session;
use crate::app::App;
use crate::authorize::{self, Decision};
use crate::crypto::random_secret;
use crate::http::cookies;
use crate::http::form::form_params;
use crate::http::ui::{error_page, render_decision, text};
use crate::protocol::OAuthError;
use crate::protocol::form::Params;

pub async fn get(State(app): State<App>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| OAuthError::invalid_request(e.to_string()));
    handle(app, jar, params).await
}

pub async fn post(
    State(app): State<App>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(app, jar, form_params(&headers, &body)).await
}

async fn handle(app: App, jar: CookieJar, params: Result<Params, OAuthError>) -> Response {
    // Malformed or duplicated parameters make the client_id and redirect_uri untrustworthy,
    // so the error is shown, never redirected.
    let params = match params {
        Ok(p) => p,
        Err(e) => return error_page(text::preferred(), &e),
    };
    let t = text::for_locales(params.get("ui_locales"));
    let session_cookie = cookies::read(&jar, cookies::session_name(&app.config));
    let session =
        match session::find(app.store.as_ref(), &app.hasher, session_cookie, app.now()).await {
            Ok(s) => s,
            Err(e) => return error_page(t, &e.into()),
        };
    let existing_binding =
        cookies::read(&jar, cookies::binding_name(&app.config)).map(str::to_owned);
    let binding = existing_binding.clone().unwrap_or_else(random_secret);
    let decision = authorize::authorize(&app, &params, session, &binding).await;
    let needs_cookie = matches!(
        decision,
        Ok(Decision::Login { .. }
            | Decision::Consent { .. }
            | Decision::SecondFactor { .. }
            | Decision::Enrol { .. }
            | Decision::VerifyEmail { .. }
            | Decision::Upstream(_))
    ) && existing_binding.is_none();
    let response = render_decision(t, decision);
    if needs_cookie {
        (
            jar.add(cookies::binding_cookie(&app.config, binding)),
            response,
        )
            .into_response()
    } else {
        response
    }
}
