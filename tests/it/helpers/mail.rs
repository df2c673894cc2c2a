//! `MailSink`: a real SMTP server (`tests/mail/smtp_sink.py`, aiosmtpd) on a loopback port,
//! one per test, writing each message it accepts into a directory of its own; and
//! `spawn_app_with_mail`, a server that sends its mail there.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use std::io::BufRead;

use super::{Backend, TestApp, spawn_app_with};

/// One message as the sink received it (bodies decoded from their transfer encoding).
#[derive(Debug, Clone)]
pub struct SentMail {
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl SentMail {
    /// The first link in the plain-text body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no link {prefix} in {}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

pub struct MailSink {
    pub port: u16,
    dir: PathBuf,
    child: std::process::Child,
}

/// The Python that has aiosmtpd: `LATCHKEY_TEST_PYTHON`, else Debian's (python3-aiosmtpd),
/// else the first `python3` on the path.
fn python() -> String {
    if let Ok(p) = std::env::var("LATCHKEY_TEST_PYTHON") {
        return p;
    }
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = std::process::Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate.to_owned();
        }
    }
    panic!("no python3 with aiosmtpd (install python3-aiosmtpd, or pip install aiosmtpd)");
}

impl MailSink {
    pub async fn start() -> MailSink {
        let dir = std::env::temp_dir().join(format!("latchkey-mail-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mail/smtp_sink.py");
        let mut child = std::process::Command::new(python())
            .arg(script)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP sink starts");
        let stdout = child.stdout.take().unwrap();
        // The sink prints its port once it listens (well within a second).
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await
        .unwrap()
        .expect("the SMTP sink names its port");
        let port = line.trim().parse().expect("a port number");
        MailSink { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far to `to`, oldest first.
    pub fn received(&self, to: &str) -> Vec<SentMail> {
        let mut found: Vec<(std::time::SystemTime, SentMail)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                let v: Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                let mail = SentMail {
                    to: v["to"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap().to_owned())
                        .collect(),
                    from: s("from"),
                    subject: s("subject"),
                    text: s("text"),
                    html: s("html"),
                };
                mail.to
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(to))
                    .then_some((modified, mail))
            })
            .collect();
        found.sort_by_key(|(t, _)| *t);
        found.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits (up to 20 s) until `n` messages to `to` have arrived; returns them.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<SentMail> {
        for _ in 0..200 {
            let mails = self.received(to);
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} mail(s) to {to} did not arrive");
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub const MAIL_FROM: &str = "Latchkey <login@latchkey.test>";

/// A server that sends its mail to a fresh sink, with extra settings.
pub async fn spawn_app_with_mail(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, MailSink) {
    let sink = MailSink::start().await;
    let mut pairs = vec![
        ("LATCHKEY_SMTP_URL".to_owned(), sink.url()),
        ("LATCHKEY_EMAIL_FROM".to_owned(), MAIL_FROM.to_owned()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_with(backend, move |env| env.extend(pairs)).await;
    (app, sink)
}
