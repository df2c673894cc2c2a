//! The pages a person sees: login, consent, the forced password change, logout, the account
//! page and errors. Plain HTML from askama templates, one stylesheet, no JavaScript. Every
//! form carries a CSRF token that is a MAC over the interaction id and the browser's binding
//! cookie (and, for consent, the session id), so a form only works in the browser, and for
//! the session, it was rendered for.
//!
//! Handlers only translate: the extractors below parse a form (`PageForm`), open the pending
//! interaction a form or page names (`InteractionForm`, `InteractionPage`), and the core
//! (`authorize::pending`, `accounts`) decides.

pub mod account;
pub mod chrome;
pub mod consent;
pub mod device;
pub mod email_links;
pub mod email_text;
pub mod factors;
pub mod login;
pub mod logout;
pub mod overrides;
pub mod password;
pub mod second_factor;
pub mod signup;
pub mod text;
pub mod upstream;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;

use crate::accounts::session::{self, Session, StartedFrom};
use crate::app::App;
use crate::audit::Event;
use crate::authorize::{AuthorizeError, Decision, Pending, ToClient};
use crate::http::cookies;
use crate::http::form::form_params;
use crate::protocol::authorization::ResponseMode;
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::StoreError;
use text::Text;

/// A page: an askama template whose variables are also what a template override
/// (`overrides`) gets, so every page struct serializes. A new page names its template file
/// here, adds it to `overrides::TEMPLATES`, and provides samples for the override check
/// (its module's `samples`, collected in `overrides::all_samples`).
pub trait Page: Template + Serialize {
    /// The template file, as in `#[template(path = …)]`.
    const TEMPLATE: &'static str;
}

#[derive(Template, Serialize)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub t: &'a Text,
    /// Where the form posts: `/login` (an authorization request) or `/account/login`.
    pub action: &'a str,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// Offer "Sign in with a passkey" (an authorization request's login, on a server with
    /// passkeys).
    pub passkeys: bool,
    /// The "Forgot password?" link's words, when mail is on (an authorization request's
    /// login only).
    pub forgot_password: Option<&'static email_text::EmailText>,
    /// Offer "Create an account" (`LATCHKEY_SIGNUP`, an authorization request's login).
    pub signup: bool,
    /// One button per upstream identity provider (an authorization request's login).
    pub upstreams: Vec<UpstreamButton>,
}

/// An upstream identity provider as a button on the login page and a link form on the
/// account page.
#[derive(Serialize)]
pub struct UpstreamButton {
    pub id: String,
    pub display_name: String,
}

/// Every registered upstream as a button, by id (a page shows at most 50).
pub async fn upstream_buttons(app: &App) -> Result<Vec<UpstreamButton>, StoreError> {
    Ok(app
        .store
        .list_upstreams(None, 50)
        .await?
        .into_iter()
        .map(|r| UpstreamButton {
            id: r.settings.id,
            display_name: r.settings.display_name,
        })
        .collect())
}

impl Page for LoginPage<'_> {
    const TEMPLATE: &'static str = "login.html";
}

#[derive(Serialize)]
pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template, Serialize)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub t: &'a Text,
    /// The user code, shown when a device is asking (RFC 8628).
    pub device_user_code: Option<String>,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
}

impl Page for ConsentPage<'_> {
    const TEMPLATE: &'static str = "consent.html";
}

#[derive(Template, Serialize)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub t: &'a Text,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

impl Page for ErrorPage<'_> {
    const TEMPLATE: &'static str = "error.html";
}

/// Renders a page as an HTML response with the given status, with its override when the
/// operator gave one (`overrides`), else its built-in template; pages are never cached.
pub fn html<P: Page>(status: StatusCode, page: &P) -> Response {
    let overridden = chrome::with_overrides(|o| o.render(page, &chrome::current())).flatten();
    let rendered = match overridden {
        Some(result) => result.map_err(|e| e.to_string()),
        None => page.render().map_err(|e| e.to_string()),
    };
    match rendered {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An error page for a protocol error that cannot go back to the client.
pub fn error_page(t: &Text, err: &OAuthError) -> Response {
    crate::http::error::log_cause(err);
    let status = match err.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = html(
        status,
        &ErrorPage {
            t,
            message: &err.description,
            code: Some(err.code.as_str()),
        },
    );
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The page shown when an interaction is unknown, expired, or belongs to another browser.
pub fn expired_page(t: &Text) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        &ErrorPage {
            t,
            message: t.error_expired,
            code: None,
        },
    )
}

/// The pending interaction `interaction`, opened for this browser, or the page to show
/// instead (expired, or an error).
pub async fn pending_or_page(
    app: &App,
    jar: &CookieJar,
    interaction: &str,
) -> Result<Pending, Response> {
    let binding = crate::http::cookies::read(jar, crate::http::cookies::binding_name(&app.config));
    match crate::authorize::load_pending(app, interaction, binding).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(expired_page(text::preferred())),
        Err(e) => Err(error_page(text::preferred(), &e.into())),
    }
}

/// A page form's POST, parsed by the rules of `protocol::form`, with the browser's cookies; a
/// malformed body gets the error page.
pub struct PageForm {
    pub params: Params,
    pub jar: CookieJar,
}

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(request.headers());
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params = form_params(&headers, &body).map_err(|e| error_page(text::preferred(), &e))?;
        Ok(PageForm { params, jar })
    }
}

/// A POST that acts on a pending interaction (the login and consent forms): the form, the
/// interaction it names opened for this browser, and the language of its pages. An unknown,
/// expired or foreign interaction gets the expired page.
pub struct InteractionForm {
    pub params: Params,
    pub jar: CookieJar,
    pub pending: Pending,
    pub t: &'static Text,
}

impl FromRequest<App> for InteractionForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let PageForm { params, jar } = PageForm::from_request(request, app).await?;
        let pending =
            pending_or_page(app, &jar, params.get("interaction").unwrap_or_default()).await?;
        let t = text::for_locales(pending.request.ui_locales.as_deref());
        Ok(InteractionForm {
            params,
            jar,
            pending,
            t,
        })
    }
}

impl InteractionForm {
    /// Whether the form's CSRF token is the one this page renders for this interaction, this
    /// browser and `session` (the consent page binds its session; others pass "").
    pub fn csrf_ok(&self, app: &App, purpose: &str, session: &str) -> bool {
        let expected = csrf_token(
            app,
            purpose,
            &self.pending.interaction_id,
            &self.pending.binding,
            session,
        );
        csrf_matches(&expected, self.params.get("csrf_token"))
    }
}

/// A GET of a page of a pending interaction (`?interaction=…`): the interaction opened for
/// this browser and the language of its pages.
pub struct InteractionPage {
    pub jar: CookieJar,
    pub pending: Pending,
    pub t: &'static Text,
}

impl FromRequestParts<App> for InteractionPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let params =
            Params::parse(parts.uri.query().unwrap_or_default().as_bytes()).unwrap_or_default();
        let jar = CookieJar::from_headers(&parts.headers);
        let pending =
            pending_or_page(app, &jar, params.get("interaction").unwrap_or_default()).await?;
        let t = text::for_locales(pending.request.ui_locales.as_deref());
        Ok(InteractionPage { jar, pending, t })
    }
}

/// The answer to a request whose client has gone: nobody reads it.
pub fn client_left() -> Response {
    StatusCode::REQUEST_TIMEOUT.into_response()
}

/// Turns the authorization pipeline's answer into a response.
pub fn render_decision(t: &Text, result: Result<Decision, AuthorizeError>) -> Response {
    match result {
        Ok(Decision::Redirect(to)) | Err(AuthorizeError::Redirect(to)) => to_client(t, &to),
        Ok(Decision::Login { interaction_id }) => {
            Redirect::to(&format!("{}?interaction={interaction_id}", paths::LOGIN)).into_response()
        }
        Ok(Decision::Consent { interaction_id }) => {
            Redirect::to(&format!("{}?interaction={interaction_id}", paths::CONSENT))
                .into_response()
        }
        Ok(Decision::SecondFactor { interaction_id }) => Redirect::to(&format!(
            "{}?interaction={interaction_id}",
            paths::LOGIN_OTP
        ))
        .into_response(),
        Ok(Decision::Enrol { interaction_id }) => Redirect::to(&format!(
            "{}?interaction={interaction_id}",
            paths::ACCOUNT_TOTP
        ))
        .into_response(),
        Ok(Decision::VerifyEmail { interaction_id }) => Redirect::to(&format!(
            "{}?interaction={interaction_id}",
            paths::EMAIL_PENDING
        ))
        .into_response(),
        Ok(Decision::DeviceAnswered { approved }) => {
            html(StatusCode::OK, &DeviceDonePage { t, approved })
        }
        Ok(Decision::Upstream(departure)) => {
            let jar =
                CookieJar::new().add(cookies::upstream_cookie(departure.secure, departure.trip));
            (jar, Redirect::to(&departure.location)).into_response()
        }
        Err(AuthorizeError::Page(err)) => error_page(t, &err),
    }
}

#[derive(Template, Serialize)]
#[template(path = "device_done.html")]
struct DeviceDonePage<'a> {
    t: &'a Text,
    approved: bool,
}

impl Page for DeviceDonePage<'_> {
    const TEMPLATE: &'static str = "device_done.html";
}

#[derive(Template, Serialize)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    t: &'a Text,
    action: &'a str,
    /// Name and value of each hidden field (a pair: `field.0`, `field.1` in askama,
    /// `field[0]`, `field[1]` in an override).
    fields: &'a [(&'static str, String)],
}

impl Page for FormPostPage<'_> {
    const TEMPLATE: &'static str = "form_post.html";
}

/// Samples of this module's pages for checking template overrides.
pub(crate) fn samples(t: &'static Text) -> Vec<overrides::Sample> {
    use overrides::sample;
    let scopes = || {
        vec![ScopeLine {
            name: "openid".to_owned(),
            description: t.describe_scope("openid"),
        }]
    };
    let mut all = Vec::new();
    for (error, username) in [(None, ""), (Some(t.login_failed), "alice")] {
        for passkeys in [false, true] {
            all.push(sample(&LoginPage {
                t,
                action: paths::LOGIN,
                client_name: "Example app",
                interaction: "interaction",
                csrf_token: "csrf",
                username,
                error,
                passkeys,
                // The links of mail and sign-up come with the passkey button in the samples,
                // so that both shapes of the page are checked.
                forgot_password: passkeys.then(|| email_text::for_text(t)),
                signup: passkeys,
                // And the upstream buttons.
                upstreams: if passkeys {
                    vec![UpstreamButton {
                        id: "corp".to_owned(),
                        display_name: "Corp SSO".to_owned(),
                    }]
                } else {
                    Vec::new()
                },
            }));
        }
    }
    for device_user_code in [None, Some("BCDF-GHJK".to_owned())] {
        all.push(sample(&ConsentPage {
            t,
            device_user_code,
            client_name: "Example app",
            interaction: "interaction",
            csrf_token: "csrf",
            username: "alice",
            scopes: scopes(),
        }));
    }
    for code in [None, Some("invalid_request")] {
        all.push(sample(&ErrorPage {
            t,
            message: t.error_expired,
            code,
        }));
    }
    for approved in [false, true] {
        all.push(sample(&DeviceDonePage { t, approved }));
    }
    all.push(sample(&FormPostPage {
        t,
        action: "https://app.example/callback",
        fields: &[("code", String::new()), ("state", String::new())],
    }));
    all
}

/// Delivers an authorization response: a 303 to the redirect URI with the parameters in its
/// query, or, for `response_mode=form_post`, a page whose form POSTs them there (submitted by
/// `static/form_post.js`, or by its button without scripts).
pub fn to_client(t: &Text, to: &ToClient) -> Response {
    match to.mode {
        ResponseMode::Query => Redirect::to(&to.url()).into_response(),
        ResponseMode::FormPost => html(
            StatusCode::OK,
            &FormPostPage {
                t,
                action: &to.redirect_uri,
                fields: &to.params,
            },
        ),
    }
}

/// The CSRF token of a form: a MAC binding it to its purpose, the interaction, the browser
/// and (for consent) the session.
pub fn csrf_token(app: &App, purpose: &str, interaction: &str, binding: &str, sid: &str) -> String {
    app.hasher.mac_parts(&[
        purpose.as_bytes(),
        interaction.as_bytes(),
        binding.as_bytes(),
        sid.as_bytes(),
    ])
}

pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| crate::crypto::constant_time_eq(expected.as_bytes(), p.as_bytes()))
}

/// Adds `Retry-After` to a throttled answer.
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Ends a login step of a flow (`authorize::log_in`): puts the new session's cookie in the
/// jar and shows where the flow goes next.
pub async fn log_in(
    app: &App,
    t: &Text,
    jar: CookieJar,
    pending: &Pending,
    proof: crate::authorize::Proof<'_>,
) -> Response {
    let old = cookies::read(&jar, cookies::session_name(&app.config));
    let logged_in = crate::authorize::log_in(app, pending, old, proof).await;
    after_log_in(app, t, jar, logged_in)
}

/// `log_in` for the second-factor form, which has read the session it raises already.
pub async fn log_in_raising(
    app: &App,
    t: &Text,
    jar: CookieJar,
    pending: &Pending,
    proof: crate::authorize::Proof<'_>,
    raised: &crate::store::SessionRecord,
) -> Response {
    let old = cookies::read(&jar, cookies::session_name(&app.config));
    let logged_in = crate::authorize::log_in_raising(app, pending, old, proof, Some(raised)).await;
    after_log_in(app, t, jar, logged_in)
}

fn after_log_in(
    app: &App,
    t: &Text,
    jar: CookieJar,
    logged_in: Result<crate::authorize::LoggedIn, OAuthError>,
) -> Response {
    match logged_in {
        Ok(done) => (
            jar.add(cookies::session_cookie(&app.config, done.cookie)),
            render_decision(t, done.decision),
        )
            .into_response(),
        Err(e) => error_page(t, &e),
    }
}

/// Starts a new session for `sub` (`session::begin`) and puts its cookie in the jar.
pub async fn begin_session(
    app: &App,
    jar: CookieJar,
    from: &StartedFrom,
    sub: &str,
    event: Option<Event>,
) -> Result<(CookieJar, Session), OAuthError> {
    begin_session_with(app, jar, from, sub, "pwd", event).await
}

/// `begin_session` with the authentication methods `amr` the session records (a second
/// factor raises a session by replacing it with one that records both).
pub async fn begin_session_with(
    app: &App,
    jar: CookieJar,
    from: &StartedFrom,
    sub: &str,
    amr: &str,
    event: Option<Event>,
) -> Result<(CookieJar, Session), OAuthError> {
    let old = cookies::read(&jar, cookies::session_name(&app.config));
    let (cookie_value, session) = session::begin(app, old, from, sub, amr, event).await?;
    Ok((
        jar.add(cookies::session_cookie(&app.config, cookie_value)),
        session,
    ))
}
