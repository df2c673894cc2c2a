//! Branding settings (`LATCHKEY_BRAND_*`) and where page template overrides live
//! (`LATCHKEY_TEMPLATES_DIR`), validated into `Brand`. What the pages make of them (the
//! generated stylesheet, the served logo) is `http::ui::chrome`'s business.
//!
//! Colours are parsed into numbers and written back out as `#rrggbb` by the stylesheet
//! generator, so nothing an operator types ever reaches CSS as text: a value that is not a
//! colour stops the program at start, and a value that is one cannot inject a rule.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The largest logo file served from `/static` (the page must stay light on a phone).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// The longest product name: it is a heading on a phone screen, not a paragraph.
pub const MAX_NAME_CHARS: usize = 64;

/// How the built-in pages look, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// The product name on every page and in every title; the issuer's host unless set.
    pub name: String,
    pub logo: Option<Logo>,
    /// Buttons, links and focus rings; Latchkey's blue unless set.
    pub primary_color: Option<Rgb>,
    /// The page behind the card; a light grey unless set.
    pub background_color: Option<Rgb>,
    pub theme: Theme,
}

/// Where the logo comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logo {
    /// An https URL (or an http one on a loopback host), shown as is; its origin is added to
    /// the CSP's `img-src`.
    Url(url::Url),
    /// A file read at start and served from `/static` under a content-hashed name.
    File {
        path: PathBuf,
        bytes: Vec<u8>,
        content_type: &'static str,
        extension: &'static str,
    },
}

/// Light, dark, or whatever the visitor's system prefers (`prefers-color-scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Auto,
    Light,
    Dark,
}

/// An sRGB colour, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl fmt::Display for Rgb {
    /// Always `#rrggbb`: the only form colours reach a stylesheet in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

impl Rgb {
    /// A CSS colour in hex (`#rgb`, `#rrggbb`) or functional notation with whole numbers
    /// (`rgb(36, 81, 199)`, `rgb(36 81 199)`). Transparency is refused: text contrast
    /// cannot be promised over an unknown backdrop.
    pub fn parse(input: &str) -> Option<Rgb> {
        let s = input.trim();
        if let Some(hex) = s.strip_prefix('#') {
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
            let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
            return match hex.len() {
                3 => Some(Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
                6 => Some(Rgb(pair(0)?, pair(2)?, pair(4)?)),
                _ => None,
            };
        }
        let lower = s.to_ascii_lowercase();
        let inner = lower.strip_prefix("rgb(")?.strip_suffix(')')?;
        let parts: Vec<&str> = if inner.contains(',') {
            inner.split(',').map(str::trim).collect()
        } else {
            inner.split_ascii_whitespace().collect()
        };
        match parts.as_slice() {
            [r, g, b] => Some(Rgb(channel(r)?, channel(g)?, channel(b)?)),
            _ => None,
        }
    }

    /// Relative luminance (WCAG 2.2, "relative luminance").
    pub fn luminance(self) -> f64 {
        fn linear(c: u8) -> f64 {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    /// Contrast ratio with another colour, 1 to 21 (WCAG 2.2, "contrast ratio").
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (light, dark) = if a > b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }

    /// This colour moved `fraction` (0 to 1) of the way towards `target`.
    pub fn mix(self, target: Rgb, fraction: f64) -> Rgb {
        let step = |from: u8, to: u8| {
            let v = f64::from(from) + (f64::from(to) - f64::from(from)) * fraction;
            v.round().clamp(0.0, 255.0) as u8
        };
        Rgb(
            step(self.0, target.0),
            step(self.1, target.1),
            step(self.2, target.2),
        )
    }
}

/// One channel of `rgb()`: a whole number from 0 to 255.
fn channel(s: &str) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The branding settings as given, before validation.
#[derive(Debug, Default)]
pub struct RawBrand {
    pub name: Option<String>,
    pub logo_url: Option<String>,
    pub logo_file: Option<String>,
    pub primary_color: Option<String>,
    pub background_color: Option<String>,
    pub theme: Option<String>,
}

impl Brand {
    /// Validates the settings; `issuer_host` is the default name.
    pub fn validate(raw: RawBrand, issuer_host: &str) -> Result<Brand, ConfigError> {
        let name = match raw.name.as_deref().map(str::trim) {
            None | Some("") => issuer_host.to_owned(),
            Some(n) if n.chars().count() > MAX_NAME_CHARS => {
                return Err(ConfigError::new(
                    "brand_name",
                    format!("must be at most {MAX_NAME_CHARS} characters"),
                ));
            }
            Some(n) if n.chars().any(char::is_control) => {
                return Err(ConfigError::new(
                    "brand_name",
                    "must not contain control characters",
                ));
            }
            Some(n) => n.to_owned(),
        };
        let logo = match (raw.logo_url, raw.logo_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "brand_logo_file",
                    "set either LATCHKEY_BRAND_LOGO_URL or LATCHKEY_BRAND_LOGO_FILE, not both",
                ));
            }
            (Some(u), None) if u.trim().is_empty() => None,
            (Some(u), None) => Some(Logo::Url(logo_url(u.trim())?)),
            (None, Some(f)) if f.trim().is_empty() => None,
            (None, Some(f)) => Some(logo_file(Path::new(f.trim()))?),
            (None, None) => None,
        };
        let colour = |key: &str, value: Option<String>| -> Result<Option<Rgb>, ConfigError> {
            match value {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => Rgb::parse(&v).map(Some).ok_or_else(|| {
                    ConfigError::new(
                        key,
                        format!("`{v}` is not a colour like #2451c7 or rgb(36, 81, 199)"),
                    )
                }),
            }
        };
        let theme = match raw.theme.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => Theme::Auto,
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            Some(other) => {
                return Err(ConfigError::new(
                    "brand_theme",
                    format!("`{other}` is not auto, light or dark"),
                ));
            }
        };
        Ok(Brand {
            name,
            logo,
            primary_color: colour("brand_primary_color", raw.primary_color)?,
            background_color: colour("brand_background_color", raw.background_color)?,
            theme,
        })
    }
}

/// A logo URL: https, or http on a loopback host (a local test), without credentials.
fn logo_url(raw: &str) -> Result<url::Url, ConfigError> {
    let err = |reason: &str| ConfigError::new("brand_logo_url", reason.to_owned());
    let url = url::Url::parse(raw).map_err(|_| err("is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not carry credentials"));
    }
    match url.scheme() {
        "https" => {}
        "http" if super::is_loopback_host(&url) => {}
        _ => return Err(err("must be an https URL")),
    }
    if url.host().is_none() {
        return Err(err("has no host"));
    }
    Ok(url)
}

/// A logo file: PNG, JPEG, WebP or SVG by its extension, at most `MAX_LOGO_BYTES`.
fn logo_file(path: &Path) -> Result<Logo, ConfigError> {
    let key = "brand_logo_file";
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (content_type, extension) = match extension.as_str() {
        "png" => ("image/png", "png"),
        "jpg" | "jpeg" => ("image/jpeg", "jpg"),
        "webp" => ("image/webp", "webp"),
        "svg" => ("image/svg+xml", "svg"),
        _ => {
            return Err(ConfigError::new(
                key,
                format!("{} is not a .png, .jpg, .webp or .svg file", path.display()),
            ));
        }
    };
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ConfigError::new(
            key,
            format!(
                "{} is larger than {} KiB",
                path.display(),
                MAX_LOGO_BYTES / 1024
            ),
        ));
    }
    Ok(Logo::File {
        path: path.to_owned(),
        bytes,
        content_type,
        extension,
    })
}

/// `LATCHKEY_TEMPLATES_DIR`: an existing directory, or nothing.
pub fn templates_dir(raw: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    match raw {
        None => Ok(None),
        Some(d) if d.trim().is_empty() => Ok(None),
        Some(d) => {
            let path = PathBuf::from(d.trim());
            if path.is_dir() {
                Ok(Some(path))
            } else {
                Err(ConfigError::new(
                    "templates_dir",
                    format!("{} is not a directory", path.display()),
                ))
            }
        }
    }
}
