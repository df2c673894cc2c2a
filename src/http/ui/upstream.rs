//! `GET /upstream/{id}/callback`: where an upstream identity provider sends the browser
//! back. Translates the query and the cookies into `upstream::flow::callback` and renders
//! what it decided: the consent page, the client's redirect (a code, or `access_denied` /
//! `temporarily_unavailable`), or the expired page when the round trip is not this
//! browser's; a link started on the account page goes back there. The upstream cookie is
//! cleared in every case.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::{error_page, expired_page, render_decision, text};
use crate::accounts::session::StartedFrom;
use crate::app::App;
use crate::http::cookies;
use crate::protocol::form::Params;
use crate::upstream::flow::{self, Callback, Returned};

pub async fn callback(
    State(app): State<App>,
    from: StartedFrom,
    id: Result<Path<String>, PathRejection>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let secure = app.config.issuer_is_https;
    let clear = CookieJar::new().add(cookies::upstream_cookie_removal(secure));
    let t = &text::EN;
    let Ok(Path(id)) = id else {
        return expired_page(t);
    };
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            let err = crate::protocol::OAuthError::invalid_request(e.to_string());
            return (clear, error_page(t, &err)).into_response();
        }
    };
    let returned = flow::callback(
        &app,
        Callback {
            upstream: &id,
            params: &params,
            trip: jar
                .get(cookies::upstream_name(secure))
                .map(|c| c.value())
                .filter(|v| !v.is_empty()),
            binding: cookies::read(&jar, cookies::binding_name(&app.config)),
            session_cookie: cookies::read(&jar, cookies::session_name(&app.config)),
            from: &from,
        },
    )
    .await;
    match returned {
        // A trip that is not this one's (another upstream's path, a stale link) is left
        // alone: it may still be on its way back.
        Returned::Expired => expired_page(t),
        Returned::Decided {
            decision,
            session_cookie,
        } => {
            let mut jar = clear;
            if let Some(value) = session_cookie {
                jar = jar.add(cookies::session_cookie(&app.config, value));
            }
            (jar, render_decision(t, decision)).into_response()
        }
        // A link from the account page goes back there, or shows why it could not be made.
        Returned::Linked(Ok(())) => (clear, super::account::done("linked")).into_response(),
        Returned::Linked(Err(e)) => (clear, error_page(t, &e)).into_response(),
    }
}
