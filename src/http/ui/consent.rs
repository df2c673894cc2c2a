//! `GET /consent` lists the scopes the user has not yet granted this client; `POST /consent`
//! records Allow (and finishes with a code) or Deny (`access_denied` to the client).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::login::display_name;
use super::text::{self, Text};
use super::{
    ConsentPage, ScopeLine, csrf_matches, csrf_token, error_page, expired_page, html,
    pending_or_page, render_decision,
};
use crate::accounts::{consent, session};
use crate::app::App;
use crate::authorize::{self, Decision, Pending};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::form::form_params;
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};
use crate::store::{SessionRecord, SessionView};

const PURPOSE: &str = "consent";

/// The pending request, the browser's binding and its session (read with the user and the
/// scope already granted); or the response to send instead (expired page, or back to login
/// when there is no session, or its user was disabled or deleted).
async fn load(
    app: &App,
    jar: &CookieJar,
    interaction: &str,
) -> Result<(Pending, String, SessionView), Response> {
    let (pending, binding) = pending_or_page(app, jar, interaction).await?;
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let to_login = |pending: &Pending| {
        Redirect::to(&format!(
            "{}?interaction={}",
            paths::LOGIN,
            pending.interaction_id
        ))
        .into_response()
    };
    // An interaction that still owes a login never shows the consent page.
    let Some(bound_sid) = authorize::consent_session(&pending) else {
        return Err(to_login(&pending));
    };
    let session_cookie = cookies::read(jar, cookies::session_name(&app.config));
    let found = session::find_view(
        app.store.as_ref(),
        &app.hasher,
        session_cookie,
        app.now(),
        &pending.client.client_id,
    )
    .await;
    // The consent is asked of the session the decision was made for, and of no other (a
    // browser whose session changed since, to another login or user, logs in again).
    let view = match found {
        Ok(Some(v)) if !v.user_disabled && v.session.sid == bound_sid => v,
        Ok(_) => return Err(to_login(&pending)),
        Err(e) => return Err(error_page(t, &e.into())),
    };
    Ok((pending, binding.to_owned(), view))
}

pub async fn show(State(app): State<App>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let (pending, binding, view) =
        match load(&app, &jar, params.get("interaction").unwrap_or_default()).await {
            Ok(v) => v,
            Err(response) => return response,
        };
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let requested = Scope::parse_lenient(&pending.request.scope);
    let missing = consent::missing_from(view.consented_scope.as_deref(), &requested);
    // prompt=consent asks again even when everything was granted: then show it all.
    let shown = if missing.is_empty() {
        requested
    } else {
        missing
    };
    render(
        &app,
        t,
        &pending,
        &binding,
        &view.session,
        &view.username,
        &shown,
    )
}

/// The consent form's CSRF token: bound to the interaction, the browser and its session (by
/// the session's stored hash, which the answer can compute from the cookie without reading
/// the database).
fn consent_csrf(app: &App, pending: &Pending, binding: &str, session_hash: &[u8]) -> String {
    let session = URL_SAFE_NO_PAD.encode(session_hash);
    csrf_token(app, PURPOSE, &pending.interaction_id, binding, &session)
}

fn render(
    app: &App,
    t: &Text,
    pending: &Pending,
    binding: &str,
    session: &SessionRecord,
    username: &str,
    scope: &Scope,
) -> Response {
    let csrf = consent_csrf(app, pending, binding, &session.session_hash);
    let scopes = scope
        .iter()
        .map(|s| ScopeLine {
            name: s.to_owned(),
            description: t.describe_scope(s),
        })
        .collect();
    html(
        StatusCode::OK,
        &ConsentPage {
            t,
            client_name: display_name(&pending.client),
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            username,
            scopes,
        },
    )
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(&text::EN, &e),
    };
    // No read of the session here: the CSRF token is bound to its hash, and the store
    // writes the grant only if the session is still live (else: back to login).
    let interaction = params.get("interaction").unwrap_or_default();
    let (pending, binding) = match pending_or_page(&app, &jar, interaction).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let t = text::for_locales(pending.request.ui_locales.as_deref());
    let session_cookie = cookies::read(&jar, cookies::session_name(&app.config))
        .filter(|v| !v.is_empty() && v.len() <= session::MAX_COOKIE_LEN);
    let Some(session_cookie) = session_cookie else {
        return render_decision(
            t,
            Ok(Decision::Login {
                interaction_id: pending.interaction_id,
            }),
        );
    };
    let session_hash = app.hasher.hash(session_cookie);
    let expected = consent_csrf(&app, &pending, binding, &session_hash);
    if !csrf_matches(&expected, params.get("csrf_token")) {
        return expired_page(t);
    }
    let allowed = match params.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                t,
                &OAuthError::invalid_request("decision must be allow or deny"),
            );
        }
    };
    let decision = authorize::complete_consent(&app, &pending, &session_hash, allowed, ip).await;
    render_decision(t, decision)
}
