//! A pending interaction between `/authorize` and its end: opened for the page the browser is
//! on, checked against what it still owes (`flow::Stage`), and moved on by a login or a
//! consent answer. Every page that acts on an interaction goes through here.

use std::net::IpAddr;
use std::sync::Arc;

use super::flow::{self, Arrival, Next, Page, Stage};
use super::{AuthorizeError, Decision, deciding, error_redirect, new_code, redirect_uri, seals};
use crate::accounts::assurance::{self, Method};
use crate::accounts::{consent, session};
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::authorization::AuthorizationRequest;
use crate::protocol::{ErrorCode, OAuthError, Scope};
use crate::store::{
    ClientRecord, ConsentFinish, ConsentOutcome, DeviceAnswer, DeviceAnswered, InteractionFinish,
    SessionRecord, StoreError,
};

/// A pending interaction, opened and checked against the browser that started it.
pub struct Pending {
    /// The sealed interaction, as the login and consent URLs and forms carry it.
    pub interaction_id: String,
    /// The id its finish is recorded under, and until when it may finish.
    pub finish_id: String,
    pub expires_at: i64,
    /// What the interaction still owes.
    pub stage: Stage,
    pub request: AuthorizationRequest,
    pub client: Arc<ClientRecord>,
    /// The browser's binding cookie, which the interaction is sealed for.
    pub binding: String,
}

/// Opens an interaction for a page. `None` when it is malformed, expired, was started in
/// another browser (its binding cookie does not match), its client is gone, or the operator
/// has since removed the redirect URI it would end at. Whether the page may act on it is
/// `Pending::admits`.
pub async fn load_pending(
    app: &App,
    interaction_id: &str,
    browser_binding: Option<&str>,
) -> Result<Option<Pending>, StoreError> {
    let Some(binding) = browser_binding else {
        return Ok(None);
    };
    let Some(opened) = seals(app).open(interaction_id, binding) else {
        return Ok(None);
    };
    let Some(client) = app.client(&opened.request.client_id).await? else {
        return Ok(None);
    };
    // A device's request has no redirect URI; every other must still end at a registered one.
    if opened.request.device_user_code.is_none()
        && !redirect_uri::matches_registered(
            &opened.request.redirect_uri,
            &client.metadata.redirect_uris,
        )
    {
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

impl Pending {
    /// Whether `page` may act on this interaction now (`Stage::admits`).
    pub fn admits(&self, page: Page) -> bool {
        self.stage.admits(page)
    }
}

/// What a login step of a flow proved: whose it is, and the method it used (a password, a
/// one-time code, a passkey).
pub struct Proof<'a> {
    pub user_sub: &'a str,
    /// Where the browser is, for the new session (`session::StartedFrom`).
    pub from: &'a session::StartedFrom,
    pub method: Method,
    /// The `login_succeeded` event, stored with the new session; its `amr` is added here.
    pub event: Option<Event>,
}

/// A flow after a login step: the new session's cookie value and where the flow goes next.
pub struct LoggedIn {
    pub cookie: String,
    pub decision: Result<Decision, AuthorizeError>,
}

/// Starts the session a login step won, replacing the browser's (`session_cookie`), and moves
/// the flow on from it (`continue_after_login`). Every login page ends here: the password
/// form, the second-factor form and the passkey sign-in.
///
/// A second factor (a code or a passkey) given at the `SecondFactor` stage, by the user of
/// the session that stage names, adds to that session's methods: a password session raised
/// with a passkey records `pwd hwk mfa` (RFC 8176), and its `acr` follows from that. Anything
/// else starts afresh with the one method it proved: a password, or a passkey at any other
/// stage or of another user (a new login, which never skips anything). Either way the new
/// session has a fresh id, and its `auth_time` is now.
pub async fn log_in(
    app: &App,
    pending: &Pending,
    session_cookie: Option<&str>,
    proof: Proof<'_>,
) -> Result<LoggedIn, OAuthError> {
    let raised = if proof.method == Method::Pwd {
        None
    } else {
        stage_session(app, pending, Page::SecondFactor, session_cookie)
            .await?
            .map(|view| view.session)
    };
    log_in_raising(app, pending, session_cookie, proof, raised.as_ref()).await
}

/// `log_in` for a caller that has read the `SecondFactor` stage's session already
/// (`stage_session`): `raised`, the session the factor raises, if any.
pub async fn log_in_raising(
    app: &App,
    pending: &Pending,
    session_cookie: Option<&str>,
    proof: Proof<'_>,
    raised: Option<&SessionRecord>,
) -> Result<LoggedIn, OAuthError> {
    let mut amr = assurance::amr(&[proof.method]);
    if proof.method != Method::Pwd
        && let Some(raised) = raised
        && raised.user_sub == proof.user_sub
    {
        // `with_method` keeps what a federated session carries (`idp:`, `up:`), so a
        // second factor after an upstream login still names the upstream in the ID token.
        amr = assurance::with_method(&raised.amr, proof.method);
    }
    let event = proof.event.map(|e| e.detail("amr", amr.clone()));
    let (cookie, session) =
        session::begin(app, session_cookie, proof.from, proof.user_sub, &amr, event).await?;
    let decision = continue_after_login(app, pending, &session).await;
    Ok(LoggedIn { cookie, decision })
}

/// After a successful login (which started `session`): ask for consent, in an interaction
/// now bound to that session, or finish with a code.
pub async fn continue_after_login(
    app: &App,
    pending: &Pending,
    session: &SessionRecord,
) -> Result<Decision, AuthorizeError> {
    let next = flow::next(
        deciding(app),
        &pending.client,
        &pending.request,
        Some(session),
        Arrival::Login,
    )
    .await?;
    let sid = session.sid.clone();
    let stage = match next {
        Next::SecondFactor => Some(Stage::SecondFactor { sid }),
        Next::Enrol => Some(Stage::Enrol { sid }),
        Next::VerifyEmail => Some(Stage::VerifyEmail { sid }),
        // A device's request always asks for consent (see `device`).
        Next::Consent => Some(Stage::Consent { sid }),
        _ if pending.request.device_user_code.is_some() => Some(Stage::Consent { sid }),
        _ => None,
    };
    if let Some(stage) = stage {
        let interaction_id = seals(app)
            .advance(
                &pending.finish_id,
                pending.expires_at,
                &pending.request,
                &pending.binding,
                &stage,
            )
            .map_err(AuthorizeError::Page)?;
        return Ok(decision_at(&stage, interaction_id));
    }
    finish(app, pending, session).await
}

/// The page an interaction sealed at `stage` goes to.
pub(crate) fn decision_at(stage: &Stage, interaction_id: String) -> Decision {
    match stage {
        // An interaction away at an upstream that is sent to a page goes back to the login
        // page, which admits every stage.
        Stage::Login | Stage::Upstream { .. } => Decision::Login { interaction_id },
        Stage::SecondFactor { .. } => Decision::SecondFactor { interaction_id },
        Stage::Enrol { .. } => Decision::Enrol { interaction_id },
        Stage::Resume { .. } | Stage::Consent { .. } => Decision::Consent { interaction_id },
        Stage::VerifyEmail { .. } => Decision::VerifyEmail { interaction_id },
    }
}

/// What the consent page shows.
pub struct ConsentAsk {
    /// The signed-in user's username.
    pub username: String,
    /// The scopes to ask for: those not granted yet, or all of them when everything was
    /// granted before (`prompt=consent` asks again).
    pub scopes: Scope,
    /// The stored hash of the session the consent is asked in (its form's CSRF token is bound
    /// to it).
    pub session_hash: Vec<u8>,
}

/// The consent page for `pending` in the browser whose session cookie is `session_cookie`:
/// `None` when the browser must log in first (a login is owed, there is no live session of
/// an enabled user, or it is not the session the consent was decided for).
pub async fn consent_to_ask(
    app: &App,
    pending: &Pending,
    session_cookie: Option<&str>,
) -> Result<Option<ConsentAsk>, StoreError> {
    let Some(bound_sid) = pending
        .stage
        .consent_session()
        .filter(|_| pending.admits(Page::Consent))
    else {
        return Ok(None);
    };
    let view = session::find_view(
        app.store.as_ref(),
        &app.hasher,
        session_cookie,
        app.now(),
        &pending.client.client_id,
    )
    .await?;
    let Some(view) = view.filter(|v| !v.user_disabled && v.session.sid == bound_sid) else {
        return Ok(None);
    };
    let requested = Scope::parse_lenient(&pending.request.scope);
    let missing = consent::missing_from(view.consented_scope.as_deref(), &requested);
    // A device asks for everything it wants, every time: the person must see it all.
    let missing = if pending.request.device_user_code.is_some() {
        Scope::default()
    } else {
        missing
    };
    Ok(Some(ConsentAsk {
        username: view.username,
        scopes: if missing.is_empty() {
            requested
        } else {
            missing
        },
        session_hash: view.session.session_hash,
    }))
}

fn already_finished() -> AuthorizeError {
    AuthorizeError::Page(OAuthError::invalid_request(
        "this sign-in request was already completed",
    ))
}

/// The consent page's answer: remember the grant and finish, or tell the client no.
/// `session_hash` names the browser's session: the grant is written only if it is the one the
/// consent was asked in, live, and its user enabled (else the user is sent to log in), in the
/// same statement, without reading it first. `ip` is the browser's address, for the audit
/// event of a grant.
pub async fn answer_consent(
    app: &App,
    pending: &Pending,
    session_hash: &[u8],
    allowed: bool,
    ip: Option<IpAddr>,
) -> Result<Decision, AuthorizeError> {
    let to_login = || Decision::Login {
        interaction_id: pending.interaction_id.clone(),
    };
    // A login is owed: neither answer counts before it.
    let Some(session_sid) = pending
        .stage
        .consent_session()
        .filter(|_| pending.admits(Page::Consent))
    else {
        return Ok(to_login());
    };
    if let Some(user_code) = &pending.request.device_user_code {
        return answer_device(
            app,
            pending,
            user_code,
            session_hash,
            session_sid,
            allowed,
            ip,
        )
        .await;
    }
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
            pending.request.response_mode,
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
            Ok(Decision::Redirect(super::success_redirect(
                app,
                &pending.request,
                &code,
            )))
        }
        ConsentOutcome::NoSession => Ok(to_login()),
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
    Ok(Decision::Redirect(super::success_redirect(
        app,
        &pending.request,
        &code,
    )))
}

/// The consent answer for a device (RFC 8628): approves or denies its authorization, in one
/// transaction that checks the session the question was asked in.
async fn answer_device(
    app: &App,
    pending: &Pending,
    user_code: &str,
    session_hash: &[u8],
    session_sid: &str,
    allowed: bool,
    ip: Option<IpAddr>,
) -> Result<Decision, AuthorizeError> {
    let event = Event::new(Kind::DeviceApproved)
        .client(&pending.client.client_id)
        .ip(ip)
        .detail("scope", pending.request.scope.clone());
    let mut event = audit::row(app, event);
    let answered = app
        .store
        .answer_device(&DeviceAnswer {
            user_code,
            session_hash,
            session_sid,
            allowed,
            now: app.now(),
            event: &event,
        })
        .await?;
    match answered {
        DeviceAnswered::Done { user_sub } => {
            if allowed {
                event.user_sub = Some(user_sub);
                audit::log(&event);
            }
            Ok(Decision::DeviceAnswered { approved: allowed })
        }
        DeviceAnswered::NoSession => Ok(Decision::Login {
            interaction_id: pending.interaction_id.clone(),
        }),
        DeviceAnswered::NotPending => Err(AuthorizeError::Page(OAuthError::invalid_request(
            "this device request was already answered, or it has expired",
        ))),
    }
}

/// The browser's session that `page` may act in for `pending`, with its user's name: live, of
/// an enabled user, and the one the interaction's stage names. `None` when the stage does not
/// admit the page or the browser's session is another (the user must then log in again).
pub async fn stage_session(
    app: &App,
    pending: &Pending,
    page: Page,
    session_cookie: Option<&str>,
) -> Result<Option<crate::store::SessionView>, StoreError> {
    let Some(bound_sid) = pending.stage.session_for(page) else {
        return Ok(None);
    };
    let view = session::find_view(
        app.store.as_ref(),
        &app.hasher,
        session_cookie,
        app.now(),
        &pending.client.client_id,
    )
    .await?;
    Ok(view.filter(|v| !v.user_disabled && v.session.sid == bound_sid))
}

/// After a factor was enrolled inside a flow, in the (new) session `session`: the interaction
/// moves to `Resume`, which the page showing the recovery codes continues from.
pub fn enrolled(
    app: &App,
    pending: &Pending,
    session: &SessionRecord,
) -> Result<String, AuthorizeError> {
    let stage = Stage::Resume {
        sid: session.sid.clone(),
    };
    seals(app)
        .advance(
            &pending.finish_id,
            pending.expires_at,
            &pending.request,
            &pending.binding,
            &stage,
        )
        .map_err(AuthorizeError::Page)
}
