use super::*;
use crate::config::brand::RawBrand;

fn brand(primary: Option<&str>, background: Option<&str>, theme: &str) -> Brand {
    Brand::validate(
        RawBrand {
            primary_color: primary.map(str::to_owned),
            background_color: background.map(str::to_owned),
            theme: Some(theme.to_owned()),
            ..RawBrand::default()
        },
        "id.example.com",
    )
    .unwrap()
}

/// Whatever colours the operator picks, every text colour reaches WCAG AA contrast (4.5:1)
/// with the surface it is shown on, in both themes.
#[test]
fn every_text_colour_reads_on_its_surface_whatever_the_brand() {
    let colours = [
        None,
        Some("#ffffff"),
        Some("#000000"),
        Some("#ffeb3b"),
        Some("#777777"),
        Some("#767676"),
        Some("#2451c7"),
        Some("#00ff00"),
        Some("#e91e63"),
        Some("#1a1f29"),
    ];
    for primary in colours {
        for background in colours {
            let b = brand(primary, background, "auto");
            for p in [Palette::light(&b), Palette::dark(&b)] {
                let pairs = [
                    ("text on card", p.text, p.card),
                    ("muted on card", p.muted, p.card),
                    ("link on card", p.link, p.card),
                    ("button text", p.on_primary, p.primary),
                    ("brand name on page", p.on_page, p.page),
                    ("error text", p.error_text, p.error_bg),
                    ("text on code background", p.text, p.code_bg),
                ];
                for (what, fg, bg) in pairs {
                    assert!(
                        fg.contrast(bg) >= 4.5,
                        "{what}: {fg} on {bg} is {:.2} ({primary:?}, {background:?})",
                        fg.contrast(bg)
                    );
                }
                // Field borders and focus rings are user-interface components (1.4.11).
                assert!(p.border.contrast(p.card) >= 3.0, "border {}", p.border);
            }
        }
    }
}

#[test]
fn the_stylesheet_follows_the_theme_and_holds_only_hex_colours() {
    let auto = stylesheet(&brand(Some("rgb(10, 20, 30)"), None, "auto"));
    assert!(
        auto.contains("@media (prefers-color-scheme: dark)"),
        "{auto}"
    );
    assert!(auto.contains("--lk-primary: #0a141e;"), "{auto}");
    let dark = stylesheet(&brand(None, None, "dark"));
    assert!(!dark.contains("@media"), "{dark}");
    assert!(dark.contains("color-scheme: dark;"), "{dark}");
    let light = stylesheet(&brand(None, None, "light"));
    assert!(light.contains("color-scheme: light;") && !light.contains("@media"));
    // Every value is a #rrggbb colour: nothing the operator typed reaches the file.
    for line in auto.lines().filter(|l| l.trim_start().starts_with("--lk-")) {
        let value = line.split(':').nth(1).unwrap().trim().trim_end_matches(';');
        assert!(
            value.len() == 7 && value.starts_with('#'),
            "{line} is not a hex colour"
        );
    }
}

#[test]
fn the_stylesheet_name_changes_with_its_content() {
    let a = BrandAssets::new(&brand(Some("#123456"), None, "auto"));
    let b = BrandAssets::new(&brand(Some("#123457"), None, "auto"));
    assert_ne!(a.css_path, b.css_path);
    assert!(a.css_path.starts_with("/static/brand.") && a.css_path.ends_with(".css"));
}

#[test]
fn only_paths_of_this_server_are_return_targets() {
    let cases = [
        ("/login?interaction=abc", true),
        ("/account", true),
        ("/", true),
        ("//evil.example/", false),
        ("/\\evil.example/", false),
        ("https://evil.example/", false),
        ("evil.example", false),
        ("", false),
        ("/login\r\nSet-Cookie: x=y", false),
        ("/a b", false),
        ("/ä", false),
    ];
    for (target, ok) in cases {
        assert_eq!(is_local_path(target), ok, "{target:?}");
    }
    assert!(!is_local_path(&format!("/{}", "a".repeat(MAX_RETURN_LEN))));
}

#[test]
fn accept_language_picks_the_best_supported_language() {
    let check = |header: &str, expected: Option<&str>| {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(header).unwrap(),
        );
        assert_eq!(
            accept_language(&headers).map(|t| t.lang),
            expected,
            "{header}"
        );
    };
    check("de-DE,de;q=0.9,en;q=0.8", Some("de"));
    check("fr-FR,fr;q=0.9,en;q=0.5,de;q=0.7", Some("de"));
    check("en-US,en;q=0.9", Some("en"));
    check("fr", None);
    check("de;q=0, en;q=0.1", Some("en"));
    check("*", None);
}

#[test]
fn outside_a_request_pages_get_an_unbranded_frame() {
    let chrome = current();
    assert_eq!(chrome.brand_name, "Latchkey");
    assert!(!chrome.has_css && !chrome.has_languages);
    assert!(chosen_language().is_none());
}
