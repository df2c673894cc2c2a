//! What every page shares around its own content: the product name, the logo, the colours
//! (a stylesheet generated at start from `config::Brand`), and the language switcher.
//!
//! Pages are rendered far from the request that asked for them (`html` is called by dozens of
//! handlers and error paths), so the per-request part travels in a task-local set by one
//! middleware (`scope`) around every route that can render a page: the branding of the app
//! that serves the request, the language the visitor picked, and the URL the switcher returns
//! to. `current()` reads it while a template renders; outside a request (unit tests) it falls
//! back to unbranded defaults. Nothing here decides anything about a login or a consent.
//!
//! The Content-Security-Policy stays strict: colours arrive in a stylesheet served from
//! `/static` under a content-hashed name, never as inline style.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Serialize;

use super::text::{self, Text};
use crate::app::App;
use crate::config::{Brand, Config, Logo, Rgb, Theme};
use crate::protocol::discovery::paths;
use crate::protocol::form::Params;

/// The files the branding adds under `/static`, built once at start.
pub struct BrandAssets {
    pub name: String,
    /// `/static/brand.<hash>.css`: the colours, as CSS custom properties.
    pub css_path: String,
    pub css: String,
    /// What an `<img src>` of the logo says, when there is a logo.
    pub logo_src: Option<String>,
    /// A logo file served by us: its path under `/static`, its bytes and content type.
    pub logo_file: Option<(String, Vec<u8>, &'static str)>,
}

impl BrandAssets {
    pub fn new(brand: &Brand) -> BrandAssets {
        let css = stylesheet(brand);
        let css_path = format!("/static/brand.{}.css", short_hash(css.as_bytes()));
        let (logo_src, logo_file) = match &brand.logo {
            None => (None, None),
            Some(Logo::Url(url)) => (Some(url.to_string()), None),
            Some(Logo::File {
                bytes,
                content_type,
                extension,
                ..
            }) => {
                let path = format!("/static/logo.{}.{extension}", short_hash(bytes));
                (
                    Some(path.clone()),
                    Some((path, bytes.clone(), *content_type)),
                )
            }
        };
        BrandAssets {
            name: brand.name.clone(),
            css_path,
            css,
            logo_src,
            logo_file,
        }
    }

    /// The stylesheet's answer: cached for a year, since its name changes with its content.
    pub fn css_response(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            self.css.clone(),
        )
            .into_response()
    }

    /// The logo file's answer (404 when the logo is not a file of ours).
    pub fn logo_response(&self) -> Response {
        match &self.logo_file {
            Some((_, bytes, content_type)) => (
                [
                    (header::CONTENT_TYPE, *content_type),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                bytes.clone(),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

/// The CSP `img-src` sources the pages need: our own files, the QR code's data URI, and
/// the origin of a logo given by URL.
pub fn img_sources(config: &Config) -> String {
    match &config.brand.logo {
        Some(Logo::Url(url)) => format!("'self' data: {}", url.origin().ascii_serialization()),
        _ => "'self' data:".to_owned(),
    }
}

/// 64 bits of SHA-256 in hex: enough to tell two versions of a file apart.
fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The colours of one theme. Every text colour is chosen to reach WCAG 2.2 AA contrast
/// (4.5:1) with the surface it sits on, whatever colour the operator picked: a brand colour
/// too light for text on white is darkened for links, the text on a button is black or white,
/// whichever reads better.
struct Palette {
    page: Rgb,
    on_page: Rgb,
    card: Rgb,
    text: Rgb,
    muted: Rgb,
    border: Rgb,
    primary: Rgb,
    on_primary: Rgb,
    link: Rgb,
    error_bg: Rgb,
    error_text: Rgb,
    code_bg: Rgb,
}

const WHITE: Rgb = Rgb(255, 255, 255);
const INK: Rgb = Rgb(17, 20, 28);
const BLACK: Rgb = Rgb(0, 0, 0);
/// Latchkey's blue, the primary colour when none is configured.
const DEFAULT_PRIMARY: Rgb = Rgb(0x24, 0x51, 0xc7);
const DEFAULT_PAGE: Rgb = Rgb(0xee, 0xf1, 0xf6);
/// Text contrast WCAG 2.2 AA asks for (1.4.3); the 0.1 margin absorbs rounding to 8 bits.
const TEXT_CONTRAST: f64 = 4.6;

impl Palette {
    fn light(brand: &Brand) -> Palette {
        let card = WHITE;
        let page = brand.background_color.unwrap_or(DEFAULT_PAGE);
        let primary = brand.primary_color.unwrap_or(DEFAULT_PRIMARY);
        Palette {
            page,
            on_page: readable_text(page),
            card,
            text: Rgb(0x1d, 0x23, 0x30),
            muted: Rgb(0x4a, 0x53, 0x66),
            border: Rgb(0x6b, 0x74, 0x88),
            primary,
            on_primary: readable_text(primary),
            link: readable_on(primary, card),
            error_bg: Rgb(0xfd, 0xec, 0xec),
            error_text: Rgb(0x8a, 0x1c, 0x1c),
            code_bg: Rgb(0xee, 0xf1, 0xf6),
        }
    }

    fn dark(brand: &Brand) -> Palette {
        let card = Rgb(0x1b, 0x20, 0x2b);
        // A configured page colour keeps its hue, darkened to sit behind a dark card.
        let page = brand
            .background_color
            .map(|c| c.mix(INK, 0.85))
            .unwrap_or(Rgb(0x0f, 0x12, 0x18));
        // The brand colour as a button stays as it is; as text on the dark card it is
        // lightened until it reads.
        let primary = brand.primary_color.unwrap_or(Rgb(0x6f, 0x9b, 0xff));
        Palette {
            page,
            on_page: readable_text(page),
            card,
            text: Rgb(0xe8, 0xeb, 0xf1),
            muted: Rgb(0xb0, 0xb8, 0xc8),
            border: Rgb(0x8a, 0x94, 0xa8),
            primary,
            on_primary: readable_text(primary),
            link: readable_on(primary, card),
            error_bg: Rgb(0x42, 0x1b, 0x1b),
            error_text: Rgb(0xff, 0xc2, 0xc2),
            code_bg: Rgb(0x2a, 0x31, 0x40),
        }
    }

    fn declarations(&self) -> String {
        let vars = [
            ("page", self.page),
            ("on-page", self.on_page),
            ("card", self.card),
            ("text", self.text),
            ("muted", self.muted),
            ("border", self.border),
            ("primary", self.primary),
            ("on-primary", self.on_primary),
            ("link", self.link),
            ("error-bg", self.error_bg),
            ("error-text", self.error_text),
            ("code-bg", self.code_bg),
        ];
        vars.iter()
            .map(|(name, colour)| format!("  --lk-{name}: {colour};\n"))
            .collect()
    }
}

/// White or dark text, whichever contrasts more with `background`: the dark ink where it
/// reads, pure black on the mid-tones where only black does (one of white and black always
/// reaches 4.58:1).
fn readable_text(background: Rgb) -> Rgb {
    if WHITE.contrast(background) >= BLACK.contrast(background) {
        WHITE
    } else if INK.contrast(background) >= TEXT_CONTRAST {
        INK
    } else {
        BLACK
    }
}

/// `colour`, moved towards black on a light surface (towards white on a dark one) until it
/// reaches text contrast with `surface`.
fn readable_on(colour: Rgb, surface: Rgb) -> Rgb {
    let target = if surface.luminance() > 0.18 {
        INK
    } else {
        WHITE
    };
    (0..=20)
        .map(|step| colour.mix(target, f64::from(step) * 0.05))
        .find(|c| c.contrast(surface) >= TEXT_CONTRAST)
        .unwrap_or(target)
}

/// The generated stylesheet: the palette of each theme as custom properties, which
/// `static/latchkey.css` uses for every colour.
pub fn stylesheet(brand: &Brand) -> String {
    let light = Palette::light(brand).declarations();
    let dark = Palette::dark(brand).declarations();
    let mut css = String::from("/* Generated by Latchkey from the LATCHKEY_BRAND_* settings. */\n");
    match brand.theme {
        Theme::Light => css.push_str(&format!(":root {{\n  color-scheme: light;\n{light}}}\n")),
        Theme::Dark => css.push_str(&format!(":root {{\n  color-scheme: dark;\n{dark}}}\n")),
        Theme::Auto => css.push_str(&format!(
            ":root {{\n  color-scheme: light dark;\n{light}}}\n\
             @media (prefers-color-scheme: dark) {{\n:root {{\n{dark}}}\n}}\n"
        )),
    }
    css
}

/// The page assets and the template overrides of one server.
pub struct Pages {
    pub brand: BrandAssets,
    pub overrides: super::overrides::Overrides,
}

impl Pages {
    /// Builds the branding assets and loads and checks the template overrides.
    pub fn new(config: &Config) -> Result<Pages, super::overrides::OverrideError> {
        let brand = BrandAssets::new(&config.brand);
        let overrides = match &config.templates_dir {
            Some(dir) => super::overrides::Overrides::load(dir)?,
            None => super::overrides::Overrides::none(),
        };
        Ok(Pages { brand, overrides })
    }
}

/// What the current request's pages share, while it is being answered.
#[derive(Clone)]
struct RequestScope {
    pages: Arc<Pages>,
    /// The language the visitor picked with the switcher (a cookie).
    chosen: Option<&'static Text>,
    /// The first supported language of the browser's `Accept-Language`.
    accepted: Option<&'static Text>,
    /// Where the language switcher returns to: a GET of the page being shown.
    here: Option<String>,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// The frame of a page (`templates/base.html`), as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    pub brand_name: String,
    pub has_logo: bool,
    pub logo_src: String,
    pub brand_css: String,
    pub has_css: bool,
    pub has_languages: bool,
    /// One link per language; empty when the page cannot be shown again by a plain GET.
    pub languages: Vec<LanguageLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LanguageLink {
    pub lang: &'static str,
    /// The language's name in itself.
    pub label: &'static str,
    pub href: String,
}

/// The languages of the switcher, each named in itself.
const LANGUAGES: [(&str, &str); 2] = [("en", "English"), ("de", "Deutsch")];

/// The frame of the page being rendered for the current request.
pub fn current() -> Chrome {
    SCOPE
        .try_with(|scope| {
            let brand = &scope.pages.brand;
            let languages = match &scope.here {
                Some(here) => LANGUAGES
                    .iter()
                    .map(|&(lang, label)| LanguageLink {
                        lang,
                        label,
                        href: switch_href(lang, here),
                    })
                    .collect(),
                None => Vec::new(),
            };
            Chrome {
                brand_name: brand.name.clone(),
                has_logo: brand.logo_src.is_some(),
                logo_src: brand.logo_src.clone().unwrap_or_default(),
                brand_css: brand.css_path.clone(),
                has_css: true,
                has_languages: !languages.is_empty(),
                languages,
            }
        })
        .unwrap_or_else(|_| Chrome {
            brand_name: "Latchkey".to_owned(),
            has_logo: false,
            logo_src: String::new(),
            brand_css: String::new(),
            has_css: false,
            has_languages: false,
            languages: Vec::new(),
        })
}

/// The current request's template overrides, if it has any, run with `f`.
pub fn with_overrides<R>(f: impl FnOnce(&super::overrides::Overrides) -> R) -> Option<R> {
    SCOPE.try_with(|scope| f(&scope.pages.overrides)).ok()
}

/// The language the visitor chose with the switcher, if any.
pub fn chosen_language() -> Option<&'static Text> {
    SCOPE.try_with(|scope| scope.chosen).ok().flatten()
}

/// The browser's preferred supported language (`Accept-Language`), if any.
pub fn accepted_language() -> Option<&'static Text> {
    SCOPE.try_with(|scope| scope.accepted).ok().flatten()
}

fn switch_href(lang: &str, here: &str) -> String {
    let mut out = format!("{}?", paths::LANGUAGE);
    out.push_str(
        &form_urlencoded::Serializer::new(String::new())
            .append_pair("lang", lang)
            .append_pair("return", here)
            .finish(),
    );
    out
}

/// The name of the language cookie (`__Host-` prefixed on https, like the others).
fn language_cookie_name(config: &Config) -> &'static str {
    if config.issuer_is_https {
        "__Host-latchkey_lang"
    } else {
        "latchkey_lang"
    }
}

/// Middleware around every route that may render a page: sets the request scope that
/// `current()`, `chosen_language()` and the template overrides read.
pub async fn scope(State(app): State<App>, request: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let chosen = jar
        .get(language_cookie_name(&app.config))
        .and_then(|c| text::for_tag(c.value()));
    let accepted = accept_language(request.headers());
    let (request, here) = return_target(request).await;
    let scope = RequestScope {
        pages: app.pages.clone(),
        chosen,
        accepted,
        here,
    };
    SCOPE.scope(scope, next.run(request)).await
}

/// The first language of `Accept-Language` (by its q-values) that the pages speak.
fn accept_language(headers: &HeaderMap) -> Option<&'static Text> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut ranked: Vec<(f32, &'static Text)> = value
        .split(',')
        .take(16)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let t = text::for_tag(parts.next()?.trim())?;
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, t))
        })
        .collect();
    // Stable: equal weights keep the browser's order.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.first().map(|(_, t)| *t)
}

/// Pages answered to a POST that a GET of another path shows again.
const POST_RETURNS: [(&str, &str); 12] = [
    (paths::LOGIN, paths::LOGIN),
    (paths::CONSENT, paths::CONSENT),
    (paths::LOGIN_OTP, paths::LOGIN_OTP),
    (paths::LOGIN_RESUME, paths::LOGIN),
    (paths::PASSWORD, paths::LOGIN),
    (paths::ACCOUNT_TOTP, paths::ACCOUNT_TOTP),
    (paths::DEVICE, paths::DEVICE),
    (paths::ACCOUNT_LOGIN, paths::ACCOUNT),
    (paths::ACCOUNT_OTP, paths::ACCOUNT),
    (paths::ACCOUNT_PASSWORD, paths::ACCOUNT),
    (paths::ACCOUNT_EMAIL, paths::ACCOUNT),
    (paths::ACCOUNT_PROFILE, paths::ACCOUNT),
];

/// Where the language switcher of the page answering `request` returns to: the same URL for
/// a GET; for a form POST, the GET that shows the page again, with the interaction the form
/// named (read from the body, which is then put back for the handler). `None` when no GET
/// shows the page again.
async fn return_target(request: Request) -> (Request, Option<String>) {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET {
        let here = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned());
        return (request, here.filter(|h| h.len() <= MAX_RETURN_LEN));
    }
    let Some((_, get_path)) = POST_RETURNS.iter().find(|(post, _)| *post == path) else {
        return (request, None);
    };
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if request.method() != Method::POST || !is_form {
        return (request, None);
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::http::MAX_BODY_BYTES).await {
        Ok(b) => b,
        // Too large: the handler's own extractor answers 413 for an empty body of the
        // same request; nothing to show a switcher on.
        Err(_) => return (Request::from_parts(parts, Body::empty()), None),
    };
    let interaction = Params::parse(&bytes)
        .ok()
        .and_then(|p| p.get("interaction").map(str::to_owned))
        .filter(|i| !i.is_empty());
    let here = match interaction {
        Some(i) => format!(
            "{get_path}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("interaction", &i)
                .finish()
        ),
        None => (*get_path).to_owned(),
    };
    (
        Request::from_parts(parts, Body::from(bytes)),
        Some(here).filter(|h| h.len() <= MAX_RETURN_LEN),
    )
}

/// The longest URL the switcher returns to (longer ones get no switcher).
const MAX_RETURN_LEN: usize = 2048;

/// `GET /language?lang=de&return=/login?interaction=…`: remembers the language in a cookie
/// and goes back to the page. `return` must be a path on this server: anything that a
/// browser could read as another origin (`//host`, `/\host`, a scheme) is refused, so the
/// switcher cannot be used as an open redirect.
pub async fn switch(
    State(app): State<App>,
    jar: CookieJar,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let t = text::for_locales(None);
    let Some(lang) = params.get("lang").and_then(text::for_tag) else {
        return super::error_page(
            t,
            &crate::protocol::OAuthError::invalid_request("unknown language"),
        );
    };
    let target = params.get("return").unwrap_or(paths::ACCOUNT);
    if !is_local_path(target) {
        return super::error_page(
            t,
            &crate::protocol::OAuthError::invalid_request(
                "the return address is not a page of this server",
            ),
        );
    }
    let mut cookie = Cookie::new(language_cookie_name(&app.config), lang.lang);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(app.config.issuer_is_https);
    cookie.set_max_age(cookie::time::Duration::days(365));
    let mut response = (jar.add(cookie), Redirect::to(target)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A path of this server: starts with exactly one `/`, no backslash, no control
/// characters or spaces, at most `MAX_RETURN_LEN` bytes.
fn is_local_path(target: &str) -> bool {
    target.len() <= MAX_RETURN_LEN
        && target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && target.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests;
