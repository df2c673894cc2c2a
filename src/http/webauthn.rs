//! The JSON endpoints that the pages' passkey script (`static/passkeys.js`) talks to:
//! registration from the account page, sign-in from the login page. Same origin only: every
//! request must carry the issuer's origin in `Origin`, a JSON body, and the page's CSRF token
//! (its `<meta name="csrf-token">`) in `X-CSRF-Token`. The ceremony's sealed state rides in
//! a short-lived cookie of its own. Errors are RFC 6749-shaped JSON, always 4xx for bad input.
//!
//! The core (`accounts::factors::passkey`) does the ceremonies; this only translates.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde_json::{Value, json};

use crate::accounts::assurance::{self, Method};
use crate::accounts::factors;
use crate::accounts::factors::passkey::{self, Binding, CEREMONY_TTL, PasskeyError};
use crate::accounts::session::{self, Session, StartedFrom};
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{self, AuthorizeError, Decision, Proof};
use crate::config::Config;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::ui::{csrf_matches, csrf_token};
use crate::protocol::authorization::ResponseMode;
use crate::protocol::discovery::paths;
use crate::protocol::{ErrorCode, OAuthError};

/// The CSRF tokens are the pages' own (the account page's forms, the login form), so one
/// `<meta>` serves both the forms and the script.
use crate::http::ui::account::PURPOSE as ACCOUNT_PURPOSE;
use crate::http::ui::login::PURPOSE as LOGIN_PURPOSE;

fn ceremony_name(config: &Config) -> &'static str {
    if config.issuer_is_https {
        "__Host-latchkey_webauthn"
    } else {
        "latchkey_webauthn"
    }
}

fn ceremony_cookie(config: &Config, value: String, max_age: i64) -> Cookie<'static> {
    let mut cookie = Cookie::new(ceremony_name(config), value);
    cookie.set_http_only(true);
    // Only the issuer's own pages start and finish a ceremony.
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    cookie.set_secure(config.issuer_is_https);
    cookie.set_max_age(cookie::time::Duration::seconds(max_age));
    cookie
}

/// The sealed ceremony from its cookie (the sealed text is longer than `cookies::read`
/// allows for the other cookies).
fn ceremony<'a>(jar: &'a CookieJar, config: &Config) -> Option<&'a str> {
    jar.get(ceremony_name(config)).map(|c| c.value())
}

/// A JSON error answer: `{"error", "error_description"}`, never cached.
fn error(status: StatusCode, err: &OAuthError) -> Response {
    crate::http::error::log_cause(err);
    let status = match err.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => status,
    };
    let mut response = (status, crate::http::error::json_body(err)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn bad_request(description: &'static str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &OAuthError::invalid_request(description),
    )
}

fn forbidden(description: &'static str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        &OAuthError::new(ErrorCode::AccessDenied, description),
    )
}

fn from_core(e: PasskeyError) -> Response {
    let status = match e {
        PasskeyError::Cloned | PasskeyError::Refused(_) => StatusCode::FORBIDDEN,
        PasskeyError::Disabled => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &e.into())
}

fn json_ok(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What every call must show before anything else is read: the issuer's origin, a JSON body
/// (which a cross-site form cannot send without a CORS preflight that is never granted), and
/// a CSRF token (checked later, against what it must be bound to).
// The error is the answer itself, built once on a cold path; boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn opening(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(Value, String), Response> {
    let Some(rp) = app.passkeys.as_deref() else {
        return Err(from_core(PasskeyError::Disabled));
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(rp.origin().as_str()) {
        return Err(forbidden(
            "the request must come from the issuer's own pages",
        ));
    }
    let Some(csrf) = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return Err(forbidden("the X-CSRF-Token header is missing"));
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(bad_request("the body must be application/json"));
    }
    let body = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| bad_request("the body is not valid JSON"))?
    };
    if !body.is_object() {
        return Err(bad_request("the body must be a JSON object"));
    }
    Ok((body, csrf))
}

/// A call from the pages' script that passed `opening`: its JSON object body, the CSRF token
/// it sent (not yet checked against anything), and the browser's cookies.
pub struct Call {
    body: Value,
    csrf: String,
    jar: CookieJar,
}

impl FromRequest<App> for Call {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(request.headers());
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let (body, csrf) = opening(app, &headers, &bytes)?;
        Ok(Call { body, csrf, jar })
    }
}

/// The session of an account-page call, checked against the account page's CSRF token.
async fn account_session(app: &App, jar: &CookieJar, csrf: &str) -> Result<Session, Response> {
    let cookie = cookies::read(jar, cookies::session_name(&app.config));
    let session = match session::current(app, cookie).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                &OAuthError::new(
                    ErrorCode::LoginRequired,
                    "sign in on the account page first",
                ),
            ));
        }
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, &e)),
    };
    let expected = csrf_token(app, ACCOUNT_PURPOSE, "", "", &session.sid);
    if !csrf_matches(&expected, Some(csrf)) {
        return Err(forbidden("the CSRF token does not match this session"));
    }
    Ok(session)
}

/// The signed-in user of a registration call, its session checked against the CSRF token.
async fn signed_in(
    app: &App,
    jar: &CookieJar,
    csrf: &str,
) -> Result<(Session, crate::store::UserRecord), Response> {
    let session = account_session(app, jar, csrf).await?;
    // A user who has (or must have) a second factor uses it on the account page first: a
    // session won with the password alone cannot add a passkey (it would skip the factor).
    match factors::standing(app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => {}
        Ok(_) => {
            return Err(forbidden(
                "confirm this session with your second factor on the account page first",
            ));
        }
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, &e.into())),
    }
    match app.store.get_user(&session.user_sub).await {
        Ok(Some(user)) if !user.disabled => Ok((session, user)),
        Ok(_) => Err(error(
            StatusCode::UNAUTHORIZED,
            &OAuthError::new(
                ErrorCode::LoginRequired,
                "sign in on the account page first",
            ),
        )),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, &e.into())),
    }
}

/// The answer to an options call: the `publicKey` options for the browser, the sealed
/// ceremony in its cookie.
fn options_answer(
    app: &App,
    jar: CookieJar,
    started: Result<(Value, String), PasskeyError>,
) -> Response {
    match started {
        Ok((options, sealed)) => {
            let jar = jar.add(ceremony_cookie(&app.config, sealed, CEREMONY_TTL));
            let body = json!({ "publicKey": options });
            (jar, json_ok(StatusCode::OK, &body)).into_response()
        }
        Err(e) => from_core(e),
    }
}

/// Finishes the sign-in ceremony in the browser's cookie (`passkey::login`) and clears the
/// cookie, whatever the outcome: a ceremony is answered once.
async fn finish_login(
    app: &App,
    jar: CookieJar,
    binding: &Binding<'_>,
    credential: &Value,
    ip: Option<std::net::IpAddr>,
) -> (CookieJar, Result<crate::store::UserRecord, PasskeyError>) {
    let sealed = ceremony(&jar, &app.config);
    let outcome = passkey::login(app, binding, sealed, credential, ip).await;
    (
        jar.add(ceremony_cookie(&app.config, String::new(), 0)),
        outcome,
    )
}

/// `POST /webauthn/register/options` `{"name"?}` → `{"publicKey": …}`.
pub async fn register_options(State(app): State<App>, call: Call) -> Response {
    let Call { body, csrf, jar } = call;
    let (session, user) = match signed_in(&app, &jar, &csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return bad_request("name must be a string"),
    };
    let started = passkey::register_options(&app, &user, &session.session_hash, name).await;
    options_answer(&app, jar, started)
}

/// `POST /webauthn/register` with the RegistrationResponseJSON → 201 `{"id", "name"}`.
pub async fn register(State(app): State<App>, ClientIp(ip): ClientIp, call: Call) -> Response {
    let Call { body, csrf, jar } = call;
    let (session, user) = match signed_in(&app, &jar, &csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let sealed = ceremony(&jar, &app.config);
    let outcome = passkey::register(&app, &user, &session.session_hash, sealed, &body, ip).await;
    let jar = jar.add(ceremony_cookie(&app.config, String::new(), 0));
    match outcome {
        Ok(record) => {
            let body = json!({
                "id": record.passkey_id,
                "name": record.name,
                "created_at": record.created_at,
            });
            (jar, json_ok(StatusCode::CREATED, &body)).into_response()
        }
        Err(e) => (jar, from_core(e)).into_response(),
    }
}

/// The pending interaction a sign-in call names, opened for this browser, at a stage the
/// login page may act on, with the login form's CSRF token.
async fn pending_for_login(
    app: &App,
    jar: &CookieJar,
    body: &Value,
    csrf: &str,
) -> Result<authorize::Pending, Response> {
    let Some(interaction) = body.get("interaction").and_then(Value::as_str) else {
        return Err(bad_request("interaction is required"));
    };
    let binding = cookies::read(jar, cookies::binding_name(&app.config));
    let pending = match authorize::load_pending(app, interaction, binding).await {
        Ok(Some(p)) if p.admits(Page::Login) => p,
        Ok(_) => {
            return Err(bad_request(
                "this sign-in request is unknown, has expired, or belongs to another browser",
            ));
        }
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, &e.into())),
    };
    let expected = csrf_token(
        app,
        LOGIN_PURPOSE,
        &pending.interaction_id,
        &pending.binding,
        "",
    );
    if !csrf_matches(&expected, Some(csrf)) {
        return Err(forbidden(
            "the CSRF token does not match this sign-in request",
        ));
    }
    Ok(pending)
}

/// `POST /webauthn/login/options` `{"interaction"}` → `{"publicKey": …}`.
pub async fn login_options(State(app): State<App>, call: Call) -> Response {
    let Call { body, csrf, jar } = call;
    if body.get("interaction").is_none() {
        return account_options(&app, jar, &csrf).await;
    }
    let pending = match pending_for_login(&app, &jar, &body, &csrf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let binding = Binding::Login {
        finish_id: &pending.finish_id,
        browser_binding: &pending.binding,
    };
    options_answer(&app, jar, passkey::login_options(&app, &binding))
}

/// `POST /webauthn/login` `{"interaction", "credential"}` → `{"redirect": URL}`: signs the
/// user in (a new session, as a password login would) and continues the interaction.
pub async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    call: Call,
) -> Response {
    let Call { body, csrf, jar } = call;
    let Some(credential) = body.get("credential") else {
        return bad_request("credential is required");
    };
    if body.get("interaction").is_none() {
        return account_login(&app, &from, jar, &csrf, credential).await;
    }
    let pending = match pending_for_login(&app, &jar, &body, &csrf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let binding = Binding::Login {
        finish_id: &pending.finish_id,
        browser_binding: &pending.binding,
    };
    let (jar, outcome) = finish_login(&app, jar, &binding, credential, ip).await;
    let user = match outcome {
        Ok(user) => user,
        Err(e) => return (jar, from_core(e)).into_response(),
    };
    let event = crate::accounts::login::succeeded(&user.sub, ip, Some(&pending.client.client_id))
        .detail("method", "passkey");
    let proof = Proof {
        user_sub: &user.sub,
        method: Method::Hwk,
        from: &from,
        event: Some(event),
    };
    let old = cookies::read(&jar, cookies::session_name(&app.config));
    match authorize::log_in(&app, &pending, old, proof).await {
        Ok(done) => {
            let jar = jar.add(cookies::session_cookie(&app.config, done.cookie));
            (jar, continue_with(done.decision)).into_response()
        }
        Err(e) => (jar, error(StatusCode::BAD_REQUEST, &e)).into_response(),
    }
}

/// Login options for the account page's step-up (no interaction): the ceremony is bound to
/// the signed-in session.
async fn account_options(app: &App, jar: CookieJar, csrf: &str) -> Response {
    let session = match account_session(app, &jar, csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let binding = Binding::Account {
        session_hash: &session.session_hash,
    };
    options_answer(app, jar, passkey::login_options(app, &binding))
}

/// The account page's step-up with a passkey: the passkey must be the signed-in user's; the
/// session is replaced by one that also records it (`hwk`, level `phr`).
async fn account_login(
    app: &App,
    from: &StartedFrom,
    jar: CookieJar,
    csrf: &str,
    credential: &Value,
) -> Response {
    let session = match account_session(app, &jar, csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let binding = Binding::Account {
        session_hash: &session.session_hash,
    };
    let ip = from.ip;
    let (jar, outcome) = finish_login(app, jar, &binding, credential, ip).await;
    let user = match outcome {
        Ok(user) => user,
        Err(e) => return (jar, from_core(e)).into_response(),
    };
    if user.sub != session.user_sub {
        let refused = PasskeyError::Refused("this passkey belongs to another account");
        return (jar, from_core(refused)).into_response();
    }
    let amr = assurance::with_method(&session.amr, Method::Hwk);
    let event = crate::accounts::login::succeeded(&user.sub, ip, None).detail("method", "passkey");
    let old = cookies::read(&jar, cookies::session_name(&app.config));
    match session::begin(app, old, from, &user.sub, &amr, Some(event)).await {
        Ok((cookie_value, _)) => {
            let jar = jar.add(cookies::session_cookie(&app.config, cookie_value));
            let body = json!({ "redirect": paths::ACCOUNT });
            (jar, json_ok(StatusCode::OK, &body)).into_response()
        }
        Err(e) => (jar, error(StatusCode::BAD_REQUEST, &e)).into_response(),
    }
}

/// Where the browser goes next, as JSON: the client (its redirect URI with the response in
/// the query; for `response_mode=form_post` the fields to POST there, in `form_post`), or
/// the consent page.
fn continue_with(decision: Result<Decision, AuthorizeError>) -> Response {
    let body = match decision {
        Ok(Decision::Redirect(to)) | Err(AuthorizeError::Redirect(to)) => match to.mode {
            ResponseMode::Query => json!({ "redirect": to.url() }),
            ResponseMode::FormPost => {
                let fields: serde_json::Map<String, Value> = to
                    .params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
                    .collect();
                json!({ "redirect": to.redirect_uri, "form_post": fields })
            }
        },
        Ok(Decision::Consent { interaction_id }) => {
            json!({ "redirect": format!("{}?interaction={interaction_id}", paths::CONSENT) })
        }
        Ok(Decision::Login { interaction_id }) => {
            json!({ "redirect": format!("{}?interaction={interaction_id}", paths::LOGIN) })
        }
        Ok(Decision::SecondFactor { interaction_id }) => {
            json!({ "redirect": format!("{}?interaction={interaction_id}", paths::LOGIN_OTP) })
        }
        Ok(Decision::Enrol { interaction_id }) => {
            json!({ "redirect": format!("{}?interaction={interaction_id}", paths::ACCOUNT_TOTP) })
        }
        Ok(Decision::VerifyEmail { interaction_id }) => {
            json!({ "redirect": format!("{}?interaction={interaction_id}", paths::EMAIL_PENDING) })
        }
        // A passkey sign-in is a login of its own; it never departs to an upstream, but the
        // browser would follow the upstream's URL (the round-trip cookie is not set here, so
        // the callback would answer with the expired page).
        Ok(Decision::Upstream(departure)) => json!({ "redirect": departure.location }),
        Ok(Decision::DeviceAnswered { .. }) => {
            return bad_request("a device request is answered on the consent page");
        }
        Err(AuthorizeError::Page(err)) => return error(StatusCode::BAD_REQUEST, &err),
    };
    json_ok(StatusCode::OK, &body)
}
