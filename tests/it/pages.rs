//! The pages' frame: branding from configuration (product name, logo, colours, theme) under a
//! strict CSP, the language switcher, the show-password toggle, errors tied to their fields,
//! and template overrides checked at start.

use crate::both_backends;
use crate::helpers::{
    Backend, Browser, PASSWORD, Step, hidden_field, settings, spawn_app, spawn_app_with,
    spawn_app_with_alice, spawn_app_with_alice_and,
};

both_backends!(
    every_page_names_the_product_and_links_the_brand_stylesheet,
    the_product_name_defaults_to_the_issuers_host,
    a_logo_url_is_shown_and_only_its_origin_is_allowed,
    a_logo_file_is_served_from_static,
    the_theme_setting_reaches_the_stylesheet,
    the_language_switcher_keeps_the_interaction,
    a_failed_login_offers_the_switcher_back_to_the_same_interaction,
    the_language_switcher_is_no_open_redirect,
    accept_language_chooses_when_the_client_did_not,
    credential_fields_autocomplete_and_errors_sit_next_to_their_field,
    a_template_override_replaces_the_built_in_page,
    a_broken_template_override_stops_the_start,
);

/// The brand stylesheet a page links, fetched: (path, body, cache-control).
async fn brand_stylesheet(browser: &Browser<'_>, page: &Step) -> (String, String, String) {
    let start = page
        .body
        .find("href=\"/static/brand.")
        .unwrap_or_else(|| panic!("no brand stylesheet: {}", page.body))
        + "href=\"".len();
    let end = start + page.body[start..].find('"').unwrap();
    let path = page.body[start..end].to_owned();
    let css = browser.get(&path).await;
    assert_eq!(css.status, 200, "{path}");
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    let cache = css.headers["cache-control"].to_str().unwrap().to_owned();
    (path, css.body, cache)
}

/// The CSP a page was sent with: strict, whatever the branding.
fn strict_csp(page: &Step) -> String {
    let csp = page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("style-src 'self';")
            && csp.contains("script-src 'self';")
            && !csp.contains("unsafe-inline")
            && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(!page.body.contains("style="), "no inline style");
    assert!(!page.body.contains("<style"), "no inline style sheet");
    csp
}

/// The `href` of the switcher's link to `lang`, unescaped.
fn switch_link(body: &str, lang: &str) -> Option<String> {
    let marker = format!("\" lang=\"{lang}\" hreflang=\"{lang}\"");
    let end = body.find(&marker)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(
        body[start..end]
            .replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&#x2f;", "/"),
    )
}

async fn every_page_names_the_product_and_links_the_brand_stylesheet(backend: Backend) {
    let (app, client) = spawn_app_with_alice_and(
        backend,
        &[
            ("LATCHKEY_BRAND_NAME", "Acme <ID>"),
            ("LATCHKEY_BRAND_PRIMARY_COLOR", "#ffeb3b"),
        ],
    )
    .await;
    let browser = Browser::new(&app);
    let login = browser
        .get(&browser.authorize_location(&client, "openid").await)
        .await;
    let after_login = browser
        .login_form_post(&login.body, "alice", PASSWORD)
        .await;
    let consent = browser.get(after_login.location.as_deref().unwrap()).await;
    let account = browser.get("/account").await;
    let device = browser.get("/device").await;
    let logout = browser.get("/logout").await;
    let error = browser.get("/authorize").await;
    for (name, page) in [
        ("login", &login),
        ("consent", &consent),
        ("account", &account),
        ("device", &device),
        ("logout", &logout),
        ("error", &error),
    ] {
        // Escaped like everything else the configuration puts on a page.
        assert!(
            page.body.contains("· Acme &lt;ID&gt;</title>")
                || page.body.contains("· Acme &#60;ID&#62;</title>"),
            "{name}: {}",
            page.body
        );
        assert!(
            page.body.contains("<span class=\"brand-name\">Acme &"),
            "{name}: {}",
            page.body
        );
        assert!(!page.body.contains("Acme <ID>"), "{name}");
        strict_csp(page);
    }
    let (path, css, cache) = brand_stylesheet(&browser, &login).await;
    assert!(cache.contains("immutable"), "{cache}");
    // The configured colour is the button colour; the text on it is dark (yellow is light),
    // and links use a darkened yellow that reads on white.
    let (light, dark) = css
        .split_once("@media (prefers-color-scheme: dark)")
        .unwrap();
    assert!(light.contains("--lk-primary: #ffeb3b;"), "{css}");
    assert!(light.contains("--lk-on-primary: #11141c;"), "{css}");
    assert!(!light.contains("--lk-link: #ffeb3b;"), "{css}");
    // On the dark card the yellow reads as it is.
    assert!(dark.contains("--lk-link: #ffeb3b;"), "{css}");
    // Another name is not served (the name carries the content's hash).
    let other = browser.get("/static/brand.0000000000000000.css").await;
    assert_eq!(other.status, 404, "{path}");
}

async fn the_product_name_defaults_to_the_issuers_host(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new(&app);
    let page = browser.get("/device").await;
    assert!(
        page.body.contains("· 127.0.0.1</title>")
            && page
                .body
                .contains("<span class=\"brand-name\">127.0.0.1</span>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img"), "no logo configured");
    let csp = strict_csp(&page);
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    let (_, css, _) = brand_stylesheet(&browser, &page).await;
    assert!(css.contains("@media (prefers-color-scheme: dark)"), "{css}");
    assert!(css.contains("--lk-primary: #2451c7;"), "{css}");
}

async fn a_logo_url_is_shown_and_only_its_origin_is_allowed(backend: Backend) {
    let app = spawn_app_with(
        backend,
        settings(&[(
            "LATCHKEY_BRAND_LOGO_URL",
            "https://cdn.example.com/brand/logo.svg?v=2",
        )]),
    )
    .await;
    let page = Browser::new(&app).get("/device").await;
    assert!(
        page.body.contains(
            "<img class=\"logo\" src=\"https://cdn.example.com/brand/logo.svg?v=2\" alt=\"\">"
        ),
        "{}",
        page.body
    );
    let csp = strict_csp(&page);
    assert!(
        csp.contains("img-src 'self' data: https://cdn.example.com;"),
        "{csp}"
    );
    // Only images: scripts, styles and connections stay on our own origin.
    assert_eq!(csp.matches("cdn.example.com").count(), 1, "{csp}");
}

async fn a_logo_file_is_served_from_static(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("latchkey-logo-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("logo.svg");
    let logo = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>"#;
    std::fs::write(&file, logo).unwrap();
    let app = spawn_app_with(
        backend,
        settings(&[("LATCHKEY_BRAND_LOGO_FILE", file.to_str().unwrap())]),
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let browser = Browser::new(&app);
    let page = browser.get("/device").await;
    let start = page.body.find("src=\"/static/logo.").expect("logo") + "src=\"".len();
    let end = start + page.body[start..].find('"').unwrap();
    let path = &page.body[start..end];
    assert!(path.ends_with(".svg"), "{path}");
    let served = browser.get(path).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "image/svg+xml");
    assert_eq!(served.body.as_bytes(), logo);
    // An SVG opened on its own runs no script: the strict CSP covers it too.
    assert!(
        served.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self';")
    );
    let csp = strict_csp(&page);
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
}

/// A name for a scratch directory no other test uses.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn the_theme_setting_reaches_the_stylesheet(backend: Backend) {
    let app = spawn_app_with(backend, settings(&[("LATCHKEY_BRAND_THEME", "dark")])).await;
    let browser = Browser::new(&app);
    let page = browser.get("/device").await;
    let (_, css, _) = brand_stylesheet(&browser, &page).await;
    assert!(css.contains("color-scheme: dark;"), "{css}");
    assert!(!css.contains("@media"), "forced, not by preference: {css}");
}

async fn the_language_switcher_keeps_the_interaction(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser
        .authorize_with(&client, "openid", &[("state", "s-1")])
        .await
        .location
        .unwrap();
    let english = browser.get(&location).await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(
        english
            .body
            .contains("<span lang=\"en\" aria-current=\"true\">English</span>")
    );
    let to_german = switch_link(&english.body, "de").expect("a link to German");
    let switched = browser.get(&to_german).await;
    assert_eq!(switched.status, 303, "{}", switched.body);
    // Back to the same page of the same interaction.
    assert_eq!(switched.location.as_deref(), Some(location.as_str()));
    assert_eq!(browser.cookie("latchkey_lang").as_deref(), Some("de"));
    let german = browser.get(&location).await;
    assert!(german.body.contains("<html lang=\"de\">") && german.body.contains("Anmelden"));
    // The choice holds for the rest of the flow, and the flow completes.
    let after_login = browser.login(&location, "alice", PASSWORD).await;
    let consent_url = after_login.location.unwrap();
    let consent = browser.get(&consent_url).await;
    assert!(
        consent.body.contains("Zugriff erlauben?"),
        "{}",
        consent.body
    );
    let (_, answer) = browser.consent(&consent_url, "allow").await;
    let redirect = answer.location.unwrap();
    assert!(
        redirect.starts_with(&client.redirect_uri) && redirect.contains("code="),
        "{redirect}"
    );
    // A choice outranks the client's ui_locales.
    let location = browser
        .authorize_with(
            &client,
            "openid",
            &[("prompt", "login"), ("ui_locales", "en")],
        )
        .await
        .location
        .unwrap();
    let page = browser.get(&location).await;
    assert!(page.body.contains("<html lang=\"de\">"), "{}", page.body);
}

async fn a_failed_login_offers_the_switcher_back_to_the_same_interaction(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let failed = browser.login(&location, "alice", "wrong password").await;
    assert_eq!(failed.status, 401, "{}", failed.body);
    let interaction = hidden_field(&failed.body, "interaction").unwrap();
    let link = switch_link(&failed.body, "de").expect("a switcher on the re-shown form");
    let back = browser.get(&link).await;
    assert_eq!(
        back.location.as_deref(),
        Some(format!("/login?interaction={interaction}").as_str())
    );
    let page = browser.get(back.location.as_deref().unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<html lang=\"de\">"));
}

async fn the_language_switcher_is_no_open_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new(&app);
    for query in [
        "lang=de&return=%2F%2Fevil.example%2F",
        "lang=de&return=%2F%5Cevil.example%2F",
        "lang=de&return=https%3A%2F%2Fevil.example%2F",
        "lang=de&return=evil.example",
        "lang=de&return=%2Fa%0D%0ASet-Cookie%3A%20x%3Dy",
        "lang=fr&return=%2Faccount",
        "return=%2Faccount",
    ] {
        let step = browser.get(&format!("/language?{query}")).await;
        assert_eq!(step.status, 400, "{query}: {}", step.body);
        assert!(step.location.is_none(), "{query}");
        assert!(step.headers.get("set-cookie").is_none(), "{query}");
    }
    let ok = browser.get("/language?lang=de&return=%2Fdevice").await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location.as_deref(), Some("/device"));
    let cookie = ok.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        browser
            .get("/device")
            .await
            .body
            .contains("Gerät verbinden")
    );
}

async fn accept_language_chooses_when_the_client_did_not(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let page = browser
        .http
        .get(app.url("/device"))
        .header("accept-language", "fr-FR,de;q=0.8,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    // The client's ui_locales come first.
    let location = browser
        .authorize_with(&client, "openid", &[("ui_locales", "en")])
        .await
        .location
        .unwrap();
    let page = browser
        .http
        .get(app.url(&location))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"en\">"), "{page}");
}

async fn credential_fields_autocomplete_and_errors_sit_next_to_their_field(backend: Backend) {
    let (app, client) = spawn_app_with_alice(backend).await;
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    assert!(
        page.body.contains("autocomplete=\"username\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("autocomplete=\"current-password\""));
    assert!(page.body.contains("data-reveal=\"Show password\""));
    assert!(
        page.body
            .contains("<script src=\"/static/show-password.js\" defer></script>")
    );
    // No error yet: nothing is marked invalid.
    assert!(!page.body.contains("aria-invalid"));
    let failed = browser.login(&location, "alice", "wrong password").await;
    let body = &failed.body;
    assert_eq!(
        body.matches("aria-invalid=\"true\" aria-describedby=\"login-error\"")
            .count(),
        2,
        "{body}"
    );
    let message = body.find("id=\"login-error\"").expect("the message");
    let field = body.find("id=\"password\"").unwrap();
    let button = body.find("type=\"submit\"").unwrap();
    assert!(
        field < message && message < button,
        "next to the field: {body}"
    );
    let script = browser.get("/static/show-password.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.body.contains("aria-pressed"));
}

/// A login page override with the variables the built-in page gets.
const LOGIN_OVERRIDE: &str = r#"{% extends "base.html" %}
{% block title %}{{ t.login_title }}{% endblock %}
{% block content %}<h1 id="custom">Welcome to {{ chrome.brand_name }}, {{ client_name }}</h1>
{% if error %}<p id="login-error">{{ error }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="interaction" value="{{ interaction }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input name="username" value="{{ username }}"><input name="password" type="password">
<button type="submit">{{ t.sign_in }}</button></form>{% endblock %}"#;

async fn a_template_override_replaces_the_built_in_page(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("latchkey-templates-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("login.html"), LOGIN_OVERRIDE).unwrap();
    let (app, client) = spawn_app_with_alice_and(
        backend,
        &[
            ("LATCHKEY_TEMPLATES_DIR", dir.to_str().unwrap()),
            ("LATCHKEY_BRAND_NAME", "Acme"),
        ],
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let browser = Browser::new(&app);
    let location = browser.authorize_location(&client, "openid").await;
    let page = browser.get(&location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<h1 id=\"custom\">Welcome to Acme, Test Web App</h1>"),
        "{}",
        page.body
    );
    // The built-in frame around it: stylesheet, product name, switcher.
    assert!(page.body.contains("brand."), "{}", page.body);
    assert!(switch_link(&page.body, "de").is_some(), "{}", page.body);
    strict_csp(&page);
    // Its form still works: the flow completes through the overridden page.
    let failed = browser.login_form_post(&page.body, "alice", "wrong").await;
    assert!(
        failed.body.contains("<p id=\"login-error\">"),
        "{}",
        failed.body
    );
    let done = browser
        .login_form_post(&failed.body, "alice", PASSWORD)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    // Pages that are not overridden stay built in.
    let consent = browser.get(done.location.as_deref().unwrap()).await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
}

async fn a_broken_template_override_stops_the_start(backend: Backend) {
    let database = crate::helpers::fresh_database(backend).await;
    for (file, source) in [
        ("login.html", "{% if error %}never closed"),
        ("consent.html", "{{ scopes_list }}"),
        ("logon.html", "a typo in the name"),
    ] {
        let dir = std::env::temp_dir().join(format!("latchkey-templates-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), source).unwrap();
        let env: Vec<(String, String)> = [
            ("LATCHKEY_ISSUER", "http://127.0.0.1:1"),
            ("LATCHKEY_DATABASE_URL", database.as_str()),
            ("LATCHKEY_MASTER_KEY", crate::helpers::TEST_MASTER_KEY),
            ("LATCHKEY_TEMPLATES_DIR", dir.to_str().unwrap()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let config =
            latchkey::config::Config::load_from(Some(std::path::Path::new("/dev/null")), &env)
                .unwrap();
        let started = latchkey::app::App::start(
            config,
            std::sync::Arc::new(latchkey::clock::OffsetClock::default()),
            true,
        )
        .await;
        std::fs::remove_dir_all(&dir).unwrap();
        let line = started.err().expect("the start fails").to_string();
        assert!(line.starts_with("LATCHKEY_TEMPLATES_DIR: "), "{line}");
        assert!(line.contains(file), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
