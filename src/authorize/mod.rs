//! The authorization endpoint's pipeline (RFC 6749 §4.1, OpenID Connect Core §3.1.2), as an
//! ordered list of steps:
//!
//! 1. `request::resolve_target`: client and redirect URI (errors shown as a page, never
//!    redirected);
//! 2. `request::validate`: response type, scope, PKCE, prompt, max_age, hints, resource
//!    (errors redirected to the client with `state` and `iss`);
//! 3. `decide`: with the browser's session, whether the user must log in, must consent, or
//!    gets a code now;
//! 4. `issue_code`: a single-use code bound to everything the token request must repeat.
//!
//! The login and consent pages resume at step 3 through `continue_after_login` and
//! `complete_consent`; the request they work on travels sealed (`interaction`). Nothing here
//! knows HTTP: the caller renders `Decision`.

pub mod interaction;
pub mod pkce;
pub mod redirect_uri;
pub mod request;

use std::net::IpAddr;

use url::Url;

use crate::accounts::consent;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::{random_secret, random_token};
use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::form::Params;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::{
    AuthCodeRecord, ClientRecord, ConsentFinish, ConsentOutcome, InteractionFinish, SessionRecord,
    StoreError,
};

/// An error of the authorization endpoint.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Client or redirect URI could not be trusted: render an error page (HTTP 400).
    Page(OAuthError),
    /// Redirect the error to the client (RFC 6749 §4.1.2.1, RFC 9207).
    Redirect(String),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Page(e.into())
    }
}

/// What the endpoint does next.
#[derive(Debug)]
pub enum Decision {
    /// Send the browser to this URL (the client's redirect URI with a code or an error).
    Redirect(String),
    /// The user must log in; `interaction_id` is the sealed interaction.
    Login { interaction_id: String },
    /// The user must consent; `interaction_id` is the sealed interaction.
    Consent { interaction_id: String },
}

/// Builds the client redirect carrying an error, `state` and `iss`.
pub fn error_redirect(
    app: &App,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> String {
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", app.config.issuer.as_str()));
    append_query(redirect_uri, &pairs)
}

/// Appends parameters to a registered redirect URI, keeping any query it already has
/// (RFC 6749 §3.1.2).
fn append_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// Steps 1 to 3 for a fresh request from the browser.
pub async fn authorize(
    app: &App,
    params: &Params,
    session: Option<SessionRecord>,
    browser_binding: &str,
) -> Result<Decision, AuthorizeError> {
    let target = request::resolve_target(app, params).await?;
    let redirect_error = |e: OAuthError| {
        AuthorizeError::Redirect(error_redirect(
            app,
            &target.redirect_uri,
            target.state.as_deref(),
            &e,
        ))
    };
    let request = request::validate(app, &target, params).map_err(redirect_error)?;
    decide(app, &target.client, request, session, browser_binding)
        .await
        // A failure of our own is shown here; protocol answers go back to the client.
        .map_err(|e| match e.code {
            ErrorCode::ServerError => AuthorizeError::Page(e),
            _ => redirect_error(e),
        })
}

/// Does this request need the user to (re-)authenticate, given the session?
fn needs_login(app: &App, request: &AuthorizationRequest, session: Option<&SessionRecord>) -> bool {
    let Some(session) = session else {
        return true;
    };
    if request.prompt.login {
        return true;
    }
    // OpenID Connect Core §3.1.2.1: max_age=0 is prompt=login; otherwise re-authenticate when
    // more than max_age seconds have passed.
    if let Some(max_age) = request.max_age
        && (max_age == 0 || app.now() - session.auth_time > max_age)
    {
        return true;
    }
    if let Some(hint) = &request.id_token_hint_sub
        && hint != &session.user_sub
    {
        return true;
    }
    false
}

/// Does the user have to consent (OpenID Connect Core §3.1.2.4)?
async fn needs_consent(
    app: &App,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    user_sub: &str,
) -> Result<bool, StoreError> {
    if request.prompt.consent {
        return Ok(true);
    }
    if client.metadata.first_party {
        return Ok(false);
    }
    // RFC 8252 §8.6: a public client whose redirect goes to a loopback address or a
    // private-use scheme cannot prove who it is (any app can claim such a URI), so consent it
    // was given before is not reused: the user is asked every time.
    if client.metadata.is_public() && !request.redirect_uri.starts_with("https://") {
        return Ok(true);
    }
    let requested = Scope::parse_lenient(&request.scope);
    let missing =
        consent::missing_scopes(app.store.as_ref(), user_sub, &client.client_id, &requested)
            .await?;
    Ok(!missing.is_empty())
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
    if needs_login(app, &request, session.as_ref()) {
        if request.prompt.none {
            return Err(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user must log in, and prompt=none forbids showing a page",
            ));
        }
        let interaction_id =
            interaction::seal(app, &request, browser_binding, &interaction::Stage::Login)?;
        return Ok(Decision::Login { interaction_id });
    }
    let Some(session) = session else {
        return Err(OAuthError::server_error(StoreError::Corrupt(
            "session vanished".into(),
        )));
    };
    if needs_consent(app, client, &request, &session.user_sub).await? {
        if request.prompt.none {
            return Err(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the user has not granted every requested scope, and prompt=none forbids asking",
            ));
        }
        let stage = interaction::Stage::Consent {
            sid: session.sid.clone(),
        };
        let interaction_id = interaction::seal(app, &request, browser_binding, &stage)?;
        return Ok(Decision::Consent { interaction_id });
    }
    let (code, record, grant_expires_at) = new_code(app, &request, &session);
    app.store.insert_code(&record, grant_expires_at).await?;
    Ok(Decision::Redirect(success_redirect(app, &request, &code)))
}

/// A pending interaction, opened and checked against the browser that started it.
pub struct Pending {
    /// The sealed interaction, as the login and consent URLs and forms carry it.
    pub interaction_id: String,
    /// The id its finish is recorded under, and until when it may finish.
    pub finish_id: String,
    pub expires_at: i64,
    /// What the interaction still owes.
    pub stage: interaction::Stage,
    pub request: AuthorizationRequest,
    pub client: std::sync::Arc<ClientRecord>,
    /// The browser's binding cookie, which the interaction is sealed for.
    pub binding: String,
}

/// Opens an interaction for the login or consent page. `None` when it is malformed, expired,
/// was started in another browser (its binding cookie does not match), its client is gone,
/// or the operator has since removed the redirect URI it would end at.
pub async fn load_pending(
    app: &App,
    interaction_id: &str,
    browser_binding: Option<&str>,
) -> Result<Option<Pending>, StoreError> {
    let Some(binding) = browser_binding else {
        return Ok(None);
    };
    let Some(opened) = interaction::open(app, interaction_id, binding) else {
        return Ok(None);
    };
    let Some(client) = app.client(&opened.request.client_id).await? else {
        return Ok(None);
    };
    if !redirect_uri::matches_registered(
        &opened.request.redirect_uri,
        &client.metadata.redirect_uris,
    ) {
        return Ok(None);
    }
    Ok(Some(Pending {
        interaction_id: interaction_id.to_owned(),
        finish_id: opened.id,
        expires_at: opened.expires_at,
        stage: opened.stage,
        request: opened.request,
        client,
        binding: binding.to_owned(),
    }))
}

/// After a successful login (which started `session`): ask for consent, in an interaction
/// now bound to that session, or finish with a code.
pub async fn continue_after_login(
    app: &App,
    pending: &Pending,
    session: &SessionRecord,
) -> Result<Decision, AuthorizeError> {
    let needs = needs_consent(app, &pending.client, &pending.request, &session.user_sub).await?;
    if needs {
        let stage = interaction::Stage::Consent {
            sid: session.sid.clone(),
        };
        let interaction_id = interaction::advance(
            app,
            &pending.finish_id,
            pending.expires_at,
            &pending.request,
            &pending.binding,
            &stage,
        )
        .map_err(AuthorizeError::Page)?;
        return Ok(Decision::Consent { interaction_id });
    }
    finish(app, pending, session).await
}

/// The session an interaction at the consent stage is bound to; `None` while a login is
/// still owed.
pub fn consent_session(pending: &Pending) -> Option<&str> {
    match &pending.stage {
        interaction::Stage::Consent { sid } => Some(sid),
        interaction::Stage::Login => None,
    }
}

fn already_finished() -> AuthorizeError {
    AuthorizeError::Page(OAuthError::invalid_request(
        "this sign-in request was already completed",
    ))
}

/// The consent page's answer: remember the grant and finish, or tell the client no.
/// `session_hash` names the browser's session: the grant is written only if it is live and
/// its user enabled (else the user is sent to log in), in the same statement, without reading
/// it first. `ip` is the browser's address, for the audit event of a grant.
pub async fn complete_consent(
    app: &App,
    pending: &Pending,
    session_hash: &[u8],
    allowed: bool,
    ip: Option<IpAddr>,
) -> Result<Decision, AuthorizeError> {
    // A login is owed: neither answer counts before it.
    let Some(session_sid) = consent_session(pending) else {
        return Ok(Decision::Login {
            interaction_id: pending.interaction_id.clone(),
        });
    };
    if !allowed {
        if !app
            .store
            .finish_interaction(&pending.finish_id, pending.expires_at)
            .await?
        {
            return Err(already_finished());
        }
        let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return Ok(Decision::Redirect(error_redirect(
            app,
            &pending.request.redirect_uri,
            pending.request.state.as_deref(),
            &denied,
        )));
    }
    let scope = Scope::parse_lenient(&pending.request.scope).to_string();
    let event = Event::new(Kind::ConsentGranted)
        .client(&pending.client.client_id)
        .ip(ip)
        .detail("scope", pending.request.scope.clone());
    let mut event = audit::row(app, event);
    // The store fills in the session's user and login details.
    let (code, record, grant_expires_at) =
        new_code(app, &pending.request, &SessionRecord::default());
    let outcome = app
        .store
        .finish_consent(&ConsentFinish {
            interaction_id: &pending.finish_id,
            interaction_expires_at: pending.expires_at,
            session_hash,
            session_sid,
            scope: &scope,
            code: &record,
            grant_expires_at,
            event: &event,
        })
        .await?;
    match outcome {
        ConsentOutcome::Issued { user_sub } => {
            event.user_sub = Some(user_sub);
            audit::log(&event);
            Ok(Decision::Redirect(success_redirect(
                app,
                &pending.request,
                &code,
            )))
        }
        ConsentOutcome::NoSession => Ok(Decision::Login {
            interaction_id: pending.interaction_id.clone(),
        }),
        ConsentOutcome::AlreadyFinished => Err(already_finished()),
    }
}

/// Finishes the interaction (once) and issues the code, in one write.
async fn finish(
    app: &App,
    pending: &Pending,
    session: &SessionRecord,
) -> Result<Decision, AuthorizeError> {
    let (code, record, grant_expires_at) = new_code(app, &pending.request, session);
    let finished = app
        .store
        .finish_interaction_with_code(&InteractionFinish {
            interaction_id: &pending.finish_id,
            interaction_expires_at: pending.expires_at,
            code: &record,
            grant_expires_at,
        })
        .await?;
    if !finished {
        return Err(already_finished());
    }
    Ok(Decision::Redirect(success_redirect(
        app,
        &pending.request,
        &code,
    )))
}

/// Step 4: a new code (and the expiry of the grant it starts), bound to everything the token
/// request must repeat. Returns the code itself and the record to store.
fn new_code(
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
        acr: request.acr_values.as_ref().map(|_| "0".to_owned()),
        resource: request.resource.clone(),
        created_at: now,
        expires_at: now + app.config.code_ttl,
    };
    // The grant row must outlive every access token the code can produce.
    let grant_expires_at = now + app.config.code_ttl + app.config.access_token_ttl;
    (code, record, grant_expires_at)
}

/// The success redirect: the code, `state` and `iss` on the client's redirect URI.
fn success_redirect(app: &App, request: &AuthorizationRequest, code: &str) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", app.config.issuer.as_str()));
    append_query(&request.redirect_uri, &pairs)
}
