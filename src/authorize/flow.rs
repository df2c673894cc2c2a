//! The pending interaction as a small state machine: what a flow still owes before it may end
//! with a code, and which page may act on it. `/authorize`, the login page, the forced password
//! change and the consent page all ask here; no page decides on its own what comes next.
//!
//! ```text
//!   /authorize ──(no session, prompt=login, max_age passed, another user's id_token_hint)──▶ Login
//!       │                                                                                  │
//!       │ (session fine)                                        login (+ password change)  │
//!       ▼                                                                                  ▼
//!   consent needed? ──yes──▶ Consent { sid of the session decided for } ──allow──▶ code
//!       │ no                                                           └──deny───▶ access_denied
//!       ▼
//!     code
//! ```
//!
//! The stage is sealed into the interaction (`interaction::seal`), so it travels with the
//! browser and any node reads it; the final write (`InteractionStore::finish_consent`) checks
//! the consent stage's session again, so a browser that skips a page gets nothing the page
//! would have guarded. A login at an upstream provider is the stage `Upstream`: the login
//! page sends the browser there (`upstream::flow::begin`) and only that upstream's callback
//! (`Page::UpstreamReturn`) moves the interaction on, as a login. Second factors add stages
//! here.

use serde::{Deserialize, Serialize};

use crate::accounts::consent;
use crate::protocol::Scope;
use crate::protocol::authorization::AuthorizationRequest;
use crate::store::{ClientRecord, ConsentStore, SessionRecord, StoreError};

/// What an interaction still owes before it may end with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// A login is owed: only a login moves the interaction on.
    Login,
    /// The user must consent, in the session with public id `sid` that the decision was made
    /// for (the code carries that session's user and `auth_time`, nobody else's).
    Consent { sid: String },
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
    Consent,
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
            Page::Consent => matches!(self, Stage::Consent { .. }),
            Page::UpstreamReturn => matches!(self, Stage::Upstream { .. }),
        }
    }

    /// Whether the callback of upstream `id` may act: only at the upstream stage that
    /// `upstream::flow::begin` sealed for that very upstream.
    pub fn admits_upstream(&self, id: &str) -> bool {
        self.admits(Page::UpstreamReturn)
            && matches!(self, Stage::Upstream { upstream } if upstream == id)
    }

    /// The session a consent-stage interaction is bound to; `None` while a login is owed.
    pub fn consent_session(&self) -> Option<&str> {
        match self {
            Stage::Consent { sid } => Some(sid),
            Stage::Login | Stage::Upstream { .. } => None,
        }
    }
}

/// What a flow owes next, given the session the browser has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Login,
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

/// What a flow needs to decide its next step: the remembered consents and the time. Nothing
/// else of the node's state.
pub struct Deciding<'a> {
    pub consents: &'a dyn ConsentStore,
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
    use crate::store::{ConsentRecord, StoreResult};

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
        let store = Granted(granted);
        let with = Deciding {
            consents: &store,
            now: 1000,
        };
        next(with, client, request, session, arrival).await.unwrap()
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
