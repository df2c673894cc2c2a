//! `POST /account/sessions/end` (`sid`) and `POST /account/sessions/end-others`: sign out one
//! of the user's sessions, or all but this one (`accounts::account::sessions`).

use axum::extract::State;
use axum::response::Response;

use super::{acting_session, done};
use crate::accounts::account::sessions;
use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::ui::text;
use crate::http::ui::{PageForm, error_page};
use crate::protocol::OAuthError;

/// Ends one session of the user. Another user's session and no session at all get the same
/// answer as one that ended: the page, which no longer lists it (it never did).
pub async fn end_one(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(sid) = params.get("sid") else {
        return error_page(t, &OAuthError::invalid_request("sid is required"));
    };
    match sessions::end_one(&app, &session, sid, ip).await {
        Ok(_) => done("session"),
        Err(e) => error_page(t, &e),
    }
}

pub async fn end_others(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    form: PageForm,
) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    match sessions::end_others(&app, &session, ip).await {
        Ok(_) => done("sessions"),
        Err(e) => error_page(t, &e),
    }
}
