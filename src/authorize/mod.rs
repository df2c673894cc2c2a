//! The authorization endpoint's pipeline (RFC 6749 §4.1, OpenID Connect Core §3.1.2), as an
//! ordered list of steps:
//!
//! 0. `par::effective_params`: the pushed request a `request_uri` names, or the contents of
//!    a signed `request` (errors go to a registered redirect URI the request as sent names,
//!    else they are shown as a page);
//! 1. `request::resolve_target`: client and redirect URI (errors shown as a page, never
//!    redirected);
//! 2. `request::validate`: response type, scope, PKCE, prompt, max_age, hints, resource
//!    (errors redirected to the client with `state` and `iss`);
//! 3. `flow::next`: with the browser's session, whether the user must log in, must consent,
//!    or gets a code now;
//! 4. `new_code`: a single-use code bound to everything the token request must repeat.
//!
//! The login and consent pages resume the flow through `pending` (`continue_after_login`,
//! `consent_to_ask`, `answer_consent`); the request they work on travels sealed
//! (`interaction`), with the stage `flow` decided. Nothing here knows HTTP: the caller renders
//! `Decision`.

pub mod device;
pub mod flow;
pub mod interaction;
pub mod par;
pub mod pending;
pub mod pkce;
pub mod redirect_uri;
pub mod request;
pub mod request_object;

pub use pending::{
    LoggedIn, Pending, Proof, answer_consent, consent_to_ask, continue_after_login, enrolled,
    load_pending, log_in, log_in_raising, stage_session,
};

use url::Url;

use crate::app::App;
use crate::crypto::{random_secret, random_token};
use crate::protocol::authorization::{AuthorizationRequest, ResponseMode};
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{AuthCodeRecord, ClientRecord, SessionRecord, StoreError};
use flow::{Arrival, Next, Stage};

/// An error of the authorization endpoint.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Client or redirect URI could not be trusted: render an error page (HTTP 400).
    Page(OAuthError),
    /// Send the error to the client (RFC 6749 §4.1.2.1, RFC 9207).
    Redirect(ToClient),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Page(e.into())
    }
}

/// What the endpoint does next.
#[derive(Debug)]
pub enum Decision {
    /// Send the browser back to the client with a code or an error.
    Redirect(ToClient),
    /// The user must log in; `interaction_id` is the sealed interaction.
    Login { interaction_id: String },
    /// The user must give the second factor the flow owes (the session has only the first).
    SecondFactor { interaction_id: String },
    /// The user must enrol a second factor (TOTP) before the flow continues.
    Enrol { interaction_id: String },
    /// The user must consent; `interaction_id` is the sealed interaction.
    Consent { interaction_id: String },
    /// The user must verify their email address ("check your mail") before the flow goes on.
    VerifyEmail { interaction_id: String },
    /// A device's authorization was answered (RFC 8628): tell the person to return to it.
    DeviceAnswered { approved: bool },
    /// The user logs in at an upstream identity provider (`upstream::flow::begin`).
    Upstream(crate::upstream::flow::Departure),
}

/// An authorization response: parameters for the client's redirect URI, delivered as the
/// request asked (`ResponseMode`): in the query of a 303, or POSTed by a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToClient {
    pub redirect_uri: String,
    pub params: Vec<(&'static str, String)>,
    pub mode: ResponseMode,
}

impl ToClient {
    fn new(
        app: &App,
        redirect_uri: &str,
        mode: ResponseMode,
        mut params: Vec<(&'static str, String)>,
        state: Option<&str>,
    ) -> Self {
        if let Some(s) = state {
            params.push(("state", s.to_owned()));
        }
        params.push(("iss", app.config.issuer.clone()));
        ToClient {
            redirect_uri: redirect_uri.to_owned(),
            params,
            mode,
        }
    }

    /// The redirect URI with the parameters appended to its query, keeping any query it
    /// already has (RFC 6749 §3.1.2): what a `query` response sends the browser to.
    pub fn url(&self) -> String {
        match Url::parse(&self.redirect_uri) {
            Ok(mut url) => {
                {
                    let mut query = url.query_pairs_mut();
                    for (k, v) in &self.params {
                        query.append_pair(k, v);
                    }
                }
                url.to_string()
            }
            Err(_) => self.redirect_uri.clone(),
        }
    }
}

/// The client response carrying an error, `state` and `iss`.
pub fn error_redirect(
    app: &App,
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: &OAuthError,
) -> ToClient {
    let params = vec![
        ("error", error.code.as_str().to_owned()),
        ("error_description", error.description.to_string()),
    ];
    ToClient::new(app, redirect_uri, mode, params, state)
}

/// Steps 1 to 3 for a fresh request from the browser.
pub async fn authorize(
    app: &App,
    params: &Params,
    session: Option<SessionRecord>,
    browser_binding: &str,
) -> Result<Decision, AuthorizeError> {
    let params = match par::effective_params(app, params).await {
        Ok(p) => p,
        // A refused request object or request_uri goes back to the client when the request
        // as sent names it and, explicitly, one of its registered redirect URIs; else it is
        // shown.
        Err(e) => {
            let named = params.contains("redirect_uri") && e.code != ErrorCode::ServerError;
            return Err(match request::resolve_target(app, params).await {
                Ok(target) if named => AuthorizeError::Redirect(error_redirect(
                    app,
                    &target.redirect_uri,
                    target.response_mode,
                    target.state.as_deref(),
                    &e,
                )),
                _ => AuthorizeError::Page(e),
            });
        }
    };
    let params = params.as_ref();
    let target = request::resolve_target(app, params).await?;
    let redirect_error = |e: OAuthError| {
        AuthorizeError::Redirect(error_redirect(
            app,
            &target.redirect_uri,
            target.response_mode,
            target.state.as_deref(),
            &e,
        ))
    };
    let request = request::validate(app, &target, params).map_err(redirect_error)?;
    let decision = decide(app, &target.client, request, session, browser_binding)
        .await
        // A failure of our own is shown here; protocol answers go back to the client.
        .map_err(|e| match e.code {
            ErrorCode::ServerError => AuthorizeError::Page(e),
            _ => redirect_error(e),
        })?;
    // `upstream={id}`: when a login is owed, it happens at that upstream, without the
    // login page.
    match (decision, params.get("upstream")) {
        (Decision::Login { interaction_id }, Some(upstream)) => {
            let Some(pending) = load_pending(app, &interaction_id, Some(browser_binding)).await?
            else {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(
                    "the sign-in request could not be continued",
                )));
            };
            crate::upstream::flow::begin(app, &pending, upstream)
                .await
                .map(Decision::Upstream)
        }
        (decision, _) => Ok(decision),
    }
}

async fn decide(
    app: &App,
    client: &ClientRecord,
    request: AuthorizationRequest,
    session: Option<SessionRecord>,
    browser_binding: &str,
) -> Result<Decision, OAuthError> {
    // A session of a user who was disabled or deleted counts as no session.
    let session = match session {
        Some(s) => match app.store.get_user(&s.user_sub).await? {
            Some(user) if !user.disabled => Some(s),
            _ => None,
        },
        None => None,
    };
    let next = flow::next(
        deciding(app),
        client,
        &request,
        session.as_ref(),
        Arrival::Authorize,
    )
    .await?;
    let seals = seals(app);
    match (next, session) {
        (Next::Code, Some(session)) => {
            let (code, record, grant_expires_at) = new_code(app, &request, &session);
            app.store.insert_code(&record, grant_expires_at).await?;
            Ok(Decision::Redirect(success_redirect(app, &request, &code)))
        }
        (next @ (Next::SecondFactor | Next::Enrol), Some(session)) => {
            if request.prompt.none {
                return Err(OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "the request needs a stronger authentication than the session has, and \
                     prompt=none forbids asking for it",
                ));
            }
            let stage = match next {
                Next::SecondFactor => Stage::SecondFactor { sid: session.sid },
                _ => Stage::Enrol { sid: session.sid },
            };
            let interaction_id = seals.seal(&request, browser_binding, &stage)?;
            Ok(pending::decision_at(&stage, interaction_id))
        }
        (Next::VerifyEmail, Some(session)) => {
            if request.prompt.none {
                return Err(OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "the user must verify their email address first, and prompt=none forbids \
                     asking",
                ));
            }
            let stage = Stage::VerifyEmail { sid: session.sid };
            let interaction_id = seals.seal(&request, browser_binding, &stage)?;
            Ok(Decision::VerifyEmail { interaction_id })
        }
        (Next::Consent, Some(session)) => {
            if request.prompt.none {
                return Err(OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not granted every requested scope, and prompt=none forbids asking",
                ));
            }
            let stage = Stage::Consent { sid: session.sid };
            let interaction_id = seals.seal(&request, browser_binding, &stage)?;
            Ok(Decision::Consent { interaction_id })
        }
        // A login is owed (`flow::next` says nothing else without a session).
        _ => {
            if request.prompt.none {
                return Err(OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the user must log in, and prompt=none forbids showing a page",
                ));
            }
            let interaction_id = seals.seal(&request, browser_binding, &Stage::Login)?;
            Ok(Decision::Login { interaction_id })
        }
    }
}

/// What deciding a flow's next step needs from the node.
pub(crate) fn deciding(app: &App) -> flow::Deciding<'_> {
    flow::Deciding {
        consents: app.store.as_ref(),
        factors: app.store.as_ref(),
        verified_email: app
            .config
            .require_verified_email
            .then_some(app.store.as_ref() as &dyn crate::store::UserStore),
        now: app.now(),
    }
}

/// What sealing and opening interactions needs from the node.
pub(crate) fn seals(app: &App) -> interaction::Seals<'_> {
    interaction::Seals {
        sealer: &app.interaction_sealer,
        hasher: &app.hasher,
        now: app.now(),
    }
}

/// Step 4: a new code (and the expiry of the grant it starts), bound to everything the token
/// request must repeat. Returns the code itself and the record to store.
pub(crate) fn new_code(
    app: &App,
    request: &AuthorizationRequest,
    session: &SessionRecord,
) -> (String, AuthCodeRecord, i64) {
    let now = app.now();
    let code = random_secret();
    let record = AuthCodeRecord {
        code_hash: app.hasher.hash(&code),
        grant_id: random_token(16),
        client_id: request.client_id.clone(),
        user_sub: session.user_sub.clone(),
        redirect_uri: if request.redirect_uri_sent {
            request.redirect_uri.clone()
        } else {
            String::new()
        },
        scope: request.scope.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: Some(crate::accounts::assurance::acr(&session.amr).to_owned()),
        resource: request.resource.clone(),
        created_at: now,
        expires_at: now + app.config.code_ttl,
        dpop_jkt: request.dpop_jkt.clone(),
    };
    // The grant row must outlive every access token the code can produce.
    let grant_expires_at = now + app.config.code_ttl + app.config.access_token_ttl;
    (code, record, grant_expires_at)
}

/// The success response: the code, `state` and `iss`, for the client's redirect URI.
pub(crate) fn success_redirect(app: &App, request: &AuthorizationRequest, code: &str) -> ToClient {
    ToClient::new(
        app,
        &request.redirect_uri,
        request.response_mode,
        vec![("code", code.to_owned())],
        request.state.as_deref(),
    )
}
