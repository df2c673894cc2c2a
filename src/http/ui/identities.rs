//! The account page's linked sign-ins: the upstream identities linked to the signed-in user,
//! a link form per registered upstream and an unlink form per identity.
//!
//! `POST /account/identities/link` starts a round trip to the upstream bound to this session
//! (`upstream::flow::begin_link`: sealed, for this browser's binding cookie, finished only in
//! this session); the upstream's callback links what it vouches for, never an identity of
//! another user. `POST /account/identities/unlink` removes a link unless it is the user's last
//! way to sign in (`UpstreamStore::unlink_identity`, atomic). Both are CSRF-protected forms
//! of the account page and need the level the account page asks for.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::text::{self, Text};
use super::{PageForm, csrf_matches, csrf_token, error_page, expired_page};
use crate::accounts::factors;
use crate::accounts::session::{self, Session};
use crate::app::App;
use crate::crypto::random_secret;
use crate::http::cookies;
use crate::protocol::OAuthError;
use crate::protocol::discovery::paths::ACCOUNT;
use crate::store::{StoreError, Unlinked};
use crate::upstream::accounts;

/// An identity as the account page lists it.
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
) -> Result<(Vec<IdentityLine>, Vec<(String, String)>), StoreError> {
    let upstreams: Vec<(String, String)> = app
        .store
        .list_upstreams(None, 50)
        .await?
        .into_iter()
        .map(|r| (r.settings.id, r.settings.display_name))
        .collect();
    let identities = app
        .store
        .identities_of_user(user_sub)
        .await?
        .into_iter()
        .map(|i| IdentityLine {
            name: upstreams
                .iter()
                .find(|(id, _)| *id == i.upstream_id)
                .map_or_else(|| i.upstream_id.clone(), |(_, name)| name.clone()),
            upstream: i.upstream_id,
            subject: i.subject,
        })
        .collect();
    Ok((identities, upstreams))
}

/// The session of an account form: live, its CSRF token valid, at the level the account page
/// asks for. `Err` is the response to send instead.
async fn account_form(
    app: &App,
    t: &Text,
    jar: &CookieJar,
    csrf: Option<&str>,
) -> Result<Session, Response> {
    let session =
        match session::current(app, cookies::read(jar, cookies::session_name(&app.config))).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(Redirect::to(ACCOUNT).into_response()),
            Err(e) => return Err(error_page(t, &e)),
        };
    if !csrf_matches(
        &csrf_token(app, super::account::PURPOSE, "", "", &session.sid),
        csrf,
    ) {
        return Err(expired_page(t));
    }
    match factors::standing(app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => Ok(session),
        Ok(_) => Err(Redirect::to(ACCOUNT).into_response()),
        Err(e) => Err(error_page(t, &e.into())),
    }
}

/// `POST /account/identities/link`: off to the upstream, to come back linked.
pub async fn link(State(app): State<App>, form: PageForm) -> Response {
    let t = &text::EN;
    let PageForm { params, jar } = form;
    let session = match account_form(&app, t, &jar, params.get("csrf_token")).await {
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
    let PageForm { params, jar } = form;
    let session = match account_form(&app, t, &jar, params.get("csrf_token")).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (Some(upstream), Some(subject)) = (params.get("upstream"), params.get("subject")) else {
        return error_page(
            t,
            &OAuthError::invalid_request("upstream and subject are required"),
        );
    };
    match accounts::unlink(&app, &session.user_sub, upstream, subject).await {
        Ok(Unlinked::Done) => Redirect::to(ACCOUNT).into_response(),
        // The same answer whether another user has this identity or nobody does.
        Ok(Unlinked::NotLinked) => error_page(
            t,
            &OAuthError::invalid_request("no such linked sign-in on this account"),
        ),
        Ok(Unlinked::LastWayIn) => error_page(
            t,
            &OAuthError::invalid_request(
                "this is your only way to sign in: set a password, add a passkey or link \
                 another sign-in first",
            ),
        ),
        Err(e) => error_page(t, &e),
    }
}
