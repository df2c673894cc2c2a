//! The account page (`accounts::account`): a signed-in user edits the profile claims the
//! operator allows, changes their password, sees where they are signed in and signs sessions
//! out, sees which applications they gave access (with which scopes) and withdraws it, and
//! manages their second factors. Without a session the page shows a login form of its own
//! (`/account/login`).
//!
//! Every form of the page POSTs with a CSRF token bound to the session (`acting_session`
//! checks it, and the second factor a user has, before anything happens). The sections'
//! handlers have a file each (`password`, `email`, `profile`, `sessions`); a refused form
//! comes back as the whole page (`render`) with the message next to the field it concerns,
//! in the page's language (`text::preferred`), a done one as a redirect to the page with a
//! notice (`?done=…`).

pub mod email;
pub mod identities;
pub mod password;
pub mod profile;
pub mod sessions;
mod wording;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use self::wording::AccountText;
use super::text::{self, Text};
use super::{
    LoginPage, PageForm, ScopeLine, begin_session, client_left, csrf_matches, csrf_token,
    error_page, expired_page, html, with_retry_after,
};
use crate::accounts::account::{
    email as email_core, profile as profile_core, sessions as sessions_core,
};
use crate::accounts::factors::passkey;
use crate::accounts::login::{self, LoginOutcome};
use crate::accounts::password_change::TicketScope;
use crate::accounts::session::{self, Session, StartedFrom};
use crate::accounts::{account, factors};
use crate::app::App;
use crate::crypto::random_secret;
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::form::Params;
use crate::protocol::{OAuthError, Scope};

use crate::protocol::discovery::paths::{ACCOUNT as PATH, ACCOUNT_LOGIN as LOGIN_PATH};
const LOGIN_PURPOSE: &str = "account-login";
/// The CSRF purpose of the account page's forms and its passkey script.
pub const PURPOSE: &str = "account";

#[derive(serde::Serialize)]
pub struct AppLine {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<ScopeLine>,
}

/// A time as the account page shows it: in words of the page's language, and in RFC 3339
/// for the `<time datetime>` attribute.
#[derive(serde::Serialize)]
pub struct Shown {
    pub text: String,
    pub machine: String,
}

impl Shown {
    fn new(t: &Text, unix: i64) -> Self {
        Shown {
            text: t.when(unix),
            machine: Text::machine_time(unix),
        }
    }
}

/// A passkey as the account page lists it.
#[derive(serde::Serialize)]
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: Shown,
    pub last_used: Option<Shown>,
}

#[derive(serde::Serialize)]
pub struct FactorLine {
    pub id: String,
    pub name: String,
    /// The kind, in words of the page's language.
    pub kind: String,
    pub last_used: Option<Shown>,
}

/// An editable claim as the profile form shows it.
#[derive(serde::Serialize)]
pub struct ProfileLine {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    /// The input's `type` (`text`, `url`, `tel`).
    pub input_type: &'static str,
    /// The input's `autocomplete` token (WHATWG HTML, "Autofill").
    pub autocomplete: &'static str,
    pub error: Option<&'static str>,
}

/// A session as the page lists it.
#[derive(serde::Serialize)]
pub struct SessionLine {
    pub sid: String,
    pub device: String,
    pub address: String,
    pub started: Shown,
    pub last_used: Shown,
    pub current: bool,
}

#[derive(Template, serde::Serialize)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    a: &'a AccountText,
    /// What the last form did (`?done=…`), or why it was refused.
    notice: Option<&'a str>,
    /// Next to the current password of the password form (wrong, or throttled).
    current_password_error: Option<&'a str>,
    /// Next to the new password (refused by the policy).
    new_password_error: Option<&'a str>,
    /// The email section is shown (`accounts::account::email::editable`).
    email_editable: bool,
    /// The user's address, if any, and whether it is verified.
    email: Option<String>,
    email_verified: bool,
    /// What was typed into the new address field of a refused form.
    email_value: String,
    /// Next to the new address (not an address, too many changes).
    email_error: Option<&'a str>,
    /// Next to the email form's current password.
    email_password_error: Option<&'a str>,
    /// False for a user created through an upstream who never set one: no form asks for it.
    has_password: bool,
    /// The reset mail can set a first password (mail is on, and the user has an address).
    password_by_mail: bool,
    profile: Vec<ProfileLine>,
    profile_refused: bool,
    sessions: Vec<SessionLine>,
    sessions_more: bool,
    username: &'a str,
    csrf_token: &'a str,
    apps: Vec<AppLine>,
    passkeys_enabled: bool,
    passkeys: Vec<PasskeyLine>,
    factors_csrf: &'a str,
    factors: Vec<FactorLine>,
    has_totp: bool,
    /// Linked sign-ins (`identities`): the user's, and the upstreams offered to link.
    identities: Vec<identities::IdentityLine>,
    upstreams: Vec<super::UpstreamButton>,
    /// Why an unlink was refused.
    identity_error: Option<&'a str>,
}

impl super::Page for AccountPage<'_> {
    const TEMPLATE: &'static str = "account.html";
}

async fn current_session(app: &App, jar: &CookieJar) -> Result<Option<Session>, OAuthError> {
    session::current(app, cookies::read(jar, cookies::session_name(&app.config))).await
}

/// The login form of the account page, bound to this browser's binding cookie (set here when
/// the browser has none).
fn login_form(
    app: &App,
    jar: CookieJar,
    t: &Text,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
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
    let csrf = csrf_token(app, LOGIN_PURPOSE, "", &binding, "");
    let page = html(
        status,
        &LoginPage {
            t,
            action: LOGIN_PATH,
            client_name: t.account_sign_in,
            interaction: "",
            csrf_token: &csrf,
            username,
            error,
            passkeys: false,
            forgot_password: app.mailer.is_some().then(|| super::email_text::for_text(t)),
            signup: false,
            upstreams: Vec::new(),
        },
    );
    (jar, page).into_response()
}

/// What a POST of the account page hands back to the page besides the session: a notice,
/// or a refusal shown next to its field.
#[derive(Default)]
pub struct Feedback {
    pub notice: Option<&'static str>,
    pub current_password_error: Option<&'static str>,
    pub new_password_error: Option<&'static str>,
    /// The email form as submitted, when it was refused.
    pub email_value: Option<String>,
    pub email_error: Option<&'static str>,
    pub email_password_error: Option<&'static str>,
    /// The profile form as submitted, with its refused values marked.
    pub profile: Option<Vec<profile_core::Field>>,
    /// Why an unlink was refused, shown in the linked sign-ins section.
    pub identity_error: Option<&'static str>,
}

/// The notice for `?done=…` after a form of the page did its work.
fn done_notice(a: &'static AccountText, query: Option<&str>) -> Option<&'static str> {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    match params.get("done")? {
        "password" => Some(a.password_changed),
        "profile" => Some(a.profile_saved),
        "email" => Some(a.email_sent),
        "email-unchanged" => Some(a.email_unchanged),
        "session" => Some(a.session_ended),
        "sessions" => Some(a.sessions_ended),
        "linked" => Some(a.identity_linked),
        "unlinked" => Some(a.identity_unlinked),
        _ => None,
    }
}

pub async fn show(State(app): State<App>, RawQuery(query): RawQuery, jar: CookieJar) -> Response {
    // Outside an authorization request there is no `ui_locales`: the language picked with
    // the switcher, else the browser's.
    let t = text::preferred();
    let session = match current_session(&app, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return login_form(&app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e),
    };
    // A user who has (or must have) a second factor uses it here too: a session won with
    // the password alone gets the second-factor step, or the enrolment, first.
    let standing = match factors::standing(&app, &session.user_sub).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return error_page(t, &e.into()),
    };
    if !factors::account_level_met(&standing, &session.amr) {
        if standing.has_second_factor() {
            return super::factors::account_otp_page(&app, t, &session, None, StatusCode::OK).await;
        }
        return Redirect::to(crate::protocol::discovery::paths::ACCOUNT_TOTP).into_response();
    }
    let feedback = Feedback {
        notice: done_notice(wording::for_lang(t.lang), query.as_deref()),
        ..Feedback::default()
    };
    render(&app, t, jar, &session, feedback, StatusCode::OK).await
}

/// The session a POST of the account page acts in: a live session, the form's CSRF token
/// made for that session, and (for a user who has or must have one) the second factor in
/// it. Otherwise the answer to give instead: back to the page, which asks for what is
/// missing (a sign-in, the second factor), or the expired page for a foreign form.
pub async fn acting_session(
    app: &App,
    params: &Params,
    jar: &CookieJar,
) -> Result<Session, Response> {
    let t = text::preferred();
    let session = match current_session(app, jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Redirect::to(PATH).into_response()),
        Err(e) => return Err(error_page(t, &e)),
    };
    if !csrf_matches(
        &csrf_token(app, PURPOSE, "", "", &session.sid),
        params.get("csrf_token"),
    ) {
        return Err(expired_page(t));
    }
    match factors::standing(app, &session.user_sub).await {
        Ok(Some(standing)) if factors::account_level_met(&standing, &session.amr) => Ok(session),
        Ok(_) => Err(Redirect::to(PATH).into_response()),
        Err(e) => Err(error_page(t, &e.into())),
    }
}

/// The page after a form did its work: a redirect to it with the notice for `done`.
pub fn done(what: &str) -> Response {
    Redirect::to(&format!("{PATH}?done={what}")).into_response()
}

/// The whole account page for `session`, with `feedback` from a form, answered with
/// `status`.
pub async fn render(
    app: &App,
    t: &Text,
    jar: CookieJar,
    session: &Session,
    feedback: Feedback,
    status: StatusCode,
) -> Response {
    let a = wording::for_lang(t.lang);
    let overview = match account::overview(app, session).await {
        Ok(Some(o)) => o,
        Ok(None) => return login_form(app, jar, t, "", None, StatusCode::OK),
        Err(e) => return error_page(t, &e),
    };
    let listed = match factors::list(app, &session.user_sub).await {
        Ok(l) => l,
        Err(e) => return error_page(t, &e.into()),
    };
    let has_totp = listed.iter().any(|f| f.kind == "totp");
    // Passkeys have a section of their own (with their dates and the add form).
    let factor_lines = listed
        .into_iter()
        .filter(|f| f.kind != "passkey")
        .map(|f| FactorLine {
            id: f.id,
            name: f.name,
            kind: t.factor_kind(f.kind),
            last_used: f.last_used_at.map(|at| Shown::new(t, at)),
        })
        .collect();
    let apps = overview
        .granted
        .into_iter()
        .map(|granted| AppLine {
            scopes: Scope::parse_lenient(&granted.scope)
                .iter()
                .map(|s| ScopeLine {
                    name: s.to_owned(),
                    description: t.describe_scope(s),
                })
                .collect(),
            client_id: granted.client_id,
            name: granted.name,
        })
        .collect();
    let passkeys = match passkey::list(app, &session.user_sub).await {
        Ok(list) => list
            .into_iter()
            .map(|p| PasskeyLine {
                id: p.passkey_id,
                name: p.name,
                created: Shown::new(t, p.created_at),
                last_used: p.last_used_at.map(|at| Shown::new(t, at)),
            })
            .collect(),
        Err(e) => return error_page(t, &e.into()),
    };
    let (sessions, sessions_more) = match sessions_core::list(app, session).await {
        Ok((listed, more)) => (session_lines(t, a, listed), more),
        Err(e) => return error_page(t, &e),
    };
    let (identities, upstreams) = match identities::lines(app, &session.user_sub).await {
        Ok(l) => l,
        Err(e) => return error_page(t, &e.into()),
    };
    let profile_refused = feedback.profile.is_some();
    let fields = feedback.profile.unwrap_or_else(|| {
        profile_core::fields(&app.config.account_editable_claims, &overview.claims)
    });
    let csrf = csrf_token(app, PURPOSE, "", "", &session.sid);
    let factors_csrf = super::factors::account_csrf(app, session);
    let email = overview.claims.email.clone().filter(|e| !e.is_empty());
    let password_by_mail = app.mailer.is_some() && email.is_some();
    html(
        status,
        &AccountPage {
            t,
            a,
            notice: feedback.notice,
            current_password_error: feedback.current_password_error,
            new_password_error: feedback.new_password_error,
            email_editable: email_core::editable(app),
            email_verified: email.is_some() && overview.claims.email_verified == Some(true),
            email,
            email_value: feedback.email_value.unwrap_or_default(),
            email_error: feedback.email_error,
            email_password_error: feedback.email_password_error,
            has_password: overview.has_password,
            password_by_mail,
            profile: profile_lines(a, fields),
            profile_refused,
            sessions,
            sessions_more,
            username: &overview.username,
            csrf_token: &csrf,
            apps,
            passkeys_enabled: app.passkeys.is_some(),
            passkeys,
            factors_csrf: &factors_csrf,
            factors: factor_lines,
            has_totp,
            identities,
            upstreams,
            identity_error: feedback.identity_error,
        },
    )
}

fn profile_lines(a: &AccountText, fields: Vec<profile_core::Field>) -> Vec<ProfileLine> {
    use profile_core::EditableClaim as C;
    fields
        .into_iter()
        .map(|field| {
            let (input_type, autocomplete) = match field.claim {
                C::Name => ("text", "name"),
                C::GivenName => ("text", "given-name"),
                C::MiddleName => ("text", "additional-name"),
                C::FamilyName => ("text", "family-name"),
                C::Nickname => ("text", "nickname"),
                C::PreferredUsername => ("text", "username"),
                C::Profile | C::Picture | C::Website => ("url", "url"),
                C::Gender => ("text", "sex"),
                C::Birthdate => ("text", "bday"),
                C::Zoneinfo => ("text", "off"),
                C::Locale => ("text", "language"),
                C::PhoneNumber => ("tel", "tel"),
            };
            ProfileLine {
                name: field.claim.name(),
                label: a.claim_label(field.claim),
                value: field.value,
                input_type,
                autocomplete,
                error: field.invalid.map(|i| a.invalid(i)),
            }
        })
        .collect()
}

fn session_lines(
    t: &Text,
    a: &AccountText,
    listed: Vec<sessions_core::Listed>,
) -> Vec<SessionLine> {
    listed
        .into_iter()
        .map(|s| SessionLine {
            device: if s.device.is_empty() {
                a.session_unknown_device.to_owned()
            } else {
                s.device
            },
            address: s.ip.unwrap_or_else(|| a.session_unknown_address.to_owned()),
            started: Shown::new(t, s.started_at),
            last_used: Shown::new(t, s.last_used_at),
            current: s.current,
            sid: s.sid,
        })
        .collect()
}

pub async fn login(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: PageForm,
) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let Some(binding) = cookies::read(&jar, cookies::binding_name(&app.config)).map(str::to_owned)
    else {
        return expired_page(t);
    };
    if !csrf_matches(
        &csrf_token(&app, LOGIN_PURPOSE, "", &binding, ""),
        params.get("csrf_token"),
    ) {
        return expired_page(t);
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    match login::check_credentials(&app, username, password, ip, None).await {
        Ok(LoginOutcome::Success(user)) => {
            // A new password is owed first: `POST /password` finishes the sign-in.
            if user.password_reset_required {
                let scope = TicketScope {
                    interaction: "",
                    binding: &binding,
                };
                return super::password::render(&app, t, &scope, &user, None, StatusCode::OK);
            }
            let succeeded = login::succeeded(&user.sub, ip, None);
            match begin_session(&app, jar, &from, &user.sub, Some(succeeded)).await {
                Ok((jar, _)) => (jar, Redirect::to(PATH)).into_response(),
                Err(e) => error_page(t, &e),
            }
        }
        Ok(LoginOutcome::Failed) => login_form(
            &app,
            jar,
            t,
            username,
            Some(t.login_failed),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(LoginOutcome::ClientLeft) => client_left(),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let response = login_form(
                &app,
                jar,
                t,
                username,
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            );
            with_retry_after(response, retry_after)
        }
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/consents`: withdraw what the user granted one client.
pub async fn withdraw(State(app): State<App>, ClientIp(ip): ClientIp, form: PageForm) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(client_id) = params.get("client_id") else {
        return error_page(t, &OAuthError::invalid_request("client_id is required"));
    };
    match account::withdraw(&app, &session, client_id, ip).await {
        Ok(()) => Redirect::to(PATH).into_response(),
        Err(e) => error_page(t, &e),
    }
}

/// `POST /account/passkeys/remove`: remove one of the user's passkeys (a plain form, so it
/// works without scripts). The last second factor of a user who must use one is refused, as
/// for every factor (`factors::remove_own`).
pub async fn remove_passkey(State(app): State<App>, form: PageForm) -> Response {
    let t = text::preferred();
    let PageForm { params, jar } = form;
    let session = match acting_session(&app, &params, &jar).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(passkey_id) = params.get("passkey_id") else {
        return error_page(t, &OAuthError::invalid_request("passkey_id is required"));
    };
    match factors::remove_own(&app, &session.user_sub, passkey_id).await {
        Ok(true) => Redirect::to(PATH).into_response(),
        Ok(false) => error_page(t, &OAuthError::invalid_request("no such passkey")),
        Err(e) => error_page(t, &e),
    }
}

/// Samples of the account page for checking template overrides: empty, and with one of
/// everything.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let a = wording::for_lang(t.lang);
    let empty = AccountPage {
        t,
        a,
        notice: None,
        current_password_error: None,
        new_password_error: None,
        email_editable: false,
        email: None,
        email_verified: false,
        email_value: String::new(),
        email_error: None,
        email_password_error: None,
        has_password: true,
        password_by_mail: false,
        profile: Vec::new(),
        profile_refused: false,
        sessions: Vec::new(),
        sessions_more: false,
        username: "alice",
        csrf_token: "csrf",
        apps: Vec::new(),
        passkeys_enabled: false,
        passkeys: Vec::new(),
        factors_csrf: "csrf",
        factors: Vec::new(),
        has_totp: false,
        identities: Vec::new(),
        upstreams: Vec::new(),
        identity_error: None,
    };
    let full = AccountPage {
        apps: vec![AppLine {
            client_id: "app".to_owned(),
            name: "Example app".to_owned(),
            scopes: vec![ScopeLine {
                name: "openid".to_owned(),
                description: t.describe_scope("openid"),
            }],
        }],
        passkeys_enabled: true,
        passkeys: vec![
            PasskeyLine {
                id: "p1".to_owned(),
                name: "Laptop".to_owned(),
                created: Shown::new(t, 0),
                last_used: Some(Shown::new(t, 60)),
            },
            PasskeyLine {
                id: "p2".to_owned(),
                name: "Phone".to_owned(),
                created: Shown::new(t, 0),
                last_used: None,
            },
        ],
        factors: vec![
            FactorLine {
                id: "f1".to_owned(),
                name: "Phone app".to_owned(),
                kind: "TOTP".to_owned(),
                last_used: Some(Shown::new(t, 60)),
            },
            FactorLine {
                id: "f2".to_owned(),
                name: "Tablet app".to_owned(),
                kind: "TOTP".to_owned(),
                last_used: None,
            },
        ],
        has_totp: true,
        notice: Some(a.profile_saved),
        current_password_error: Some(a.password_wrong),
        new_password_error: Some(a.password_guessable),
        email_editable: true,
        email: Some("alice@example.com".to_owned()),
        email_verified: false,
        email_value: "alice@example".to_owned(),
        email_error: Some(a.email_invalid),
        email_password_error: Some(a.password_wrong),
        has_password: true,
        password_by_mail: false,
        profile: vec![ProfileLine {
            name: "name",
            label: a.claim_label(profile_core::EditableClaim::Name),
            value: "Alice".to_owned(),
            input_type: "text",
            autocomplete: "name",
            error: Some(a.invalid(profile_core::Invalid::TooLong)),
        }],
        profile_refused: true,
        sessions: vec![SessionLine {
            sid: "s1".to_owned(),
            device: "Firefox, Linux".to_owned(),
            address: "192.0.2.1".to_owned(),
            started: Shown::new(t, 0),
            last_used: Shown::new(t, 60),
            current: true,
        }],
        sessions_more: true,
        identities: vec![identities::IdentityLine {
            upstream: "corp".to_owned(),
            name: "Corp SSO".to_owned(),
            subject: "248289761001".to_owned(),
        }],
        upstreams: vec![super::UpstreamButton {
            id: "corp".to_owned(),
            display_name: "Corp SSO".to_owned(),
        }],
        identity_error: Some(a.identity_last_way_in),
        ..empty
    };
    let empty = AccountPage {
        t,
        a,
        notice: None,
        current_password_error: None,
        new_password_error: None,
        email_editable: true,
        email: Some("alice@example.com".to_owned()),
        email_verified: true,
        email_value: String::new(),
        email_error: None,
        email_password_error: None,
        has_password: true,
        password_by_mail: false,
        profile: Vec::new(),
        profile_refused: false,
        sessions: Vec::new(),
        sessions_more: false,
        username: "alice",
        csrf_token: "csrf",
        apps: Vec::new(),
        passkeys_enabled: true,
        passkeys: Vec::new(),
        factors_csrf: "csrf",
        factors: Vec::new(),
        has_totp: false,
        // Upstreams to link, none linked yet.
        identities: Vec::new(),
        upstreams: vec![super::UpstreamButton {
            id: "corp".to_owned(),
            display_name: "Corp SSO".to_owned(),
        }],
        identity_error: None,
    };
    let mut all = vec![
        super::overrides::sample(&empty),
        super::overrides::sample(&full),
    ];
    // Created through an upstream: no password, so no form asks for one.
    let passwordless = AccountPage {
        has_password: false,
        password_by_mail: true,
        identities: vec![identities::IdentityLine {
            upstream: "corp".to_owned(),
            name: "Corp SSO".to_owned(),
            subject: "248289761001".to_owned(),
        }],
        upstreams: Vec::new(),
        ..empty
    };
    all.push(super::overrides::sample(&passwordless));
    all
}
