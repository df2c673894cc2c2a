//! `GET|POST /logout`: OpenID Connect RP-Initiated Logout 1.0. A relying party sends the user
//! here to end the Latchkey session. With a valid `id_token_hint` for the signed-in user the
//! session ends at once; otherwise the user confirms with a button (so a third-party page
//! cannot sign people out with an image tag). `post_logout_redirect_uri` must be one the client
//! registered, matched exactly; without one the user sees a "signed out" page.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use super::text::{self, Text};
use super::{PageForm, csrf_matches, csrf_token, error_page, html};
use crate::accounts::session::{self, Session};
use crate::app::App;
use crate::http::cookies;
use crate::mint;
use crate::protocol::OAuthError;
use crate::protocol::form::Params;

const PURPOSE: &str = "logout";

#[derive(Template, serde::Serialize)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    t: &'a Text,
    done: bool,
    csrf_token: &'a str,
    post_logout_redirect_uri: Option<&'a str>,
    client_id: Option<&'a str>,
    state: Option<&'a str>,
    ui_locales: Option<&'a str>,
}

impl super::Page for LogoutPage<'_> {
    const TEMPLATE: &'static str = "logout.html";
}

/// Where to send the browser afterwards, once the client and URI check out.
struct Target {
    redirect: Option<String>,
    client_id: Option<String>,
}

/// Validates `client_id`, `id_token_hint` and `post_logout_redirect_uri` together. Returns the
/// target and the hinted subject (when the hint is valid).
async fn resolve(app: &App, params: &Params) -> Result<(Target, Option<String>), OAuthError> {
    let mut client_id = params.get("client_id").map(str::to_owned);
    let mut hinted_sub = None;
    if let Some(hint) = params.get("id_token_hint") {
        let keys = app.keys.current();
        let claims = mint::verify_id_token_hint(&keys, hint, &app.config.issuer).map_err(|_| {
            OAuthError::invalid_request("id_token_hint is not a valid ID token from this issuer")
        })?;
        let audience = match &claims.aud {
            serde_json::Value::String(a) => Some(a.clone()),
            serde_json::Value::Array(list) => {
                list.first().and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        };
        match (&client_id, audience) {
            (Some(given), Some(aud)) if *given != aud => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the id_token_hint",
                ));
            }
            (None, aud) => client_id = aud,
            _ => {}
        }
        hinted_sub = Some(claims.sub);
    }
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let id = client_id.as_deref().ok_or_else(|| {
                OAuthError::invalid_request(
                    "post_logout_redirect_uri needs client_id or id_token_hint",
                )
            })?;
            let client = app
                .client(id)
                .await?
                .ok_or_else(|| OAuthError::invalid_request("the application is not registered"))?;
            if !client
                .metadata
                .post_logout_redirect_uris
                .iter()
                .any(|r| r == uri)
            {
                return Err(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered for this application",
                ));
            }
            let mut url = url::Url::parse(uri)
                .map_err(|_| OAuthError::invalid_request("bad post_logout_redirect_uri"))?;
            if let Some(state) = params.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
    };
    Ok((
        Target {
            redirect,
            client_id,
        },
        hinted_sub,
    ))
}

async fn current_session(app: &App, jar: &CookieJar) -> Result<Option<Session>, OAuthError> {
    session::current(app, cookies::read(jar, cookies::session_name(&app.config))).await
}

/// Ends the session (if any) and sends the browser on.
async fn finish(
    app: &App,
    jar: CookieJar,
    t: &Text,
    session: Option<Session>,
    target: Target,
) -> Response {
    if let Some(s) = session
        && let Err(e) = session::end(app, &s).await
    {
        return error_page(t, &e);
    }
    let mut removal = Cookie::from(cookies::session_name(&app.config));
    removal.set_path("/");
    let jar = jar.remove(removal);
    match target.redirect {
        Some(url) => (jar, Redirect::to(&url)).into_response(),
        None => (
            jar,
            html(
                StatusCode::OK,
                &LogoutPage {
                    t,
                    done: true,
                    csrf_token: "",
                    post_logout_redirect_uri: None,
                    client_id: None,
                    state: None,
                    ui_locales: None,
                },
            ),
        )
            .into_response(),
    }
}

pub async fn show(State(app): State<App>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                text::preferred(),
                &OAuthError::invalid_request(e.to_string()),
            );
        }
    };
    let t = text::for_locales(params.get("ui_locales"));
    let (target, hinted_sub) = match resolve(&app, &params).await {
        Ok(v) => v,
        Err(e) => return error_page(t, &e),
    };
    let session = match current_session(&app, &jar).await {
        Ok(s) => s,
        Err(e) => return error_page(t, &e),
    };
    let confirmed_by_hint = match (&session, &hinted_sub) {
        (None, _) => true,
        (Some(s), Some(sub)) => &s.user_sub == sub,
        (Some(_), None) => false,
    };
    if confirmed_by_hint {
        return finish(&app, jar, t, session, target).await;
    }
    let sid = session.as_ref().map(|s| s.sid.as_str()).unwrap_or_default();
    let csrf = csrf_token(&app, PURPOSE, "", "", sid);
    html(
        StatusCode::OK,
        &LogoutPage {
            t,
            done: false,
            csrf_token: &csrf,
            post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
            client_id: target.client_id.as_deref(),
            state: params.get("state"),
            ui_locales: params.get("ui_locales"),
        },
    )
}

pub async fn submit(State(app): State<App>, form: PageForm) -> Response {
    let PageForm { params, jar } = form;
    let t = text::for_locales(params.get("ui_locales"));
    let (target, _) = match resolve(&app, &params).await {
        Ok(v) => v,
        Err(e) => return error_page(t, &e),
    };
    let session = match current_session(&app, &jar).await {
        Ok(s) => s,
        Err(e) => return error_page(t, &e),
    };
    let sid = session.as_ref().map(|s| s.sid.as_str()).unwrap_or_default();
    if !csrf_matches(
        &csrf_token(&app, PURPOSE, "", "", sid),
        params.get("csrf_token"),
    ) {
        return error_page(
            t,
            &OAuthError::invalid_request("the sign-out form expired; try again"),
        );
    }
    finish(&app, jar, t, session, target).await
}

/// Samples of the sign-out pages for checking template overrides: the question, with and
/// without the relying party's parameters, and the answer.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let ask = LogoutPage {
        t,
        done: false,
        csrf_token: "csrf",
        post_logout_redirect_uri: None,
        client_id: None,
        state: None,
        ui_locales: None,
    };
    let with_client = LogoutPage {
        post_logout_redirect_uri: Some("https://app.example/"),
        client_id: Some("app"),
        state: Some("state"),
        ui_locales: Some("de"),
        ..ask
    };
    let ask = LogoutPage {
        t,
        done: false,
        csrf_token: "csrf",
        post_logout_redirect_uri: None,
        client_id: None,
        state: None,
        ui_locales: None,
    };
    let done = LogoutPage {
        t,
        done: true,
        csrf_token: "",
        post_logout_redirect_uri: None,
        client_id: None,
        state: None,
        ui_locales: None,
    };
    vec![
        super::overrides::sample(&ask),
        super::overrides::sample(&with_client),
        super::overrides::sample(&done),
    ]
}
