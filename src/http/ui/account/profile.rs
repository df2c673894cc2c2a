//! `POST /account/profile`: saves the profile claims the operator lets users edit
//! (`accounts::account::profile`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Feedback, acting_session, done, render, wording};
use crate::accounts::account::profile::{self, Saved};
use crate::app::App;
use crate::http::client_ip::ClientIp;
use crate::http::ui::text;
use crate::http::ui::{PageForm, error_page};
use crate::protocol::discovery::paths;

pub async fn save(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = text::preferred();
    let a = wording::for_lang(t.lang);
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let submitted: Vec<(&str, &str)> = params.iter().collect();
    match profile::save(&app, &session, &submitted, ip).await {
        Ok(Saved::Saved) => done("profile"),
        Ok(Saved::Refused(fields)) => {
            let feedback = Feedback {
                notice: Some(a.profile_refused),
                profile: Some(fields),
                ..Feedback::default()
            };
            render(&app, t, jar, &session, feedback, StatusCode::BAD_REQUEST).await
        }
        Ok(Saved::SignedOut) => Redirect::to(paths::ACCOUNT).into_response(),
        Err(e) => error_page(t, &e),
    }
}
