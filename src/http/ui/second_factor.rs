//! The second-factor step of a flow (`flow::Stage::SecondFactor`): `GET /login/otp` shows a
//! form with one text input `otp` (a TOTP code or a recovery code), `POST /login/otp` checks it
//! (`accounts::factors::check_otp`, throttled per account) and replaces the browser's session
//! with one that records both factors, then lets the flow go on. `POST /login/resume`
//! continues a flow after an enrolment inside it (`Stage::Resume`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::text::Text;
use super::{
    InteractionForm, InteractionPage, csrf_token, error_page, expired_page, html, log_in_raising,
    render_decision, with_retry_after,
};
use crate::accounts::factors::{self, OtpOutcome};
use crate::accounts::login;
use crate::accounts::session::StartedFrom;
use crate::app::App;
use crate::authorize::flow::Page;
use crate::authorize::{self, Pending, Proof};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::protocol::discovery::paths;
use crate::store::{FactorKind, StoreError};

const PURPOSE: &str = "second-factor";
const RESUME_PURPOSE: &str = "resume";

#[derive(Template, serde::Serialize)]
#[template(path = "otp.html")]
pub struct OtpPage<'a> {
    pub t: &'a Text,
    /// Who is signing in (the user whose second factor is asked for).
    pub username: &'a str,
    pub action: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
    /// The ways of giving the factor this user has.
    pub offer: Offer,
    /// When the user has a passkey (and the server offers them), the token the passkey script
    /// sends (the login form's in a flow, the account page's on the account's step-up): the
    /// page then offers the passkey too.
    pub passkey_csrf: Option<String>,
}

impl super::Page for OtpPage<'_> {
    const TEMPLATE: &'static str = "otp.html";
}

/// Which ways of giving the second factor a page offers, from the user's factors: a user with
/// passkeys but no authenticator app is not asked for an app's code they cannot have.
#[derive(serde::Serialize)]
pub struct Offer {
    /// The user has a TOTP: the field asks for its code (or a recovery code).
    pub totp: bool,
    /// The field is shown: the user has a TOTP or recovery codes (or no passkey to use).
    pub code: bool,
    /// The user has a passkey, and the server offers passkeys.
    pub passkey: bool,
}

impl Offer {
    /// What the user `sub` can give.
    pub async fn for_user(app: &App, sub: &str) -> Result<Self, StoreError> {
        let kinds = factors::standing(app, sub).await?.unwrap_or_default().kinds;
        let totp = kinds.contains(&FactorKind::Totp);
        let passkey = app.passkeys.is_some() && kinds.contains(&FactorKind::Passkey);
        Ok(Offer {
            totp,
            code: totp || kinds.contains(&FactorKind::RecoveryCodes) || !passkey,
            passkey,
        })
    }

    /// The sentence above the form.
    pub fn intro(&self, t: &Text) -> &'static str {
        match (self.totp, self.passkey, self.code) {
            (false, true, true) => t.otp_intro_passkey_recovery,
            (false, true, false) => t.otp_intro_passkey,
            _ => t.otp_intro,
        }
    }

    /// The label of the field.
    pub fn label(&self, t: &Text) -> &'static str {
        if self.totp {
            t.otp_label
        } else {
            t.otp_recovery_label
        }
    }
}

async fn render(
    app: &App,
    t: &Text,
    pending: &Pending,
    user: (&str, &str),
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (sub, username) = user;
    let offer = match Offer::for_user(app, sub).await {
        Ok(o) => o,
        Err(e) => return error_page(t, &e.into()),
    };
    let csrf = csrf_token(app, PURPOSE, &pending.interaction_id, &pending.binding, "");
    html(
        status,
        &OtpPage {
            t,
            username,
            action: paths::LOGIN_OTP,
            interaction: &pending.interaction_id,
            csrf_token: &csrf,
            error,
            passkey_csrf: offer.passkey.then(|| {
                csrf_token(
                    app,
                    super::login::PURPOSE,
                    &pending.interaction_id,
                    &pending.binding,
                    "",
                )
            }),
            offer,
        },
    )
}

fn to_login(t: &Text, pending: &Pending) -> Response {
    render_decision(
        t,
        Ok(authorize::Decision::Login {
            interaction_id: pending.interaction_id.clone(),
        }),
    )
}

pub async fn show(State(app): State<App>, page: InteractionPage) -> Response {
    let InteractionPage { pending, t, jar } = page;
    if !pending.admits(Page::SecondFactor) {
        return expired_page(t);
    }
    let cookie = cookies::read(&jar, cookies::session_name(&app.config));
    match authorize::stage_session(&app, &pending, Page::SecondFactor, cookie).await {
        Ok(Some(view)) => {
            let user = (view.session.user_sub.as_str(), view.username.as_str());
            render(&app, t, &pending, user, None, StatusCode::OK).await
        }
        Ok(None) => to_login(t, &pending),
        Err(e) => error_page(t, &e.into()),
    }
}

pub async fn submit(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    from: StartedFrom,
    form: InteractionForm,
) -> Response {
    let t = form.t;
    if !form.pending.admits(Page::SecondFactor) || !form.csrf_ok(&app, PURPOSE, "") {
        return expired_page(t);
    }
    let InteractionForm {
        params,
        jar,
        pending,
        ..
    } = form;
    let cookie = cookies::read(&jar, cookies::session_name(&app.config));
    // The first factor is the session the stage names: without it, log in again.
    let (session, username) =
        match authorize::stage_session(&app, &pending, Page::SecondFactor, cookie).await {
            Ok(Some(view)) => (view.session, view.username),
            Ok(None) => return to_login(t, &pending),
            Err(e) => return error_page(t, &e.into()),
        };
    let client_id = pending.client.client_id.clone();
    let typed = params.get("otp").unwrap_or_default();
    let outcome =
        match factors::check_otp(&app, &session.user_sub, typed, ip, Some(&client_id)).await {
            Ok(o) => o,
            Err(e) => return error_page(t, &e),
        };
    let method = match outcome {
        OtpOutcome::Accepted { method, .. } => method,
        OtpOutcome::Rejected => {
            return render(
                &app,
                t,
                &pending,
                (&session.user_sub, &username),
                Some(t.otp_failed),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        OtpOutcome::Throttled { retry_after } => {
            let response = render(
                &app,
                t,
                &pending,
                (&session.user_sub, &username),
                Some(t.throttled),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
            return with_retry_after(response, retry_after);
        }
    };
    // The code raises the stage's session: the new one records both factors.
    let proof = Proof {
        user_sub: &session.user_sub,
        from: &from,
        method,
        event: Some(login::succeeded(&session.user_sub, ip, Some(&client_id))),
    };
    log_in_raising(&app, t, jar, &pending, proof, &session).await
}

/// The CSRF token of the continue button under the recovery codes shown after an enrolment
/// inside a flow, for the interaction `interaction` (sealed at `Stage::Resume`).
pub fn resume_csrf(app: &App, interaction: &str, binding: &str) -> String {
    csrf_token(app, RESUME_PURPOSE, interaction, binding, "")
}

pub async fn resume(State(app): State<App>, form: InteractionForm) -> Response {
    let t = form.t;
    if !form.pending.admits(Page::Resume) || !form.csrf_ok(&app, RESUME_PURPOSE, "") {
        return expired_page(t);
    }
    let cookie = cookies::read(&form.jar, cookies::session_name(&app.config));
    match authorize::stage_session(&app, &form.pending, Page::Resume, cookie).await {
        Ok(Some(view)) => {
            let decision =
                authorize::continue_after_login(&app, &form.pending, &view.session).await;
            render_decision(t, decision)
        }
        Ok(None) => to_login(t, &form.pending),
        Err(e) => error_page(t, &e.into()),
    }
}

/// Samples of the second-factor page for checking template overrides.
pub(crate) fn samples(t: &'static Text) -> Vec<super::overrides::Sample> {
    let mut all = Vec::new();
    // An app's code, a passkey alone, and recovery codes beside a passkey.
    for (totp, code, passkey) in [
        (true, true, false),
        (false, false, true),
        (false, true, true),
    ] {
        for (error, username) in [(None, ""), (Some(t.otp_failed), "alice")] {
            all.push(super::overrides::sample(&OtpPage {
                t,
                username,
                action: paths::LOGIN_OTP,
                interaction: "interaction",
                csrf_token: "csrf",
                error,
                offer: Offer {
                    totp,
                    code,
                    passkey,
                },
                passkey_csrf: passkey.then(|| "csrf".to_owned()),
            }));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ui::text::{DE, EN};

    /// What the page asks for, by what the user has: (totp, code field, passkey) → intro.
    #[test]
    fn the_page_asks_for_what_the_user_has() {
        let check = |totp, code, passkey, intro: &str, label: &str| {
            let offer = Offer {
                totp,
                code,
                passkey,
            };
            assert_eq!((offer.intro(&EN), offer.label(&EN)), (intro, label));
        };
        check(true, true, false, EN.otp_intro, EN.otp_label);
        check(true, true, true, EN.otp_intro, EN.otp_label);
        check(
            false,
            true,
            true,
            EN.otp_intro_passkey_recovery,
            EN.otp_recovery_label,
        );
        check(
            false,
            false,
            true,
            EN.otp_intro_passkey,
            EN.otp_recovery_label,
        );
        check(false, true, false, EN.otp_intro, EN.otp_recovery_label);
        let passkey_only = Offer {
            totp: false,
            code: false,
            passkey: true,
        };
        assert_eq!(passkey_only.intro(&DE), DE.otp_intro_passkey);
        assert!(!passkey_only.intro(&EN).contains("authenticator"));
    }
}
