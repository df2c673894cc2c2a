//! Configuration as code through the real binary: `latchkey apply FILE [--dry-run] [--prune]`
//! prints a plan field by field with secrets masked, applies it, finds nothing to do the
//! second time, deletes only with `--prune`, and refuses files that write secrets in clear,
//! name unset variables, would lock every person out or would prune everything.

use std::sync::Arc;

use latchkey::store::Store;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, Latchkey, PASSWORD, TEST_MASTER_KEY, fresh_database};

both_backends!(
    a_file_is_planned_applied_once_updated_field_by_field_and_pruned,
    files_that_leak_secrets_lock_people_out_or_prune_everything_are_refused,
    every_field_the_admin_api_answers_can_be_declared_in_a_file,
);

const WEB_SECRET: &str = "web-secret-from-the-environment-0123456789";
const NEW_WEB_SECRET: &str = "another-web-secret-from-the-environment-9876";

fn file(scope: &str, with_machine: bool) -> String {
    let mut text = format!(
        r#"
[[client]]
client_id = "web"
client_name = "Web"
redirect_uris = ["https://web.example.test/cb"]
grant_types = ["authorization_code", "refresh_token"]
scope = "{scope}"
client_secret = "env:WEB_SECRET"

[[user]]
username = "alice"
email = "alice@example.test"
email_verified = true
password = "env:ALICE_PASSWORD"
"#
    );
    if with_machine {
        text.push_str(
            r#"
[[client]]
client_id = "machine"
grant_types = ["client_credentials"]
scope = "api.read"
"#,
        );
    }
    text
}

fn write(cli: &Latchkey, text: &str) -> String {
    let path = cli.dir.join("apply.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stdout(cli: &Latchkey, args: &[&str]) -> String {
    let out = cli.run(args, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "latchkey {args:?} failed: {}\nstdout: {text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn store_of(url: &str) -> Arc<dyn Store> {
    let database = latchkey::config::Config::load_from(
        Some(std::path::Path::new("/dev/null")),
        &[
            ("LATCHKEY_DATABASE_URL".to_owned(), url.to_owned()),
            ("LATCHKEY_MASTER_KEY".to_owned(), TEST_MASTER_KEY.to_owned()),
        ],
    )
    .unwrap()
    .database;
    latchkey::store::open(&database, &latchkey::store::testing::connect_options())
        .await
        .unwrap()
}

fn secret_matches(secret: &str, stored: Option<&[u8]>) -> bool {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(TEST_MASTER_KEY)
        .unwrap();
    let hasher = latchkey::crypto::SecretHasher::new(&key.try_into().unwrap());
    stored.is_some_and(|h| hasher.verify(secret, h))
}

async fn a_file_is_planned_applied_once_updated_field_by_field_and_pruned(backend: Backend) {
    let url = fresh_database(backend).await;
    let mut cli = Latchkey::new(&url);
    cli.env.push(("WEB_SECRET".into(), WEB_SECRET.into()));
    cli.env.push(("ALICE_PASSWORD".into(), PASSWORD.into()));
    let path = write(&cli, &file("openid", true));

    // A dry run shows every field, masks the secrets, and changes nothing.
    let plan = stdout(&cli, &["apply", &path, "--dry-run"]);
    for line in [
        "+ create client web",
        "    client_name: \"Web\"",
        "    scope: \"openid\"",
        "    client_secret: ******** (from env:WEB_SECRET)",
        "+ create client machine",
        "+ create user alice",
        "    password: ******** (from env:ALICE_PASSWORD)",
        "Plan: 3 to create, 0 to update, 0 to delete.",
        "Dry run: nothing was changed.",
    ] {
        assert!(plan.contains(line), "{line:?} missing from:\n{plan}");
    }
    assert!(
        !plan.contains(WEB_SECRET) && !plan.contains(PASSWORD),
        "{plan}"
    );
    let listed = cli.ok(&["client", "list"], None);
    assert_eq!(
        listed["items"],
        Value::Array(vec![]),
        "a dry run writes nothing"
    );

    // Applied: the secret from the environment works, the machine client's generated one is
    // printed once, and alice logs in with hers.
    let applied = stdout(&cli, &["apply", &path]);
    assert!(applied.contains("Applied."), "{applied}");
    let generated = applied
        .lines()
        .find_map(|l| l.strip_prefix("client_secret of machine: "))
        .unwrap_or_else(|| panic!("no generated secret in:\n{applied}"))
        .to_owned();
    let store = store_of(&url).await;
    let web = store.get_client("web").await.unwrap().unwrap();
    assert!(secret_matches(WEB_SECRET, web.secret_hash.as_deref()));
    let machine = store.get_client("machine").await.unwrap().unwrap();
    assert!(secret_matches(&generated, machine.secret_hash.as_deref()));
    let alice = store.get_user_by_username("alice").await.unwrap().unwrap();
    let passwords = latchkey::accounts::PasswordHasher::new(1);
    assert!(
        passwords
            .verify(PASSWORD, Some(&alice.password_hash))
            .await
            .unwrap()
    );

    // The same file again: nothing to do, and it says so.
    let again = stdout(&cli, &["apply", &path]);
    assert_eq!(
        again.trim(),
        "No changes: the database already matches the file.",
        "{again}"
    );
    assert!(
        !again.contains("client_secret of"),
        "no secret is shown again"
    );

    // One field changed, and the secret in the environment: field by field, masked.
    write(&cli, &file("openid profile", true));
    cli.env.retain(|(k, _)| k != "WEB_SECRET");
    cli.env.push(("WEB_SECRET".into(), NEW_WEB_SECRET.into()));
    let update = stdout(&cli, &["apply", &path]);
    for line in [
        "~ update client web",
        "    scope: \"openid\" -> \"openid profile\"",
        "    client_secret: ******** -> ******** (from env:WEB_SECRET)",
        "Plan: 0 to create, 1 to update, 0 to delete.",
    ] {
        assert!(update.contains(line), "{line:?} missing from:\n{update}");
    }
    assert!(
        !update.contains("machine") && !update.contains("alice"),
        "{update}"
    );
    let web = store.get_client("web").await.unwrap().unwrap();
    assert_eq!(web.metadata.scope, "openid profile");
    assert!(secret_matches(NEW_WEB_SECRET, web.secret_hash.as_deref()));
    assert!(!secret_matches(WEB_SECRET, web.secret_hash.as_deref()));

    // A client left out of the file stays, unless --prune.
    let path = write(&cli, &file("openid profile", false));
    assert!(stdout(&cli, &["apply", &path]).contains("No changes"));
    assert!(store.get_client("machine").await.unwrap().is_some());
    let pruned = stdout(&cli, &["apply", &path, "--prune"]);
    assert!(pruned.contains("- delete client machine"), "{pruned}");
    assert!(
        pruned.contains("Plan: 0 to create, 0 to update, 1 to delete."),
        "{pruned}"
    );
    assert!(store.get_client("machine").await.unwrap().is_none());
    assert!(stdout(&cli, &["apply", &path, "--prune"]).contains("No changes"));
}

async fn files_that_leak_secrets_lock_people_out_or_prune_everything_are_refused(backend: Backend) {
    let url = fresh_database(backend).await;
    let mut cli = Latchkey::new(&url);
    cli.env.push(("ALICE_PASSWORD".into(), PASSWORD.into()));
    let alice = "[[user]]\nusername = \"alice\"\npassword = \"env:ALICE_PASSWORD\"\n";
    let path = write(&cli, alice);
    stdout(&cli, &["apply", &path]);

    let cases = [
        (
            "[[user]]\nusername = \"bob\"\npassword = \"in clear in the file\"\n".to_owned(),
            "env:NAME",
        ),
        (
            "[[client]]\nclient_id = \"c\"\nclient_secret = \"env:UNSET_VARIABLE\"\n\
             redirect_uris = [\"https://c.example.test/cb\"]\n"
                .to_owned(),
            "UNSET_VARIABLE is not set",
        ),
        (
            "[[user]]\nusername = \"alice\"\ndisabled = true\n".to_owned(),
            "no enabled user",
        ),
        (
            "[[client]]\nclient_id = \"bad id!\"\n".to_owned(),
            "client_id `bad id!`",
        ),
        (
            "[[client]]\nclient_id = \"c\"\nredirect_uris = [\"https://c.example.test/cb#frag\"]\n"
                .to_owned(),
            "client c:",
        ),
        ("[[upstream]]\nname = \"later\"\n".to_owned(), "upstream"),
    ];
    for (text, expected) in cases {
        let path = write(&cli, &text);
        let stderr = cli.fails(&["apply", &path], None);
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(!stderr.contains("in clear in the file"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // Pruning with a file that names nothing, or with only clients (every user would go).
    let path = write(&cli, "");
    assert!(
        cli.fails(&["apply", &path, "--prune"], None)
            .contains("delete everything")
    );
    let path = write(
        &cli,
        "[[client]]\nclient_id = \"c\"\nredirect_uris = [\"https://c.example.test/cb\"]\n",
    );
    assert!(
        cli.fails(&["apply", &path, "--prune"], None)
            .contains("no enabled user")
    );
    // Nothing of the refused files was written.
    let store = store_of(&url).await;
    assert!(store.get_client("c").await.unwrap().is_none());
    let alice = store.get_user_by_username("alice").await.unwrap().unwrap();
    assert!(!alice.disabled);
}

/// A JSON value as a TOML value (inline tables for objects; `null` members left out).
fn toml_value(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect();
            format!("{{ {} }}", members.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        // JSON strings, numbers and booleans are written the same way in TOML.
        other => other.to_string(),
    }
}

/// A `[[client]]` or `[[user]]` entry holding every member of an admin API answer except
/// the ones the server assigns.
fn entry(kind: &str, answer: &Value, assigned: &[&str]) -> String {
    let mut text = format!("[[{kind}]]\n");
    for (k, v) in answer.as_object().unwrap() {
        if !assigned.contains(&k.as_str()) && !v.is_null() {
            text.push_str(&format!("{k} = {}\n", toml_value(v)));
        }
    }
    text
}

/// Whatever the admin API answers about a client or a user (but what the server assigns)
/// can be written in a file, and the file of an answer changes nothing: so every client and
/// user field, policies such as the client's `require_mfa` and the user's `mfa_required`
/// included, can be declared. `mfa_required` is applied when given and left alone when not.
async fn every_field_the_admin_api_answers_can_be_declared_in_a_file(backend: Backend) {
    let url = fresh_database(backend).await;
    let cli = Latchkey::new(&url);
    let client = cli.ok(
        &["client", "create", "--json", "-"],
        Some(
            &json!({
                "client_name": "Everything",
                "redirect_uris": ["https://every.example.test/cb"],
                "post_logout_redirect_uris": ["https://every.example.test/bye"],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scope": "openid profile api.read",
                "client_uri": "https://every.example.test/",
                "logo_uri": "https://every.example.test/logo.png",
                "id_token_signed_response_alg": "RS256",
                "first_party": true,
                "allowed_resources": ["https://api.example.test/"],
                "introspection": "any",
                "require_pushed_authorization_requests": true,
                "dpop_bound_access_tokens": true,
                "require_mfa": true,
                "backchannel_logout_uri": "https://every.example.test/logout",
                "backchannel_logout_session_required": true,
                "token_exchange_audiences": ["https://api.example.test/"]
            })
            .to_string(),
        ),
    );
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let user = cli.ok(
        &["user", "create", "--json", "-"],
        Some(
            &json!({
                "username": "erin", "password": PASSWORD, "mfa_required": true,
                "password_reset_required": true, "given_name": "Erin",
                "email": "erin@example.test", "email_verified": true,
                "address": {"locality": "Bern", "country": "CH"}
            })
            .to_string(),
        ),
    );
    let sub = user["sub"].as_str().unwrap().to_owned();
    let client = cli.ok(&["client", "show", &client_id], None);
    let user = cli.ok(&["user", "show", &sub], None);
    assert_eq!(client["require_mfa"], true, "{client}");
    assert_eq!(user["mfa_required"], true, "{user}");

    let client_entry = entry(
        "client",
        &client,
        &[
            "client_id_issued_at",
            "client_secret",
            "client_secret_expires_at",
            "client_secrets",
        ],
    );
    let user_entry = |user: &Value| {
        entry(
            "user",
            user,
            // Linked upstream identities are the user's own doing, not configuration.
            &["sub", "created_at", "updated_at", "factors", "identities"],
        )
    };
    let path = write(&cli, &format!("{client_entry}\n{}", user_entry(&user)));
    let plan = stdout(&cli, &["apply", &path]);
    assert_eq!(
        plan.trim(),
        "No changes: the database already matches the file.",
        "{plan}\n{}",
        std::fs::read_to_string(&path).unwrap()
    );

    // Lifting the user's requirement in the file lifts it; leaving it out leaves it alone.
    let mut lifted = user.clone();
    lifted["mfa_required"] = json!(false);
    write(&cli, &format!("{client_entry}\n{}", user_entry(&lifted)));
    let plan = stdout(&cli, &["apply", &path]);
    assert!(plan.contains("~ update user erin"), "{plan}");
    assert!(plan.contains("    mfa_required: true -> false"), "{plan}");
    assert!(
        plan.contains("Plan: 0 to create, 1 to update, 0 to delete."),
        "{plan}"
    );
    assert_eq!(cli.ok(&["user", "show", &sub], None)["mfa_required"], false);
    cli.ok(&["user", "require-mfa", &sub], None);
    let mut silent = user.clone();
    silent.as_object_mut().unwrap().remove("mfa_required");
    write(&cli, &format!("{client_entry}\n{}", user_entry(&silent)));
    assert!(stdout(&cli, &["apply", &path]).contains("No changes"));
    assert_eq!(cli.ok(&["user", "show", &sub], None)["mfa_required"], true);

    // A new user declared with the requirement has it; a wrong type is refused.
    write(
        &cli,
        &format!(
            "{client_entry}\n{}\n[[user]]\nusername = \"frank\"\nmfa_required = true\n",
            user_entry(&user)
        ),
    );
    let plan = stdout(&cli, &["apply", &path]);
    assert!(plan.contains("+ create user frank"), "{plan}");
    assert!(plan.contains("    mfa_required: true"), "{plan}");
    let store = store_of(&url).await;
    let frank = store.get_user_by_username("frank").await.unwrap().unwrap();
    assert!(frank.mfa_required);
    write(
        &cli,
        "[[user]]\nusername = \"frank\"\nmfa_required = \"yes\"\n",
    );
    let stderr = cli.fails(&["apply", &path], None);
    assert!(
        stderr.contains("mfa_required must be true or false"),
        "{stderr}"
    );
}
