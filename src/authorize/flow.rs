//! The pending interaction as a small state machine: what a flow still owes before it may end
//! with a code, and which page may act on it. `/authorize`, the login page, the forced password
//! change and the consent page all ask here; no page decides on its own what comes next.
//!
//! ```text
//!   /authorize ──(no session, prompt=login, max_age passed, another user's id_token_hint)──▶ Login
//!       │                                                                                  │
//!       │ (session fine)                                        login (+ password change)  │
//!       ▼                                                                                  ▼
//!   level owed met? ──no, has a factor──▶ SecondFactor { sid } ──code──▶ (new session) ──┐
//!       │           └─no, has none────▶ Enrol { sid } ──enrolled──▶ Resume { sid } ───────┤
//!       │ yes                                                                             ▼
//!   address verified? (LATCHKEY_REQUIRE_VERIFIED_EMAIL) ──no──▶ VerifyEmail { sid } ──link used──┐
//!       │ yes (or not required)                                                                  ▼
//!   consent needed? ──yes──▶ Consent { sid of the session decided for } ──allow──▶ code
//!       │ no                                                           └──deny───▶ access_denied
//!       ▼
//!     code
//! ```
//!
//! The level a flow owes (`accounts::assurance::required`: the user's factors and
//! `mfa_required`, the client's `require_mfa`, the request's `acr_values`) is checked against
//! the session's `amr` here, so a session with the password alone is asked only for the
//! missing factor (step-up), on the second-factor page; any factor that yields an `amr`
//! method (a TOTP or recovery code today, a passkey assertion later) may satisfy that stage.
//!
//! The stage is sealed into the interaction (`interaction::seal`), so it travels with the
//! browser and any node reads it; the final write (`InteractionStore::finish_consent`) checks
//! the consent stage's session again, so a browser that skips a page gets nothing the page
//! would have guarded. A login at an upstream provider is the stage `Upstream`: the login
//! page sends the browser there (`upstream::flow::begin`) and only that upstream's callback
//! (`Page::UpstreamReturn`) moves the interaction on, as a login. Second factors add stages
//! here.

use serde::{Deserialize, Serialize};

use crate::accounts::assurance::{self, Standing};
use crate::accounts::consent;
use crate::protocol::Scope;
use crate::protocol::authorization::AuthorizationRequest;
use crate::store::{ClientRecord, ConsentStore, FactorStore, SessionRecord, StoreError, UserStore};

/// What an interaction still owes before it may end with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// A login is owed: only a login moves the interaction on.
    Login,
    /// The session `sid` lacks the level the flow owes and its user has a second factor: only
    /// that factor moves the interaction on, in that session (a login moves it back to here).
    SecondFactor { sid: String },
    /// As `SecondFactor`, for a user who has no second factor yet: only enrolling one (on the
    /// TOTP enrolment page, in session `sid`) moves the interaction on.
    Enrol { sid: String },
    /// The factor was enrolled in this flow and session `sid` now has the level owed; the page
    /// that showed the recovery codes continues the flow from here.
    Resume { sid: String },
    /// The user must consent, in the session with public id `sid` that the decision was made
    /// for (the code carries that session's user and `auth_time`, nobody else's).
    Consent { sid: String },
    /// The server requires a verified email address and the user of session `sid` has none
    /// yet: only the "check your mail" page (in that session) moves the interaction on, once
    /// the user has used the link in the mail.
    VerifyEmail { sid: String },
    /// The user went to log in at the upstream `upstream`: only its callback moves the
    /// interaction on (or a login on the login page, which skips nothing).
    Upstream { upstream: String },
}

/// The pages that act on a pending interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Login,
    /// The forced password change: the second half of a login.
    PasswordChange,
    /// The second-factor page (a one-time code; a passkey assertion later).
    SecondFactor,
    /// The TOTP enrolment page, inside a flow.
    Enrol,
    /// The continuation after an enrolment inside a flow.
    Resume,
    Consent,
    /// "Check your mail": waits until the user's address is verified.
    VerifyEmail,
    /// An upstream's callback (`/upstream/{id}/callback`).
    UpstreamReturn,
}

impl Stage {
    /// Whether `page` may act on an interaction at this stage. A login never skips anything,
    /// so the login page (and the password change that completes a login) may act at any
    /// stage; the consent page only at the consent stage, and only in its session
    /// (`consent_session`).
    pub fn admits(&self, page: Page) -> bool {
        match page {
            Page::Login | Page::PasswordChange => true,
            Page::SecondFactor => matches!(self, Stage::SecondFactor { .. }),
            Page::Enrol => matches!(self, Stage::Enrol { .. }),
            Page::Resume => matches!(self, Stage::Resume { .. }),
            Page::Consent => matches!(self, Stage::Consent { .. }),
            Page::VerifyEmail => matches!(self, Stage::VerifyEmail { .. }),
            Page::UpstreamReturn => matches!(self, Stage::Upstream { .. }),
        }
    }

    /// Whether the callback of upstream `id` may act: only at the upstream stage that
    /// `upstream::flow::begin` sealed for that very upstream.
    pub fn admits_upstream(&self, id: &str) -> bool {
        self.admits(Page::UpstreamReturn)
            && matches!(self, Stage::Upstream { upstream } if upstream == id)
    }

    /// The session a consent-stage interaction is bound to; `None` at any other stage.
    pub fn consent_session(&self) -> Option<&str> {
        match self {
            Stage::Consent { sid } => Some(sid),
            _ => None,
        }
    }

    /// The session `page` acts in, when this stage admits it: the one the stage names.
    pub fn session_for(&self, page: Page) -> Option<&str> {
        if !self.admits(page) {
            return None;
        }
        match self {
            Stage::SecondFactor { sid }
            | Stage::Enrol { sid }
            | Stage::Resume { sid }
            | Stage::Consent { sid }
            | Stage::VerifyEmail { sid } => Some(sid),
            Stage::Login | Stage::Upstream { .. } => None,
        }
    }
}

/// What a flow owes next, given the session the browser has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Login,
    /// The session lacks the level owed; the user has a second factor to raise it with.
    SecondFactor,
    /// The session lacks the level owed; the user must enrol a second factor first.
    Enrol,
    /// The user must verify their email address first (`LATCHKEY_REQUIRE_VERIFIED_EMAIL`).
    VerifyEmail,
    Consent,
    /// Nothing: the code can be issued.
    Code,
}

/// How the flow got here: fresh from `/authorize`, or right after the user logged in (a
/// login is then not owed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Authorize,
    Login,
}

/// What a flow needs to decide its next step: the remembered consents, the users' second
/// factors and the time. Nothing else of the node's state.
pub struct Deciding<'a> {
    pub consents: &'a dyn ConsentStore,
    pub factors: &'a dyn FactorStore,
    /// Set when a verified email address is required (`LATCHKEY_REQUIRE_VERIFIED_EMAIL`):
    /// where the user's claims are read.
    pub verified_email: Option<&'a dyn UserStore>,
    pub now: i64,
}

/// What `request` still owes with `session` (the browser's live session of an enabled user,
/// if any). The one place that decides the next step of a flow.
pub async fn next(
    with: Deciding<'_>,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    session: Option<&SessionRecord>,
    arrival: Arrival,
) -> Result<Next, StoreError> {
    let Some(session) = session else {
        return Ok(Next::Login);
    };
    if arrival == Arrival::Authorize && needs_login(with.now, request, session) {
        return Ok(Next::Login);
    }
    // A user gone since counts as one without factors; the session check elsewhere ends it.
    let standing = with
        .factors
        .mfa_standing(&session.user_sub)
        .await?
        .map(|(mfa_required, kinds)| Standing {
            mfa_required,
            kinds,
        })
        .unwrap_or_default();
    let owed = assurance::required(&standing, &client.metadata, request);
    if !assurance::meets(&session.amr, owed) {
        return Ok(if standing.has_second_factor() {
            Next::SecondFactor
        } else {
            Next::Enrol
        });
    }
    // Verification comes after authentication (nobody learns from this stage whether an
    // account's address is verified before proving who they are) and before consent.
    if let Some(users) = with.verified_email {
        let verified = users
            .get_user(&session.user_sub)
            .await?
            .is_some_and(|u| u.claims.email_verified == Some(true));
        if !verified {
            return Ok(Next::VerifyEmail);
        }
    }
    if needs_consent(with.consents, client, request, &session.user_sub).await? {
        return Ok(Next::Consent);
    }
    Ok(Next::Code)
}

/// Does this request need the user to (re-)authenticate, given the session?
fn needs_login(now: i64, request: &AuthorizationRequest, session: &SessionRecord) -> bool {
    if request.prompt.login {
        return true;
    }
    // OpenID Connect Core §3.1.2.1: max_age=0 is prompt=login; otherwise re-authenticate when
    // more than max_age seconds have passed.
    if let Some(max_age) = request.max_age
        && (max_age == 0 || now - session.auth_time > max_age)
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
    consents: &dyn ConsentStore,
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
        consent::missing_scopes(consents, user_sub, &client.client_id, &requested).await?;
    Ok(!missing.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorization::Prompt;
    use crate::store::{ConsentRecord, FactorKind, FactorRecord, RecoverySet, StoreResult};

    /// A user's standing towards second factors, held in memory.
    #[derive(Default)]
    struct Factors(Option<(bool, Vec<FactorKind>)>);

    #[async_trait::async_trait]
    impl FactorStore for Factors {
        async fn list_factors(&self, _: &str) -> StoreResult<Vec<FactorRecord>> {
            Ok(Vec::new())
        }
        async fn mfa_standing(&self, _: &str) -> StoreResult<Option<(bool, Vec<FactorKind>)>> {
            Ok(self.0.clone())
        }
        async fn add_factor(&self, _: &FactorRecord) -> StoreResult<()> {
            Ok(())
        }
        async fn replace_totp(&self, _: &FactorRecord, _: Option<&RecoverySet>) -> StoreResult<()> {
            Ok(())
        }
        async fn replace_recovery_codes(&self, _: &RecoverySet) -> StoreResult<()> {
            Ok(())
        }
        async fn accept_totp_step(
            &self,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
            _: &crate::store::AuditEvent,
        ) -> StoreResult<bool> {
            Ok(false)
        }
        async fn use_recovery_code(
            &self,
            _: &str,
            _: &[u8],
            _: i64,
        ) -> StoreResult<Option<String>> {
            Ok(None)
        }
        async fn recovery_codes_left(&self, _: &str) -> StoreResult<u64> {
            Ok(0)
        }
        async fn touch_factor(&self, _: &str, _: &str, _: i64) -> StoreResult<()> {
            Ok(())
        }
        async fn delete_factor(
            &self,
            _: &str,
            _: &str,
            _: bool,
        ) -> StoreResult<crate::store::FactorRemoval> {
            Ok(crate::store::FactorRemoval::NotFound)
        }
    }

    /// Consents held in memory: deciding a flow needs nothing more of a store.
    struct Granted(Option<&'static str>);

    #[async_trait::async_trait]
    impl ConsentStore for Granted {
        async fn get_consent(
            &self,
            sub: &str,
            client_id: &str,
        ) -> StoreResult<Option<ConsentRecord>> {
            Ok(self.0.map(|scope| ConsentRecord {
                user_sub: sub.to_owned(),
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                updated_at: 0,
            }))
        }
        async fn save_consent(&self, _: &ConsentRecord) -> StoreResult<()> {
            Ok(())
        }
        async fn delete_consent(&self, _: &str, _: &str) -> StoreResult<bool> {
            Ok(false)
        }
        async fn list_consents(&self, _: &str) -> StoreResult<Vec<ConsentRecord>> {
            Ok(Vec::new())
        }
    }

    fn client(first_party: bool, public: bool) -> ClientRecord {
        let metadata = serde_json::from_value(serde_json::json!({
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
            "post_logout_redirect_uris": [],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": if public { "none" } else { "client_secret_basic" },
            "scope": "openid email",
            "client_name": "App",
            "id_token_signed_response_alg": "RS256",
            "first_party": first_party,
            "allowed_resources": [],
        }))
        .unwrap();
        ClientRecord {
            client_id: "app".into(),
            secret_hash: None,
            secret_created_at: None,
            secret_expires_at: None,
            previous_secret: None,
            metadata,
            issued_at: 0,
            updated_at: 0,
        }
    }

    fn request(scope: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_sent: true,
            response_mode: Default::default(),
            scope: scope.into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            id_token_hint_sub: None,
            ui_locales: None,
            acr_values: None,
            resource: None,
            device_user_code: None,
            dpop_jkt: None,
        }
    }

    fn session(auth_time: i64) -> SessionRecord {
        SessionRecord {
            sid: "s1".into(),
            user_sub: "alice".into(),
            auth_time,
            ..SessionRecord::default()
        }
    }

    async fn next_of(
        granted: Option<&'static str>,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        session: Option<&SessionRecord>,
        arrival: Arrival,
    ) -> Next {
        next_with(
            granted,
            Factors::default(),
            client,
            request,
            session,
            arrival,
        )
        .await
    }

    async fn next_with(
        granted: Option<&'static str>,
        factors: Factors,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        session: Option<&SessionRecord>,
        arrival: Arrival,
    ) -> Next {
        let store = Granted(granted);
        let with = Deciding {
            consents: &store,
            factors: &factors,
            verified_email: None,
            now: 1000,
        };
        next(with, client, request, session, arrival).await.unwrap()
    }

    #[tokio::test]
    async fn the_level_owed_comes_before_consent() {
        let web = client(false, false);
        let openid = request("openid");
        let pwd = session(990);
        let a = Arrival::Authorize;
        let totp = || {
            Factors(Some((
                false,
                vec![FactorKind::Totp, FactorKind::RecoveryCodes],
            )))
        };
        assert_eq!(
            next_with(Some("openid"), totp(), &web, &openid, Some(&pwd), a).await,
            Next::SecondFactor,
            "a user with a second factor always uses it"
        );
        let required = Factors(Some((true, vec![FactorKind::RecoveryCodes])));
        assert_eq!(
            next_with(Some("openid"), required, &web, &openid, Some(&pwd), a).await,
            Next::Enrol,
            "mfa_required without a factor leads to enrolment"
        );
        let mut asking = request("openid");
        asking.acr_values = Some("mfa".into());
        assert_eq!(
            next_with(
                Some("openid"),
                Factors::default(),
                &web,
                &asking,
                Some(&pwd),
                a
            )
            .await,
            Next::Enrol,
            "acr_values=mfa"
        );
        let mut strict = client(false, false);
        strict.metadata.require_mfa = true;
        assert_eq!(
            next_with(
                Some("openid"),
                Factors::default(),
                &strict,
                &openid,
                Some(&pwd),
                a
            )
            .await,
            Next::Enrol,
            "require_mfa"
        );
        let mfa = SessionRecord {
            amr: "pwd otp mfa".into(),
            ..session(990)
        };
        assert_eq!(
            next_with(Some("openid"), totp(), &strict, &asking, Some(&mfa), a).await,
            Next::Code
        );
        assert_eq!(
            next_with(None, totp(), &web, &openid, Some(&mfa), a).await,
            Next::Consent
        );
    }

    #[tokio::test]
    async fn the_next_step_of_a_flow() {
        let web = client(false, false);
        let openid = request("openid");
        let s = session(990);
        let a = Arrival::Authorize;
        assert_eq!(next_of(None, &web, &openid, None, a).await, Next::Login);
        assert_eq!(
            next_of(None, &web, &openid, Some(&s), a).await,
            Next::Consent
        );
        assert_eq!(
            next_of(Some("openid"), &web, &openid, Some(&s), a).await,
            Next::Code
        );
        let wider = request("openid email");
        assert_eq!(
            next_of(Some("openid"), &web, &wider, Some(&s), a).await,
            Next::Consent
        );
        let mut login = request("openid");
        login.prompt.login = true;
        assert_eq!(
            next_of(Some("openid"), &web, &login, Some(&s), a).await,
            Next::Login
        );
        assert_eq!(
            next_of(Some("openid"), &web, &login, Some(&s), Arrival::Login).await,
            Next::Code,
            "right after a login, a login is not owed again"
        );
        let mut aged = request("openid");
        aged.max_age = Some(5);
        assert_eq!(
            next_of(Some("openid"), &web, &aged, Some(&s), a).await,
            Next::Login
        );
        aged.max_age = Some(60);
        assert_eq!(
            next_of(Some("openid"), &web, &aged, Some(&s), a).await,
            Next::Code
        );
        let mut hinted = request("openid");
        hinted.id_token_hint_sub = Some("bob".into());
        assert_eq!(
            next_of(Some("openid"), &web, &hinted, Some(&s), a).await,
            Next::Login
        );
        let mut again = request("openid");
        again.prompt.consent = true;
        assert_eq!(
            next_of(Some("openid"), &web, &again, Some(&s), a).await,
            Next::Consent
        );
        let first = client(true, false);
        assert_eq!(next_of(None, &first, &wider, Some(&s), a).await, Next::Code);
        assert_eq!(
            next_of(None, &first, &again, Some(&s), a).await,
            Next::Consent
        );
        let native = client(false, true);
        let mut loopback = request("openid");
        loopback.redirect_uri = "http://127.0.0.1/cb".into();
        assert_eq!(
            next_of(Some("openid"), &native, &loopback, Some(&s), a).await,
            Next::Consent,
            "a public client on a loopback redirect is asked every time (RFC 8252 §8.6)"
        );
    }

    #[test]
    fn only_a_login_moves_an_interaction_that_owes_one() {
        let login = Stage::Login;
        assert!(login.admits(Page::Login));
        assert!(login.admits(Page::PasswordChange));
        assert!(!login.admits(Page::Consent));
        assert_eq!(login.consent_session(), None);
        let consent = Stage::Consent { sid: "s1".into() };
        assert!(consent.admits(Page::Consent));
        assert!(
            consent.admits(Page::Login),
            "logging in again skips nothing"
        );
        assert_eq!(consent.consent_session(), Some("s1"));
        assert!(!consent.admits(Page::SecondFactor));
        assert!(!consent.admits(Page::Enrol));
        assert!(!consent.admits(Page::Resume));
        let owed = Stage::SecondFactor { sid: "s1".into() };
        assert!(owed.admits(Page::SecondFactor));
        assert!(owed.admits(Page::Login), "logging in again skips nothing");
        assert!(
            !owed.admits(Page::Consent),
            "the factor cannot be skipped to consent"
        );
        assert!(!owed.admits(Page::Enrol));
        assert!(!owed.admits(Page::Resume));
        assert_eq!(owed.consent_session(), None);
        assert_eq!(owed.session_for(Page::SecondFactor), Some("s1"));
        assert_eq!(owed.session_for(Page::Consent), None);
        let enrol = Stage::Enrol { sid: "s1".into() };
        assert!(enrol.admits(Page::Enrol));
        assert!(!enrol.admits(Page::SecondFactor));
        assert!(!enrol.admits(Page::Consent));
        assert!(!enrol.admits(Page::Resume));
        assert!(!login.admits(Page::UpstreamReturn));
        assert!(!consent.admits(Page::UpstreamReturn));
        assert!(!login.admits_upstream("corp"));
        let upstream = Stage::Upstream {
            upstream: "corp".into(),
        };
        assert!(upstream.admits_upstream("corp"));
        assert!(!upstream.admits_upstream("other"), "only its own callback");
        assert!(
            !upstream.admits(Page::Consent),
            "no consent before the upstream returns"
        );
        assert!(upstream.admits(Page::Login));
        assert_eq!(upstream.consent_session(), None);
    }
}
