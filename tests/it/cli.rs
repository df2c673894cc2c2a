//! The `latchkey` binary's operator commands (`migrate`, `client`, `user`, `keys`), run as a
//! real process against a fresh database, and its refusal of bad configuration.

use std::process::Output;

use latchkey::config::DatabaseUrl;
use serde_json::{Value, json};

use crate::helpers::{Latchkey, PASSWORD};

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_mentions_every_subcommand() {
    let cli = Latchkey::new("sqlite://unused.db");
    let top = stdout_of(&cli.run(&["--help"], None));
    for command in ["serve", "migrate", "client", "user", "keys"] {
        assert!(top.contains(command), "--help lacks {command}: {top}");
    }
    for (command, subcommands) in [
        (
            "client",
            &["create", "list", "show", "delete", "rotate-secret"][..],
        ),
        (
            "user",
            &[
                "create",
                "list",
                "show",
                "delete",
                "set-password",
                "provision-totp",
                "remove-factor",
                "require-mfa",
            ][..],
        ),
        ("keys", &["list", "rotate"][..]),
    ] {
        let help = stdout_of(&cli.run(&[command, "--help"], None));
        for sub in subcommands {
            assert!(help.contains(sub), "{command} --help lacks {sub}: {help}");
        }
    }
    let create = stdout_of(&cli.run(&["client", "create", "--help"], None));
    for flag in [
        "--name",
        "--redirect-uri",
        "--grant-type",
        "--scope",
        "--auth-method",
        "--first-party",
        "--introspection",
        "--json",
    ] {
        assert!(create.contains(flag), "client create --help lacks {flag}");
    }
    let user = stdout_of(&cli.run(&["user", "create", "--help"], None));
    assert!(user.contains("--password-stdin"));
    assert!(
        user.contains("shell history"),
        "the --password warning: {user}"
    );
}

#[test]
fn bad_configuration_exits_with_one_line_naming_the_variable() {
    let mut cli = Latchkey::new("sqlite://unused.db");
    cli.env
        .push(("LATCHKEY_ISSUER".into(), "http://example.com".into()));
    // A port held here: had the program bound before validating, it would fail differently.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cli.env.push((
        "LATCHKEY_LISTEN".into(),
        held.local_addr().unwrap().to_string(),
    ));
    for args in [
        &["serve"][..],
        &[][..],
        &["client", "list"][..],
        &["migrate"][..],
    ] {
        let out = cli.run(args, None);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(stderr.contains("LATCHKEY_ISSUER"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!cli.dir.join("data").exists(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_on_sqlite() {
    let path = latchkey::store::testing::fresh_sqlite_path();
    let url = format!("sqlite://{}", path.display());
    operator_commands(&url, DatabaseUrl::Sqlite(path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_on_postgres() {
    let url = latchkey::store::testing::fresh_postgres_url().await;
    operator_commands(&url, DatabaseUrl::Postgres(url.clone())).await;
}

/// The bootstrap an operator goes through, one process per step, as a script would.
async fn operator_commands(url: &str, database: DatabaseUrl) {
    let cli = Latchkey::new(url);
    let out = cli.run(&["migrate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        cli.run(&["migrate"], None).status.success(),
        "migrate is idempotent"
    );

    // Clients.
    let out = cli.run(
        &[
            "client",
            "create",
            "--name",
            "CLI app",
            "--redirect-uri",
            "https://app.example.test/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid offline_access",
            "--first-party",
            "--introspection",
            "any",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web: Value = serde_json::from_slice(&out.stdout).unwrap();
    let web_id = web["client_id"].as_str().unwrap().to_owned();
    let secret = web["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(web["client_secret_expires_at"], 0);
    assert_eq!(web["client_name"], "CLI app");
    assert_eq!(
        web["redirect_uris"],
        json!(["https://app.example.test/cb", "http://127.0.0.1:9000/cb"])
    );
    assert_eq!(
        web["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(web["scope"], "openid offline_access");
    assert_eq!(web["first_party"], true);
    assert_eq!(web["introspection"], "any");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be shown again"));

    let spa = cli.ok(
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--redirect-uri",
            "https://spa.example.test/cb",
            "--auth-method",
            "none",
        ],
        None,
    );
    assert!(spa.get("client_secret").is_none(), "{spa}");
    assert_eq!(spa["introspection"], "own", "the default");
    let spa_id = spa["client_id"].as_str().unwrap().to_owned();

    let from_json = cli.ok(
        &["client", "create", "--json", "-"],
        Some(&json!({"client_name": "Job", "grant_types": ["client_credentials"], "scope": "api.read"}).to_string()),
    );
    assert_eq!(from_json["grant_types"], json!(["client_credentials"]));
    assert!(from_json["client_secret"].is_string());

    let stderr = cli.fails(
        &[
            "client",
            "create",
            "--redirect-uri",
            "https://app.example.test/cb#frag",
        ],
        None,
    );
    assert!(stderr.contains("invalid_redirect_uri"), "{stderr}");
    let stderr = cli.fails(
        &["client", "create", "--json", "-"],
        Some("{\"colour\": 1}"),
    );
    assert!(stderr.contains("invalid_client_metadata"), "{stderr}");
    let stderr = cli.fails(&["client", "create", "--grant-type", "implicit"], None);
    assert!(stderr.contains("implicit"), "{stderr}");
    let stderr = cli.fails(
        &[
            "client",
            "create",
            "--redirect-uri",
            "https://app.example.test/cb",
            "--introspection",
            "all",
        ],
        None,
    );
    assert!(stderr.contains("all"), "{stderr}");

    let list = cli.ok(&["client", "list"], None);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&web_id.as_str()) && ids.contains(&spa_id.as_str()));
    for item in list["items"].as_array().unwrap() {
        assert!(item.get("client_secret").is_none(), "{item}");
    }
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["next"], Value::Null);
    let page = cli.ok(&["client", "list", "--limit", "2"], None);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let rest = cli.ok(
        &["client", "list", "--after", page["next"].as_str().unwrap()],
        None,
    );
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    let shown = cli.ok(&["client", "show", &web_id], None);
    assert_eq!(shown["client_name"], "CLI app");
    assert!(shown.get("client_secret").is_none());
    assert!(!shown.to_string().contains(&secret));

    let rotated = cli.ok(&["client", "rotate-secret", &web_id], None);
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);

    assert_eq!(cli.ok(&["client", "delete", &spa_id], None), Value::Null);
    let stderr = cli.fails(&["client", "show", &spa_id], None);
    assert!(stderr.contains("not_found"), "{stderr}");
    assert!(
        cli.fails(&["client", "delete", &spa_id], None)
            .contains("not_found")
    );

    // Users.
    let alice = cli.ok(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.test",
            "--email-verified",
            "--name",
            "Alice Liddell",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let sub = alice["sub"].as_str().unwrap().to_owned();
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.test");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["name"], "Alice Liddell");
    assert!(!alice.to_string().contains(PASSWORD));
    assert!(
        !alice
            .to_string()
            .replace("password_reset_required", "")
            .contains("password")
    );

    let bob = cli.ok(
        &["user", "create", "--json", "-"],
        Some(&json!({"username": "bob", "password": PASSWORD, "given_name": "Bob"}).to_string()),
    );
    assert_eq!(bob["given_name"], "Bob");

    let stderr = cli.fails(
        &["user", "create", "--username", "alice", "--password-stdin"],
        Some("another good password\n"),
    );
    assert!(stderr.contains("conflict"), "{stderr}");
    // The username rule of the admin API: NFKC (so fullwidth alice is alice, taken) and one
    // script (a Cyrillic а among Latin letters is refused).
    let stderr = cli.fails(
        &[
            "user",
            "create",
            "--username",
            "ａｌｉｃｅ",
            "--password-stdin",
        ],
        Some("another good password\n"),
    );
    assert!(stderr.contains("conflict"), "{stderr}");
    let stderr = cli.fails(
        &[
            "user",
            "create",
            "--username",
            "\u{430}lice",
            "--password-stdin",
        ],
        Some("another good password\n"),
    );
    assert!(stderr.contains("mixes scripts"), "{stderr}");
    let stderr = cli.fails(
        &["user", "create", "--username", "carol", "--password-stdin"],
        Some("short\n"),
    );
    assert!(stderr.contains("at least 8"), "{stderr}");
    let stderr = cli.fails(&["user", "create", "--username", "carol"], None);
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    assert!(!stderr.contains(PASSWORD));

    let mut shown = cli.ok(&["user", "show", &sub], None);
    assert_eq!(
        shown.as_object_mut().unwrap().remove("identities"),
        Some(serde_json::json!([]))
    );
    assert_eq!(shown, alice);
    let list = cli.ok(&["user", "list"], None);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(
        !list
            .to_string()
            .replace("password_reset_required", "")
            .contains("password")
    );

    let new_password = "a different long password";
    assert_eq!(
        cli.ok(
            &["user", "set-password", &sub, "--password-stdin"],
            Some(&format!("{new_password}\r\n"))
        ),
        Value::Null
    );
    let store = latchkey::store::open(&database, &latchkey::store::testing::connect_options())
        .await
        .unwrap();
    let stored = store.get_user(&sub).await.unwrap().unwrap();
    let hasher = latchkey::accounts::PasswordHasher::new(1);
    assert!(
        hasher
            .verify(new_password, Some(&stored.password_hash))
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify(PASSWORD, Some(&stored.password_hash))
            .await
            .unwrap()
    );
    assert!(
        cli.fails(&["user", "set-password", &sub, "--password", "short"], None)
            .contains("at least 8")
    );
    assert!(
        cli.fails(
            &[
                "user",
                "set-password",
                "no-such-sub",
                "--password",
                new_password
            ],
            None
        )
        .contains("not_found")
    );

    assert_eq!(cli.ok(&["user", "delete", &sub], None), Value::Null);
    assert!(
        cli.fails(&["user", "show", &sub], None)
            .contains("not_found")
    );

    // Keys.
    let keys = cli.ok(&["keys", "list"], None);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3, "{keys}");
    let rotated = cli.ok(&["keys", "rotate"], None);
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 6, "{rotated}");
    let keys = cli.ok(&["keys", "list"], None);
    let es256: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "ES256")
        .collect();
    assert_eq!(es256.len(), 2, "{keys}");
    assert_eq!(
        es256.iter().filter(|k| k["active"] == true).count(),
        1,
        "{keys}"
    );
    assert!(!keys.to_string().contains("private"));
}

/// `user provision-totp`, `user require-mfa` and `user remove-factor` mirror the admin API's
/// second-factor routes: the secret is printed once, `user show` lists the factor (never the
/// secret), and removal takes it away.
#[test]
fn second_factor_commands_mirror_the_admin_api() {
    let url = format!(
        "sqlite://{}",
        latchkey::store::testing::fresh_sqlite_path().display()
    );
    let cli = Latchkey::new(&url);
    assert!(cli.run(&["migrate"], None).status.success());
    let user = cli.ok(
        &[
            "user",
            "create",
            "--username",
            "mallory",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    let sub = user["sub"].as_str().unwrap().to_owned();
    assert_eq!(user["mfa_required"], false);
    let required = cli.ok(&["user", "require-mfa", &sub], None);
    assert_eq!(required["mfa_required"], true);
    let totp = cli.ok(&["user", "provision-totp", &sub], None);
    let secret = totp["secret"].as_str().unwrap().to_owned();
    let id = totp["id"].as_str().unwrap().to_owned();
    assert!(
        totp["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let shown = cli.ok(&["user", "show", &sub], None);
    assert_eq!(shown["factors"][0]["id"], id.as_str());
    assert_eq!(shown["factors"][0]["kind"], "totp");
    assert!(!shown.to_string().contains(&secret), "never the secret");
    // An operator may remove a required user's last factor (the user enrols again).
    cli.ok(&["user", "remove-factor", &sub, &id], None);
    assert_eq!(cli.ok(&["user", "show", &sub], None)["factors"], json!([]));
    let err = cli.fails(&["user", "remove-factor", &sub, &id], None);
    assert!(err.contains(&id), "{err}");
    let lifted = cli.ok(&["user", "require-mfa", &sub, "--off"], None);
    assert_eq!(lifted["mfa_required"], false);
}
