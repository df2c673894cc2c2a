//! `GET /consent` lists the scopes the user has not yet granted this client; `POST /consent`
//! records Allow (and finishes with a code) or Deny (`access_denied` to the client). What the
//! page may show, and for which session, is `authorize::pending`'s to decide.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{
    ConsentPage, InteractionForm, InteractionPage, ScopeLine, csrf_token, error_page, expired_page,
    html, render_decision,
};
use crate::accounts::session;
use crate::app::App;
use crate::authorize::{self, Decision, Pending};
use crate::clients::display_name;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::OAuthError;

const PURPOSE: &str = "consent";

/// The consent form's CSRF token: bound to the interaction, the browser and its session (by
/// the session's stored hash, which the answer can compute from the cookie without reading
/// the database).
fn consent_csrf(app: &App, pending: &Pending, session_hash: &[u8]) -> String {
    let session = URL_SAFE_NO_PAD.encode(session_hash);
    csrf_token(
        app,
        PURPOSE,
        &pending.interaction_id,
        &pending.binding,
        &session,
    )
}

/// Back to the login page with the same interaction.
fn to_login(pending: Pending) -> Decision {
    Decision::Login {
        interaction_id: pending.interaction_id,
    }
}

pub async fn show(State(app): State<App>, page: InteractionPage) -> Response {
    let InteractionPage { jar, pending, t } = page;
    let session_cookie = cookies::read(&jar, cookies::session_name(&app.config));
    let ask = match authorize::consent_to_ask(&app, &pending, session_cookie).await {
        Ok(Some(ask)) => ask,
        Ok(None) => return render_decision(t, Ok(to_login(pending))),
        Err(e) => return error_page(t, &e.into()),
    };
    let csrf = consent_csrf(&app, &pending, &ask.session_hash);
    let scopes = ask
        .scopes
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
            device_user_code: pending
                .request
                .device_user_code
                .as_deref()
                .map(crate::authorize::device::display),
            client_name: display_name(&pending.client),
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            username: &ask.username,
            scopes,
        },
    )
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    form: InteractionForm,
) -> Response {
    // No read of the session here: the CSRF token is bound to its hash, and the store
    // writes the grant only if the session is still the live one the consent was asked in
    // (else: back to login).
    let t = form.t;
    let session_cookie = cookies::read(&form.jar, cookies::session_name(&app.config))
        .filter(|v| !v.is_empty() && v.len() <= session::MAX_COOKIE_LEN);
    let Some(session_cookie) = session_cookie else {
        return render_decision(t, Ok(to_login(form.pending)));
    };
    let session_hash = app.hasher.hash(session_cookie);
    let session_part = URL_SAFE_NO_PAD.encode(&session_hash);
    if !form.csrf_ok(&app, PURPOSE, &session_part) {
        return expired_page(t);
    }
    let allowed = match form.params.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                t,
                &OAuthError::invalid_request("decision must be allow or deny"),
            );
        }
    };
    let decision = authorize::answer_consent(&app, &form.pending, &session_hash, allowed, ip).await;
    render_decision(t, decision)
}
