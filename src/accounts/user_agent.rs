//! The device a session was started on, as the account page lists it: the browser family and
//! operating system named by a `User-Agent` header, such as `Firefox, Linux`. Only this
//! summary is stored, never the header, so what a session keeps of its browser is short,
//! bounded and says no more than a person needs to recognise their own device.
//!
//! This is recognition, not parsing: a few well-known tokens, looked for in an order that
//! handles the way browsers name each other (Edge and Opera also say `Chrome/`, Chrome also
//! says `Safari/`, an iPad says `like Mac OS X`). What it does not recognise is left out; the
//! summary is a hint to the user, never a security decision.

/// How much of the header is looked at; real ones are a few hundred bytes.
const MAX_SCANNED: usize = 512;
/// Longest product name taken from an unrecognised client (`curl/8.4` gives `curl`).
const MAX_PRODUCT: usize = 32;

/// Browser families, by the token that names them, most specific first.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
];

/// Operating systems, by the token that names them, most specific first.
const SYSTEMS: &[(&str, &str)] = &[
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
];

/// The summary of a `User-Agent` header: `browser, system`, either alone, or "" when
/// nothing is recognised.
pub fn summarise(user_agent: &str) -> String {
    let scanned = match user_agent.char_indices().nth(MAX_SCANNED) {
        Some((end, _)) => &user_agent[..end],
        None => user_agent,
    };
    let first = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(token, _)| scanned.contains(token))
            .map(|(_, name)| *name)
    };
    let browser = first(BROWSERS)
        .map(str::to_owned)
        .or_else(|| product(scanned));
    match (browser, first(SYSTEMS)) {
        (Some(b), Some(s)) => format!("{b}, {s}"),
        (Some(b), None) => b,
        (None, Some(s)) => s.to_owned(),
        (None, None) => String::new(),
    }
}

/// The product name a non-browser client leads with (`curl/8.4.0`, `python-requests/2.31`),
/// when it is a plain short name; browsers all lead with `Mozilla/`, which names nothing.
fn product(scanned: &str) -> Option<String> {
    let name = scanned.split(['/', ' ']).next()?;
    let plain = !name.is_empty()
        && name.len() <= MAX_PRODUCT
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (plain && name != "Mozilla").then(|| name.to_owned())
}

#[cfg(test)]
mod tests;
