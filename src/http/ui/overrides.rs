//! Template overrides (`LATCHKEY_TEMPLATES_DIR`): files named like the built-in templates
//! (`login.html`, `consent.html`, …) replace them. The built-in pages are askama templates,
//! compiled into the binary; an override is read at start and rendered by `minijinja`, a
//! Jinja2 engine, with the same variables the built-in template gets (each page's struct,
//! serialized) plus `chrome` (the frame: brand name, logo, stylesheet, language links).
//!
//! Everything is checked before the server binds a port: an unknown file name, a syntax error
//! or a variable the page does not have stops the program with one line naming the file. The
//! variable check renders every override with sample pages in every language (the samples
//! each page module provides, with and without their optional parts) under minijinja's strict
//! undefined-variable rule, so a typo in a branch that no sample reaches can still slip
//! through to a 500 at run time; the samples cover every branch of the built-in templates.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::Page;
use super::chrome::{Chrome, LanguageLink};
use super::text::{self, Text};
use minijinja::{Environment, UndefinedBehavior, Value};

/// The templates Latchkey renders, which an override may replace.
pub const TEMPLATES: [&str; 18] = [
    "base.html",
    "login.html",
    "consent.html",
    "error.html",
    "device.html",
    "device_done.html",
    "form_post.html",
    "logout.html",
    "password.html",
    "account.html",
    "otp.html",
    "totp.html",
    "recovery_codes.html",
    "forgot.html",
    "reset.html",
    "notice.html",
    "email_pending.html",
    "signup.html",
];

/// The built-in frame, so that an override can `{% extends "base.html" %}` without replacing
/// it. Its first line is askama's way to fetch the frame (`chrome`), which minijinja gets as a
/// variable instead; the rest is written in the syntax both engines share.
const BUILT_IN_BASE: &str = include_str!("../../../templates/base.html");
const ASKAMA_ONLY_LINE: &str = "{% let chrome = crate::http::ui::chrome::current() -%}\n";

/// A broken override: one line, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideError(pub String);

impl fmt::Display for OverrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LATCHKEY_TEMPLATES_DIR: {}", self.0)
    }
}

impl std::error::Error for OverrideError {}

/// A page as a sample for checking overrides: its template and its variables.
pub struct Sample {
    pub template: &'static str,
    pub context: Value,
}

/// A sample of `page`, for a page module's `samples`.
pub fn sample<P: Page>(page: &P) -> Sample {
    Sample {
        template: P::TEMPLATE,
        context: Value::from_serialize(page),
    }
}

/// The overridden templates, ready to render.
pub struct Overrides {
    env: Environment<'static>,
    names: BTreeSet<String>,
}

impl Overrides {
    /// No overrides: every page is built in.
    pub fn none() -> Overrides {
        Overrides {
            env: Environment::new(),
            names: BTreeSet::new(),
        }
    }

    /// Reads every file of `dir`, then checks each by rendering the samples of its page.
    pub fn load(dir: &Path) -> Result<Overrides, OverrideError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| OverrideError(format!("cannot read {}: {e}", dir.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| OverrideError(format!("cannot read {}: {e}", dir.display())))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            // Editors' and version control's leftovers are not templates.
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            if !TEMPLATES.contains(&name.as_str()) {
                return Err(OverrideError(format!(
                    "{} is not a template Latchkey renders (one of {})",
                    path.display(),
                    TEMPLATES.join(", ")
                )));
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|e| OverrideError(format!("cannot read {}: {e}", path.display())))?;
            files.push((name, path, source));
        }
        Self::from_sources(
            files
                .iter()
                .map(|(n, p, s)| (n.as_str(), p.as_path(), s.as_str())),
        )
    }

    /// The overrides from `(template name, path for messages, source)`, checked.
    pub fn from_sources<'a>(
        files: impl Iterator<Item = (&'a str, &'a Path, &'a str)>,
    ) -> Result<Overrides, OverrideError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut names = BTreeSet::new();
        let mut paths = Vec::new();
        for (name, path, source) in files {
            env.add_template_owned(name.to_owned(), source.to_owned())
                .map_err(|e| OverrideError(format!("{}: {}", path.display(), one_line(&e))))?;
            names.insert(name.to_owned());
            paths.push((name.to_owned(), path.to_owned()));
        }
        if !names.contains("base.html") {
            env.add_template_owned(
                "base.html".to_owned(),
                BUILT_IN_BASE.replacen(ASKAMA_ONLY_LINE, "", 1),
            )
            .map_err(|e| OverrideError(format!("built-in base.html: {}", one_line(&e))))?;
        }
        let overrides = Overrides { env, names };
        overrides.check(&paths)?;
        Ok(overrides)
    }

    /// Renders every override with every sample of its page (a frame override with every
    /// sample of every page), in every language.
    fn check(&self, paths: &[(String, std::path::PathBuf)]) -> Result<(), OverrideError> {
        for t in [&text::EN, &text::DE] {
            let samples = all_samples(t);
            for (name, path) in paths {
                for s in samples
                    .iter()
                    .filter(|s| name == "base.html" || s.template == name.as_str())
                {
                    // A frame override is checked through the page that extends it: built-in
                    // pages do not use it, but overridden pages extending it do, and the
                    // frame alone must render too.
                    let template = if name == "base.html" && !self.names.contains(s.template) {
                        "base.html"
                    } else {
                        s.template
                    };
                    self.render_value(template, s.context.clone(), &sample_chrome())
                        .map_err(|e| {
                            OverrideError(format!("{}: {}", path.display(), one_line(&e)))
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Whether `template` is overridden.
    pub fn overrides(&self, template: &str) -> bool {
        self.names.contains(template)
    }

    /// Renders `page` with its override, when there is one.
    pub fn render<P: Page>(
        &self,
        page: &P,
        chrome: &Chrome,
    ) -> Option<Result<String, minijinja::Error>> {
        if !self.overrides(P::TEMPLATE) {
            return None;
        }
        Some(self.render_value(P::TEMPLATE, Value::from_serialize(page), chrome))
    }

    fn render_value(
        &self,
        template: &str,
        page: Value,
        chrome: &Chrome,
    ) -> Result<String, minijinja::Error> {
        let context = minijinja::context! { chrome => Value::from_serialize(chrome), ..page };
        self.env.get_template(template)?.render(context)
    }
}

/// An error on one line: minijinja's message with its template and line.
fn one_line(e: &minijinja::Error) -> String {
    e.to_string().replace('\n', " ")
}

/// A frame with every optional part present, for checking overrides.
fn sample_chrome() -> Chrome {
    Chrome {
        brand_name: "Example".to_owned(),
        has_logo: true,
        logo_src: "/static/logo.0000000000000000.png".to_owned(),
        brand_css: "/static/brand.0000000000000000.css".to_owned(),
        has_css: true,
        has_languages: true,
        languages: vec![
            LanguageLink {
                lang: "en",
                label: "English",
                href: "/language?lang=en&return=%2Faccount".to_owned(),
            },
            LanguageLink {
                lang: "de",
                label: "Deutsch",
                href: "/language?lang=de&return=%2Faccount".to_owned(),
            },
        ],
    }
}

/// Every page's samples, in language `t`.
pub fn all_samples(t: &'static Text) -> Vec<Sample> {
    let mut all = Vec::new();
    all.extend(super::samples(t));
    all.extend(super::account::samples(t));
    all.extend(super::device::samples(t));
    all.extend(super::email_links::samples(t));
    all.extend(super::factors::samples(t));
    all.extend(super::logout::samples(t));
    all.extend(super::password::samples(t));
    all.extend(super::second_factor::samples(t));
    all.extend(super::signup::samples(t));
    all
}

#[cfg(test)]
mod tests;
