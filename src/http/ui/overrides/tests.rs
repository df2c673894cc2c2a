use std::path::Path;

use super::*;

fn load(files: &[(&str, &str)]) -> Result<Overrides, OverrideError> {
    Overrides::from_sources(
        files
            .iter()
            .map(|(name, source)| (*name, Path::new(*name), *source)),
    )
}

const LOGIN: &str = r#"{% extends "base.html" %}
{% block title %}{{ t.login_title }}{% endblock %}
{% block content %}<h1>Welcome to {{ chrome.brand_name }}</h1>
<form method="post" action="{{ action }}"><input type="hidden" name="interaction" value="{{ interaction }}">
{% if error %}<p id="login-error">{{ error }}</p>{% endif %}<p>{{ client_name }}</p></form>{% endblock %}"#;

#[test]
fn an_override_extending_the_built_in_frame_renders() {
    let overrides = load(&[("login.html", LOGIN)]).unwrap();
    assert!(overrides.overrides("login.html"));
    assert!(!overrides.overrides("consent.html"));
    let sample = all_samples(&text::DE)
        .into_iter()
        .find(|s| s.template == "login.html")
        .unwrap();
    let html = overrides
        .render_value("login.html", sample.context, &sample_chrome())
        .unwrap();
    assert!(html.contains("Welcome to Example"), "{html}");
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    // minijinja escapes `/` in values too (`&#x2f;`), which browsers read back as `/`.
    assert!(html.contains("brand.0000000000000000.css"), "{html}");
}

#[test]
fn a_broken_override_is_refused_with_one_line_naming_the_file() {
    let cases = [
        // A syntax error.
        ("login.html", "{% if error %}unclosed"),
        // A variable the page does not have.
        ("login.html", "{{ nonexistent }}"),
        ("consent.html", "{{ t.no_such_text }}"),
        // A variable only reached in a branch some sample takes (an error is shown).
        ("login.html", "{% if error %}{{ eror }}{% endif %}"),
        // A frame that uses something pages do not have.
        ("base.html", "{{ chrome.brand }}"),
    ];
    for (name, source) in cases {
        let err = load(&[(name, source)])
            .err()
            .unwrap_or_else(|| panic!("{source} loaded"));
        let line = err.to_string();
        assert!(line.contains(name), "{line}");
        assert!(line.starts_with("LATCHKEY_TEMPLATES_DIR: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn a_file_that_is_no_template_is_refused() {
    let dir = std::env::temp_dir().join(format!("latchkey-overrides-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lgoin.html"), "x").unwrap();
    let err = Overrides::load(&dir).err().unwrap().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("lgoin.html") && err.contains("is not a template"),
        "{err}"
    );
}

#[test]
fn overrides_escape_what_they_show() {
    let overrides = load(&[("error.html", "<p>{{ message }}</p>")]).unwrap();
    let html = overrides
        .render_value(
            "error.html",
            Value::from_serialize(&crate::http::ui::ErrorPage {
                t: &text::EN,
                message: "<script>alert(1)</script>",
                code: None,
            }),
            &sample_chrome(),
        )
        .unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

/// Every template Latchkey renders has samples, and every page with samples is listed (a
/// new page that forgets either is caught here).
#[test]
fn every_template_has_samples() {
    let samples = all_samples(&text::EN);
    for name in TEMPLATES.iter().filter(|n| **n != "base.html") {
        assert!(
            samples.iter().any(|s| s.template == *name),
            "{name} has no samples"
        );
    }
    for s in &samples {
        assert!(
            TEMPLATES.contains(&s.template),
            "{} is not listed",
            s.template
        );
    }
}

/// Every built-in page, rendered through the built-in frame in minijinja, gets the frame's
/// variables: the frame is written in the syntax both engines share.
#[test]
fn the_built_in_frame_renders_in_minijinja() {
    let overrides = load(&[(
        "base.html",
        &BUILT_IN_BASE.replacen(ASKAMA_ONLY_LINE, "", 1),
    )])
    .unwrap();
    for s in all_samples(&text::EN) {
        let html = overrides
            .render_value("base.html", s.context, &sample_chrome())
            .unwrap();
        assert!(html.contains("Deutsch"), "{html}");
    }
    assert!(BUILT_IN_BASE.starts_with(ASKAMA_ONLY_LINE));
}
