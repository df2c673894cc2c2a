//! Mail: the messages Latchkey sends (password reset and email verification links), queued
//! durably in the outbox and sent over SMTP by any node.
//!
//! `queue` renders nothing yet: it seals what the message needs (address, kind, language,
//! link) under a subkey of the master key and adds it to the outbox (kind `MAIL_KIND`,
//! subject the user's `sub`), so a link token never sits readable in the database. Each node's
//! delivery loop (`run`) claims a due item with a lease, opens it, renders the plain-text
//! and HTML bodies from the askama templates under `templates/mail/` in the user's language,
//! and hands the message to the SMTP server (`lettre`, STARTTLS when offered or TLS from the
//! start for `smtps://`). A transient failure is retried with back-off
//! (`logout::retry_delay`) until the link would have expired anyway; a permanent one (the
//! server refused the address) is not. Logs and the outbox's `last_error` name the item and
//! the SMTP status only: never an address, a link or a token.
//!
//! Without `LATCHKEY_SMTP_URL` there is no `Mailer` and nothing is queued: the features that
//! need mail are off (`Config::mail`).

mod text;

use std::time::Duration;

use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::MailSettings;
use crate::crypto::Sealer;
use crate::store::{AttemptResult, OutboxItem, StoreResult};

pub use text::{MailText, for_language};

/// The outbox kind of a mail.
pub const MAIL_KIND: &str = "mail";
/// The sealing purpose of queued mail (a subkey of the master key).
pub const SEALING_PURPOSE: &[u8] = b"latchkey mail outbox v1";
/// How long a claimed mail is left to its node before another may claim it: far longer than
/// one SMTP exchange may take (`SMTP_TIMEOUT`).
const LEASE: i64 = 60;
/// One SMTP command's answer must arrive within this.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node looks for due mail.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Mails one node sends at once.
const IN_FLIGHT: usize = 4;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    PasswordReset,
    EmailVerification,
    /// Confirm the address of a new account (sign-up).
    Signup,
    /// To the previous (verified) address: the account's address was changed to `detail`.
    /// The link is the account page; the mail holds no token.
    EmailChanged,
}

/// One message as it waits in the outbox (sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedMail {
    pub kind: MailKind,
    /// The recipient's address.
    pub to: String,
    /// The name the greeting uses (the username).
    pub username: String,
    /// A language tag (`en`, `de`); unknown ones fall back to English.
    pub lang: String,
    /// The link the message carries.
    pub link: String,
    /// What else the message names (`EmailChanged`: the new address); empty for the others,
    /// and for items queued before it existed.
    #[serde(default)]
    pub detail: String,
}

/// Sends mail over SMTP; one per node, built from `Config::mail`.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    sealer: Sealer,
    /// The issuer's host, named in messages.
    site: String,
}

/// Building the SMTP transport failed (a setting the configuration check let through).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerError(String);

impl Mailer {
    pub fn new(
        settings: &MailSettings,
        issuer: &str,
        master_key: &[u8; 32],
    ) -> Result<Mailer, MailerError> {
        let smtp = &settings.smtp;
        let tls = TlsParameters::new(smtp.host.clone())
            .map_err(|e| MailerError(format!("TLS settings for the SMTP server: {e}")))?;
        let site = url::Url::parse(issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "latchkey".to_owned());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(SMTP_TIMEOUT))
            .hello_name(ClientId::Domain(site.clone()))
            .tls(if smtp.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = settings
            .from
            .parse()
            .map_err(|_| MailerError("LATCHKEY_EMAIL_FROM is not a mail address".into()))?;
        let sealer = Sealer::for_purpose(master_key, SEALING_PURPOSE)
            .map_err(|e| MailerError(e.to_string()))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            sealer,
            site,
        })
    }

    fn seal(&self, mail: &QueuedMail) -> Result<String, MailerError> {
        self.seal_json(MAIL_KIND, mail)
    }

    fn open(&self, payload: &str) -> Option<QueuedMail> {
        self.open_json(MAIL_KIND, payload)
    }

    /// `value` as JSON, sealed for `purpose` (the associated data), as base64url text: for
    /// what mail-related rows must keep unreadable in the database.
    pub fn seal_json<T: Serialize>(&self, purpose: &str, value: &T) -> Result<String, MailerError> {
        let json = serde_json::to_vec(value).map_err(|e| MailerError(e.to_string()))?;
        let sealed = self
            .sealer
            .seal(&json, purpose.as_bytes())
            .map_err(|e| MailerError(e.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens what `seal_json` sealed for `purpose`; `None` when it is not that.
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        purpose: &str,
        text: &str,
    ) -> Option<T> {
        let sealed = URL_SAFE_NO_PAD.decode(text).ok()?;
        let json = self.sealer.open(&sealed, purpose.as_bytes()).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// The message for `mail`: subject, plain-text and HTML bodies in its language.
    pub fn compose(&self, mail: &QueuedMail) -> Result<Message, String> {
        let m = for_language(&mail.lang);
        let page = Body {
            m,
            username: &mail.username,
            link: &mail.link,
            detail: &mail.detail,
            site: &self.site,
        };
        let (subject, plain, html) = match mail.kind {
            MailKind::PasswordReset => (
                m.reset_subject,
                PasswordResetText { b: &page }.render(),
                PasswordResetHtml { b: &page }.render(),
            ),
            MailKind::EmailVerification => (
                m.verify_subject,
                VerificationText { b: &page }.render(),
                VerificationHtml { b: &page }.render(),
            ),
            MailKind::Signup => (
                m.signup_subject,
                SignupText { b: &page }.render(),
                SignupHtml { b: &page }.render(),
            ),
            MailKind::EmailChanged => (
                m.changed_subject,
                EmailChangedText { b: &page }.render(),
                EmailChangedHtml { b: &page }.render(),
            ),
        };
        let (plain, html) = match (plain, html) {
            (Ok(p), Ok(h)) => (p, h),
            _ => return Err("the message could not be rendered".into()),
        };
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| "the recipient's address is not valid".to_owned())?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{subject} · {}", self.site))
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|_| "the message could not be built".to_owned())
    }
}

/// What every message template sees.
struct Body<'a> {
    m: &'static MailText,
    username: &'a str,
    link: &'a str,
    detail: &'a str,
    site: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/email_verification.txt")]
struct VerificationText<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/email_verification.html")]
struct VerificationHtml<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/signup.txt")]
struct SignupText<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/signup.html")]
struct SignupHtml<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    b: &'a Body<'a>,
}
#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct EmailChangedHtml<'a> {
    b: &'a Body<'a>,
}

/// Queues `mail` for the user `sub`; it is sent by some node's delivery loop until
/// `give_up_at`. Does nothing (and says so) when mail is off.
pub async fn queue(app: &App, sub: &str, mail: &QueuedMail, give_up_at: i64) -> StoreResult<bool> {
    let Some(mailer) = &app.mailer else {
        return Ok(false);
    };
    let payload = match mailer.seal(mail) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "a mail could not be sealed");
            return Ok(false);
        }
    };
    let id = app
        .store
        .enqueue(MAIL_KIND, sub, &payload, app.now(), give_up_at)
        .await?;
    tracing::info!(outbox_id = id, kind = ?mail.kind, "mail queued");
    Ok(true)
}

/// A node's delivery loop: every `POLL_INTERVAL`, sends what is due.
pub async fn run(app: App) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        send_due(&app).await;
    }
}

/// Claims and sends due mail, `IN_FLIGHT` at a time, until none is due; returns how many
/// attempts were made.
pub async fn send_due(app: &App) -> usize {
    let Some(mailer) = app.mailer.as_deref() else {
        return 0;
    };
    let mut attempts = 0;
    loop {
        let mut batch = Vec::with_capacity(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            match app.store.claim_due(MAIL_KIND, app.now(), LEASE).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim mail");
                    break;
                }
            }
        }
        if batch.is_empty() {
            return attempts;
        }
        attempts += batch.len();
        futures_util::future::join_all(batch.into_iter().map(|item| send(app, mailer, item))).await;
    }
}

/// How one attempt ended: sent, or an error that is worth retrying or not.
enum Sent {
    Yes,
    Transient(String),
    Permanent(String),
}

async fn send(app: &App, mailer: &Mailer, item: OutboxItem) {
    let sent = match mailer.open(&item.payload) {
        None => Sent::Permanent("the queued mail cannot be opened (another master key?)".into()),
        Some(mail) => match mailer.compose(&mail) {
            Err(e) => Sent::Permanent(e),
            Ok(message) => match mailer.transport.send(message).await {
                Ok(_) => Sent::Yes,
                Err(e) => describe(&e),
            },
        },
    };
    let now = app.now();
    let result = match &sent {
        Sent::Yes => AttemptResult::Delivered,
        Sent::Transient(error) => {
            let retry_at = now + crate::logout::retry_delay(item.attempts);
            AttemptResult::Failed {
                error: error.clone(),
                retry_at: (retry_at < item.give_up_at).then_some(retry_at),
            }
        }
        Sent::Permanent(error) => AttemptResult::Failed {
            error: error.clone(),
            retry_at: None,
        },
    };
    match &result {
        AttemptResult::Delivered => {
            tracing::info!(
                outbox_id = item.outbox_id,
                attempt = item.attempts,
                "mail sent"
            )
        }
        AttemptResult::Failed { error, retry_at } => tracing::warn!(
            outbox_id = item.outbox_id,
            attempt = item.attempts,
            error = %error,
            retried = retry_at.is_some(),
            "mail not sent"
        ),
    }
    if let Err(e) = app
        .store
        .finish_attempt(item.outbox_id, item.attempts, &result, now)
        .await
    {
        // The lease runs out and another attempt follows.
        tracing::warn!(error = %e, "could not record a mail delivery");
    }
}

/// An SMTP failure in words that name no address: the server's reply code, or the kind of
/// failure.
fn describe(e: &lettre::transport::smtp::Error) -> Sent {
    let code = e.status().map(|c| format!(" ({c})")).unwrap_or_default();
    if e.is_permanent() {
        Sent::Permanent(format!("the SMTP server refused the mail{code}"))
    } else if e.is_transient() {
        Sent::Transient(format!("the SMTP server deferred the mail{code}"))
    } else if e.is_timeout() {
        Sent::Transient("the SMTP server did not answer in time".into())
    } else if e.is_tls() {
        Sent::Transient("TLS with the SMTP server failed".into())
    } else {
        Sent::Transient("the SMTP server could not be reached".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SmtpUrl;

    fn mailer() -> Mailer {
        let settings = MailSettings {
            smtp: SmtpUrl {
                host: "127.0.0.1".to_owned(),
                port: 2525,
                implicit_tls: false,
                credentials: None,
            },
            from: "Latchkey <no-reply@example.test>".to_owned(),
        };
        Mailer::new(&settings, "https://id.example.test", &[7; 32]).unwrap()
    }

    fn mail(kind: MailKind, lang: &str, detail: &str) -> QueuedMail {
        QueuedMail {
            kind,
            to: "alice@example.test".to_owned(),
            username: "alice".to_owned(),
            lang: lang.to_owned(),
            link: "https://id.example.test/somewhere?x=1".to_owned(),
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn every_kind_is_composed_in_every_language() {
        let mailer = mailer();
        for kind in [
            MailKind::PasswordReset,
            MailKind::EmailVerification,
            MailKind::Signup,
            MailKind::EmailChanged,
        ] {
            for (lang, greeting) in [("en", "Hello alice"), ("de", "Hallo alice")] {
                let message = mailer
                    .compose(&mail(kind, lang, "new@example.test"))
                    .unwrap();
                let raw = String::from_utf8(message.formatted()).unwrap();
                assert!(raw.contains(greeting), "{kind:?} {lang}: {raw}");
                assert!(raw.contains("id.example.test/somewhere"), "{kind:?}");
                assert_eq!(
                    raw.contains("new@example.test"),
                    kind == MailKind::EmailChanged,
                    "only the change notice names the new address: {kind:?}"
                );
            }
        }
    }

    #[test]
    fn an_item_queued_before_detail_existed_still_opens() {
        let mailer = mailer();
        let old = serde_json::json!({
            "kind": "password_reset", "to": "alice@example.test", "username": "alice",
            "lang": "en", "link": "https://id.example.test/x",
        });
        let sealed = mailer.seal_json(MAIL_KIND, &old).unwrap();
        let opened = mailer.open(&sealed).expect("opens");
        assert_eq!(opened.detail, "");
        assert_eq!(opened.kind, MailKind::PasswordReset);
    }
}
