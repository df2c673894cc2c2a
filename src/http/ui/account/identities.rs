//! The account page's linked sign-ins: the upstream identities linked to the signed-in user,
//! a link form per registered upstream and an unlink form per identity.
//!
//! `POST /account/identities/link` starts a round trip to the upstream bound to this session
//! (`upstream::flow::begin_link`: sealed, for this browser's binding cookie, finished only in
//! this session); the upstream's callback links what it vouches for, never an identity of
//! another user, and comes back to the page with a notice. `POST /account/identities/unlink`
//! removes a link unless it is the user's last way to sign in
//! (`UpstreamStore::unlink_identity`, one atomic statement); a refusal comes back as the page
//! with the reason in the section. Both are forms of the account page (`acting_session`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Feedback, acting_session, done, render, wording};
use crate::app::App;
use crate::crypto::random_secret;
use crate::http::cookies;
use crate::http::ui::{PageForm, UpstreamButton, error_page, text};
use crate::protocol::OAuthError;
use crate::store::{StoreError, Unlinked};
use crate::upstream::accounts;

/// An identity as the account page lists it.
#[derive(serde::Serialize)]
pub struct IdentityLine {
    pub upstream: String,
    /// The upstream's display name (its id when it was deleted meanwhile).
    pub name: String,
    pub subject: String,
}

/// What the account page shows: the user's identities, and the upstreams to link (at most 50,
/// as on the login page).
pub async fn lines(
    app: &App,
    user_sub: &str,
) -> Result<(Vec<IdentityLine>, Vec<UpstreamButton>), StoreError> {
    let upstreams = crate::http::ui::upstream_buttons(app).await?;
    let identities = app
        .store
        .identities_of_user(user_sub)
        .await?
        .into_iter()
        .map(|i| IdentityLine {
            name: upstreams
                .iter()
                .find(|u| u.id == i.upstream_id)
                .map_or_else(|| i.upstream_id.clone(), |u| u.display_name.clone()),
            upstream: i.upstream_id,
            subject: i.subject,
        })
        .collect();
    Ok((identities, upstreams))
}

/// `POST /account/identities/link`: off to the upstream, to come back linked.
pub async fn link(State(app): State<App>, form: PageForm) -> Response {
    let t = &text::EN;
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(upstream) = params.get("upstream") else {
        return error_page(t, &OAuthError::invalid_request("upstream is required"));
    };
    // The round trip is sealed for this browser's binding cookie (set here when it has none).
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
    match crate::upstream::flow::begin_link(&app, &session, &binding, upstream).await {
        Ok(departure) => {
            let jar = jar.add(cookies::upstream_cookie(departure.secure, departure.trip));
            (jar, Redirect::to(&departure.location)).into_response()
        }
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/identities/unlink`: remove one link, unless it is the last way in.
pub async fn unlink(State(app): State<App>, form: PageForm) -> Response {
    let t = &text::EN;
    let a = wording::for_lang(t.lang);
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (Some(upstream), Some(subject)) = (params.get("upstream"), params.get("subject")) else {
        return error_page(
            t,
            &OAuthError::invalid_request("upstream and subject are required"),
        );
    };
    let refusal = match accounts::unlink(&app, &session.user_sub, upstream, subject).await {
        Ok(Unlinked::Done) => return done("unlinked"),
        // The same answer whether another user has this identity or nobody does.
        Ok(Unlinked::NotLinked) => a.identity_not_linked,
        Ok(Unlinked::LastWayIn) => a.identity_last_way_in,
        Err(e) => return error_page(t, &e),
    };
    let feedback = Feedback {
        identity_error: Some(refusal),
        ..Feedback::default()
    };
    render(&app, t, jar, &session, feedback, StatusCode::BAD_REQUEST).await
}
