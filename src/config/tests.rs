use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from(Some(Path::new("/dev/null")), &env(pairs))
}

fn check_error(pairs: &[(&str, &str)], variable: &str) {
    let err = load(pairs)
        .err()
        .unwrap_or_else(|| panic!("{pairs:?} should fail"));
    assert_eq!(err.variable, variable, "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

#[test]
fn defaults_match_the_interface() {
    let c = load(&[]).unwrap();
    assert_eq!(c.issuer, "http://127.0.0.1:8080");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        c.database,
        DatabaseUrl::Sqlite(PathBuf::from("data/latchkey.db"))
    );
    assert!(c.admin_token.is_none());
    assert_eq!(c.access_token_ttl, 3600);
    assert_eq!(c.refresh_token_ttl, 2_592_000);
    assert_eq!(c.code_ttl, 60);
    assert_eq!(c.access_token_alg, SigningAlg::Es256);
    assert!(!c.enable_password_grant);
    assert!(c.tls.is_none());
    assert_eq!(
        c.master_key,
        MasterKeySource::File(PathBuf::from("data/master.key"))
    );
    // "request heads must arrive within 10 s, idle keep-alive connections close after 60 s"
    assert_eq!(c.connections.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.connections.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.connections.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.connections.max_connections, 4096);
    assert_eq!(c.connections.max_connections_per_ip, 256);
    assert_eq!(c.dpop_nonce, DpopNonceMode::Optional);
}

#[test]
fn dpop_nonce_is_optional_or_required() {
    let c = load(&[("LATCHKEY_DPOP_NONCE", "required")]).unwrap();
    assert_eq!(c.dpop_nonce, DpopNonceMode::Required);
    let c = load(&[("LATCHKEY_DPOP_NONCE", "optional")]).unwrap();
    assert_eq!(c.dpop_nonce, DpopNonceMode::Optional);
    check_error(
        &[("LATCHKEY_DPOP_NONCE", "sometimes")],
        "LATCHKEY_DPOP_NONCE",
    );
}

#[test]
fn connection_settings_are_read_in_milliseconds_and_counts() {
    let c = load(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "250"),
        ("LATCHKEY_IDLE_TIMEOUT_MS", "1500"),
        ("LATCHKEY_TLS_HANDSHAKE_TIMEOUT_MS", "3600000"),
        ("LATCHKEY_MAX_CONNECTIONS", "10"),
        ("LATCHKEY_MAX_CONNECTIONS_PER_IP", "1"),
    ])
    .unwrap();
    assert_eq!(
        c.connections,
        ConnectionSettings {
            header_read_timeout: Duration::from_millis(250),
            idle_timeout: Duration::from_millis(1500),
            tls_handshake_timeout: Duration::from_secs(3600),
            max_connections: 10,
            max_connections_per_ip: 1,
        }
    );
}

#[test]
fn environment_overrides_and_parses() {
    let c = load(&[
        ("LATCHKEY_ISSUER", "https://id.example.com/"),
        ("LATCHKEY_ACCESS_TOKEN_TTL", "600"),
        ("LATCHKEY_ACCESS_TOKEN_ALG", "EdDSA"),
        ("LATCHKEY_ENABLE_PASSWORD_GRANT", "true"),
        ("LATCHKEY_ADMIN_TOKEN", "1234567890123456"),
        ("DATABASE_URL", "postgres://u@h/db"),
        (
            "LATCHKEY_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ])
    .unwrap();
    assert_eq!(c.issuer, "https://id.example.com");
    assert!(c.issuer_is_https);
    assert_eq!(c.access_token_ttl, 600);
    assert_eq!(c.access_token_alg, SigningAlg::EdDsa);
    assert!(c.enable_password_grant);
    assert_eq!(c.admin_token.as_deref(), Some("1234567890123456"));
    assert_eq!(
        c.database,
        DatabaseUrl::Postgres("postgres://u@h/db".into())
    );
}

#[test]
fn latchkey_database_url_wins_over_database_url() {
    let c = load(&[
        ("DATABASE_URL", "postgres://a/b"),
        ("LATCHKEY_DATABASE_URL", "sqlite://x.db"),
    ])
    .unwrap();
    assert_eq!(c.database, DatabaseUrl::Sqlite(PathBuf::from("x.db")));
}

#[test]
fn bad_values_name_their_variable() {
    check_error(
        &[("LATCHKEY_ISSUER", "http://id.example.com")],
        "LATCHKEY_ISSUER",
    );
    check_error(&[("LATCHKEY_ISSUER", "not a url")], "LATCHKEY_ISSUER");
    check_error(
        &[("LATCHKEY_ISSUER", "https://id.example.com/?x=1")],
        "LATCHKEY_ISSUER",
    );
    check_error(
        &[("LATCHKEY_ISSUER", "ftp://id.example.com")],
        "LATCHKEY_ISSUER",
    );
    check_error(&[("LATCHKEY_LISTEN", "nowhere")], "LATCHKEY_LISTEN");
    check_error(
        &[("LATCHKEY_ACCESS_TOKEN_TTL", "soon")],
        "LATCHKEY_ACCESS_TOKEN_TTL",
    );
    check_error(
        &[("LATCHKEY_ACCESS_TOKEN_TTL", "-5")],
        "LATCHKEY_ACCESS_TOKEN_TTL",
    );
    check_error(&[("LATCHKEY_CODE_TTL", "0")], "LATCHKEY_CODE_TTL");
    // RFC 6749 §4.1.2: a maximum code lifetime of 10 minutes is RECOMMENDED; we enforce it.
    check_error(&[("LATCHKEY_CODE_TTL", "601")], "LATCHKEY_CODE_TTL");
    assert_eq!(load(&[("LATCHKEY_CODE_TTL", "600")]).unwrap().code_ttl, 600);
    check_error(
        &[("LATCHKEY_ACCESS_TOKEN_ALG", "HS256")],
        "LATCHKEY_ACCESS_TOKEN_ALG",
    );
    check_error(
        &[("LATCHKEY_ENABLE_PASSWORD_GRANT", "maybe")],
        "LATCHKEY_ENABLE_PASSWORD_GRANT",
    );
    check_error(
        &[("LATCHKEY_DATABASE_URL", "mysql://x")],
        "LATCHKEY_DATABASE_URL",
    );
    check_error(
        &[("LATCHKEY_DATABASE_URL", "postgres://x/y")],
        "LATCHKEY_MASTER_KEY",
    );
    check_error(
        &[("LATCHKEY_MASTER_KEY", "not base64!")],
        "LATCHKEY_MASTER_KEY",
    );
    check_error(&[("LATCHKEY_MASTER_KEY", "AAAA")], "LATCHKEY_MASTER_KEY");
    check_error(&[("LATCHKEY_ADMIN_TOKEN", "short")], "LATCHKEY_ADMIN_TOKEN");
    check_error(
        &[("LATCHKEY_TLS_CERT", "/etc/hostname")],
        "LATCHKEY_TLS_KEY",
    );
    check_error(
        &[
            ("LATCHKEY_TLS_CERT", "/nope.pem"),
            ("LATCHKEY_TLS_KEY", "/nope.key"),
        ],
        "LATCHKEY_TLS_CERT",
    );
    for (variable, value) in [
        ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "0"),
        ("LATCHKEY_HEADER_READ_TIMEOUT_MS", "ten"),
        ("LATCHKEY_IDLE_TIMEOUT_MS", "-1"),
        ("LATCHKEY_IDLE_TIMEOUT_MS", "3600001"),
        ("LATCHKEY_TLS_HANDSHAKE_TIMEOUT_MS", "0"),
        ("LATCHKEY_MAX_CONNECTIONS", "0"),
        ("LATCHKEY_MAX_CONNECTIONS", "99999999999"),
        ("LATCHKEY_MAX_CONNECTIONS", "1000001"),
        ("LATCHKEY_MAX_CONNECTIONS_PER_IP", "0"),
    ] {
        check_error(&[(variable, value)], variable);
    }
}

#[test]
fn loopback_issuers_may_use_http() {
    for issuer in [
        "http://localhost:8080",
        "http://127.0.0.1",
        "http://127.1.2.3:9",
        "http://[::1]:8080",
    ] {
        assert!(load(&[("LATCHKEY_ISSUER", issuer)]).is_ok(), "{issuer}");
    }
}

#[test]
fn the_file_is_read_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("latchkey-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latchkey.toml");
    std::fs::write(
        &file,
        "issuer = \"https://file.example\"\naccess_token_ttl = 120\ncode_ttl = 30\n",
    )
    .unwrap();
    let c = Config::load_from(Some(&file), &env(&[("LATCHKEY_CODE_TTL", "45")])).unwrap();
    assert_eq!(c.issuer, "https://file.example");
    assert_eq!(c.access_token_ttl, 120);
    assert_eq!(c.code_ttl, 45);
    std::fs::write(&file, "isuer = \"typo\"\n").unwrap();
    let err = Config::load_from(Some(&file), &[]).err().unwrap();
    assert!(err.to_string().contains("isuer"), "{err}");
    std::fs::write(&file, "access_token_ttl = \"soon\"\n").unwrap();
    let err = Config::load_from(Some(&file), &[]).err().unwrap();
    assert_eq!(err.variable, "LATCHKEY_ACCESS_TOKEN_TTL", "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_key_schedule_defaults_to_90_days_published_a_day_ahead_and_caps_the_window() {
    let c = load(&[]).unwrap();
    assert_eq!(c.key_rotation_interval, 90 * 86_400);
    assert_eq!(c.key_publish_ahead, 86_400);
    let short = load(&[("LATCHKEY_KEY_ROTATION_INTERVAL", "10")]).unwrap();
    assert_eq!(short.key_rotation_interval, 10);
    assert_eq!(short.key_publish_ahead, 5, "capped at half the interval");
    let set = load(&[
        ("LATCHKEY_KEY_ROTATION_INTERVAL", "100"),
        ("LATCHKEY_KEY_PUBLISH_AHEAD", "20"),
    ])
    .unwrap();
    assert_eq!(
        (set.key_rotation_interval, set.key_publish_ahead),
        (100, 20)
    );
    let off = load(&[("LATCHKEY_KEY_ROTATION_INTERVAL", "0")]).unwrap();
    assert_eq!(off.key_rotation_interval, 0);
    check_error(
        &[("LATCHKEY_KEY_ROTATION_INTERVAL", "1")],
        "LATCHKEY_KEY_ROTATION_INTERVAL",
    );
    check_error(
        &[("LATCHKEY_KEY_ROTATION_INTERVAL", "-5")],
        "LATCHKEY_KEY_ROTATION_INTERVAL",
    );
    check_error(
        &[("LATCHKEY_KEY_PUBLISH_AHEAD", "0")],
        "LATCHKEY_KEY_PUBLISH_AHEAD",
    );
}

#[test]
fn the_brand_defaults_to_the_issuers_host() {
    let c = load(&[("LATCHKEY_ISSUER", "https://id.example.com/tenant")]).unwrap();
    assert_eq!(c.brand.name, "id.example.com");
    assert_eq!(c.brand.theme, Theme::Auto);
    assert!(c.brand.logo.is_none() && c.brand.primary_color.is_none());
    assert!(c.templates_dir.is_none());
}

#[test]
fn brand_colours_are_css_colours_only() {
    let colour = |v: &str| {
        load(&[("LATCHKEY_BRAND_PRIMARY_COLOR", v)]).map(|c| c.brand.primary_color.unwrap())
    };
    assert_eq!(colour("#2451c7").unwrap(), Rgb(0x24, 0x51, 0xc7));
    assert_eq!(colour(" #ABC ").unwrap(), Rgb(0xaa, 0xbb, 0xcc));
    assert_eq!(colour("rgb(36, 81, 199)").unwrap(), Rgb(36, 81, 199));
    assert_eq!(colour("RGB(36 81 199)").unwrap(), Rgb(36, 81, 199));
    for bad in [
        "red; } body { display: none",
        "#2451c7; background: url(https://evil.example/)",
        "#12345",
        "#1234567",
        "#12345g",
        "rgb(256, 0, 0)",
        "rgb(-1, 0, 0)",
        "rgb(1, 2)",
        "rgb(1.5, 2, 3)",
        "rgba(0, 0, 0, 0.5)",
        "#ff000080",
        "blue",
        "var(--x)",
    ] {
        check_error(
            &[("LATCHKEY_BRAND_PRIMARY_COLOR", bad)],
            "LATCHKEY_BRAND_PRIMARY_COLOR",
        );
    }
    check_error(
        &[("LATCHKEY_BRAND_BACKGROUND_COLOR", "url(x)")],
        "LATCHKEY_BRAND_BACKGROUND_COLOR",
    );
}

#[test]
fn brand_settings_are_validated() {
    let c = load(&[
        ("LATCHKEY_BRAND_NAME", "  Acme ID "),
        ("LATCHKEY_BRAND_THEME", "dark"),
        (
            "LATCHKEY_BRAND_LOGO_URL",
            "https://cdn.example.com/logo.svg",
        ),
    ])
    .unwrap();
    assert_eq!(c.brand.name, "Acme ID");
    assert_eq!(c.brand.theme, Theme::Dark);
    assert!(matches!(c.brand.logo, Some(Logo::Url(_))));
    check_error(&[("LATCHKEY_BRAND_THEME", "sepia")], "LATCHKEY_BRAND_THEME");
    check_error(
        &[("LATCHKEY_BRAND_NAME", "x".repeat(65).as_str())],
        "LATCHKEY_BRAND_NAME",
    );
    check_error(&[("LATCHKEY_BRAND_NAME", "a\u{7}b")], "LATCHKEY_BRAND_NAME");
    for bad in [
        "http://cdn.example.com/logo.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://user:pw@cdn.example.com/logo.png",
        "/static/logo.png",
    ] {
        check_error(
            &[("LATCHKEY_BRAND_LOGO_URL", bad)],
            "LATCHKEY_BRAND_LOGO_URL",
        );
    }
    check_error(
        &[("LATCHKEY_BRAND_LOGO_FILE", "/nonexistent/logo.png")],
        "LATCHKEY_BRAND_LOGO_FILE",
    );
    check_error(
        &[("LATCHKEY_BRAND_LOGO_FILE", "/etc/passwd")],
        "LATCHKEY_BRAND_LOGO_FILE",
    );
    check_error(
        &[
            ("LATCHKEY_BRAND_LOGO_FILE", "/nonexistent/logo.png"),
            (
                "LATCHKEY_BRAND_LOGO_URL",
                "https://cdn.example.com/logo.svg",
            ),
        ],
        "LATCHKEY_BRAND_LOGO_FILE",
    );
    check_error(
        &[("LATCHKEY_TEMPLATES_DIR", "/nonexistent/templates")],
        "LATCHKEY_TEMPLATES_DIR",
    );
}

#[test]
fn a_logo_file_is_read_at_start() {
    let path = std::env::temp_dir().join(format!("latchkey-logo-{}.png", std::process::id()));
    std::fs::write(&path, b"\x89PNG\r\n\x1a\nfake").unwrap();
    let c = load(&[("LATCHKEY_BRAND_LOGO_FILE", path.to_str().unwrap())]);
    let big = std::env::temp_dir().join(format!("latchkey-logo-{}-big.png", std::process::id()));
    std::fs::write(&big, vec![0u8; brand::MAX_LOGO_BYTES + 1]).unwrap();
    let too_big = load(&[("LATCHKEY_BRAND_LOGO_FILE", big.to_str().unwrap())]);
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&big).unwrap();
    match c.unwrap().brand.logo {
        Some(Logo::File {
            bytes,
            content_type,
            ..
        }) => {
            assert_eq!(bytes, b"\x89PNG\r\n\x1a\nfake");
            assert_eq!(content_type, "image/png");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(too_big.err().unwrap().variable, "LATCHKEY_BRAND_LOGO_FILE");
}

#[test]
fn editable_claims_are_named_standard_claims_none_by_default() {
    assert!(load(&[]).unwrap().account_editable_claims.is_empty());
    let c = load(&[(
        "LATCHKEY_ACCOUNT_EDITABLE_CLAIMS",
        " name, given_name,locale,name ,",
    )])
    .unwrap();
    assert_eq!(
        c.account_editable_claims,
        [
            EditableClaim::Name,
            EditableClaim::GivenName,
            EditableClaim::Locale
        ]
    );
    assert!(!c.account_email_editable);
    // `email` has a section of its own, confirmed by mail: without mail it is refused.
    for refused in ["email", "name,email_verified", "address", "colour"] {
        check_error(
            &[("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", refused)],
            "LATCHKEY_ACCOUNT_EDITABLE_CLAIMS",
        );
    }
    let with_mail = load(&[
        ("LATCHKEY_ACCOUNT_EDITABLE_CLAIMS", "name,email"),
        ("LATCHKEY_SMTP_URL", "smtp://mail.example.com"),
        ("LATCHKEY_EMAIL_FROM", "login@example.com"),
    ])
    .unwrap();
    assert!(with_mail.account_email_editable);
    assert_eq!(with_mail.account_editable_claims, [EditableClaim::Name]);
}

#[test]
fn mail_settings_are_parsed_and_checked() {
    assert!(load(&[]).unwrap().mail.is_none(), "mail is off by default");
    let from = ("LATCHKEY_EMAIL_FROM", "Latchkey <login@example.com>");
    let smtp = |url: &str| {
        load(&[("LATCHKEY_SMTP_URL", url), from])
            .unwrap()
            .mail
            .unwrap()
            .smtp
    };
    let plain = smtp("smtp://mail.example.com");
    assert_eq!(
        (plain.host.as_str(), plain.port, plain.implicit_tls),
        ("mail.example.com", 587, false)
    );
    assert_eq!(plain.credentials, None);
    let tls = smtp("smtps://mail.example.com");
    assert_eq!((tls.port, tls.implicit_tls), (465, true));
    let with_user = smtp("smtp://robot%40example.com:p%3Ass%20w@127.0.0.1:2525/");
    assert_eq!(with_user.port, 2525);
    assert_eq!(
        with_user.credentials,
        Some(("robot@example.com".to_owned(), "p:ss w".to_owned()))
    );
    assert_eq!(smtp("smtp://[::1]:25").host, "::1");

    check_error(
        &[("LATCHKEY_SMTP_URL", "smtp://mail.example.com")],
        "LATCHKEY_EMAIL_FROM",
    );
    check_error(&[from], "LATCHKEY_SMTP_URL");
    for bad in [
        "http://mail.example.com",
        "smtp://",
        "smtp://host/path",
        "smtp://host?x=1",
        "not a url",
    ] {
        check_error(&[("LATCHKEY_SMTP_URL", bad), from], "LATCHKEY_SMTP_URL");
    }
    check_error(
        &[
            ("LATCHKEY_SMTP_URL", "smtp://host"),
            ("LATCHKEY_EMAIL_FROM", "not an address"),
        ],
        "LATCHKEY_EMAIL_FROM",
    );
    // The password never appears in an error or in debug output.
    let err = load(&[("LATCHKEY_SMTP_URL", "ftp://u:hunter2@host"), from]).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let debug = format!("{:?}", smtp("smtp://u:hunter2@host"));
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn requiring_verified_email_needs_mail() {
    assert!(!load(&[]).unwrap().require_verified_email);
    check_error(
        &[("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true")],
        "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
    );
    let c = load(&[
        ("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true"),
        ("LATCHKEY_SMTP_URL", "smtp://127.0.0.1:2525"),
        ("LATCHKEY_EMAIL_FROM", "login@example.com"),
    ])
    .unwrap();
    assert!(c.require_verified_email);
    assert!(!c.signup, "sign-up is off by default");
    check_error(&[("LATCHKEY_SIGNUP", "true")], "LATCHKEY_SIGNUP");
}
