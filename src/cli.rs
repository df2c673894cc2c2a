//! The command line: `serve` (the default), `migrate`, and the operator commands `client`,
//! `user`, `keys` and `upstream`, which do what the admin API does, straight against the database.
//!
//! The operator commands open the database exactly as the server does (`App::start`, which
//! applies pending migrations and loads the signing keys), call the same `manage` operations
//! as the admin API, and print the same JSON to stdout, so scripts can use either. Notes for
//! people (such as "save this secret") go to stderr, keeping stdout machine-readable.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::Arc;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value};

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::manage::{self, Page};
use crate::protocol::admin::{parse_client_registration, parse_secret_rotation, parse_user_create};
use crate::protocol::client::SUPPORTED_GRANT_TYPES;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Latchkey: an OAuth 2.0 and OpenID Connect authorization server",
    long_about = "Latchkey: an OAuth 2.0 and OpenID Connect authorization server.\n\n\
        Settings come from a TOML file (--config, default config/latchkey.toml when present) \
        and LATCHKEY_* environment variables, which win. With no subcommand, `serve` runs.\n\n\
        To get started: `latchkey migrate`, then `latchkey user create` and \
        `latchkey client create` to add a first user and application, then `latchkey serve`. \
        Run `latchkey <command> --help` for each command's options."
)]
pub struct Cli {
    /// Path of the TOML configuration file (default: config/latchkey.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first unless --no-migrate).
    Serve {
        /// Do not apply pending database migrations on start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Register and manage applications (OAuth clients) that sign users in through Latchkey.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Create and manage the user accounts that log in on Latchkey's login page.
    #[command(subcommand)]
    User(UserCommand),
    /// List or rotate the keys that sign access and ID tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Make clients, users and upstreams match a TOML file (configuration as code). Prints the
    /// plan, field by field with secrets masked, then applies it in one transaction.
    #[command(
        after_help = "Secrets are never written in the file: give client_secret and \
        password as \"env:NAME\". See config/apply.example.toml, docs/operations.md and \
        docs/upstreams.md."
    )]
    Apply {
        /// The TOML file declaring [[client]], [[user]] and [[upstream]] entries.
        file: PathBuf,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete the clients, users and upstreams the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// Register and manage upstream identity providers ("Log in with …").
    #[command(subcommand)]
    Upstream(UpstreamCommand),
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Register an upstream from a JSON file ("-" for stdin): the document
    /// `POST /admin/upstreams` takes. Prints it with its redirect_uri (never the secret).
    #[command(
        after_help = "Example (see docs/upstreams.md for Google, Entra ID, GitHub, GitLab, Apple):\n  \
        latchkey upstream create --json google.json"
    )]
    Create {
        #[arg(long, value_name = "FILE")]
        json: PathBuf,
    },
    /// List upstreams as JSON, 50 at a time.
    List(ListArgs),
    /// Print one upstream as JSON.
    Show { id: String },
    /// Replace an upstream's settings from a JSON file ("-" for stdin); a left-out
    /// client_secret keeps the stored one.
    Replace {
        id: String,
        #[arg(long, value_name = "FILE")]
        json: PathBuf,
    },
    /// Delete an upstream and every identity linked through it.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a new client and print it as JSON, with its secret (shown only this once).
    #[command(after_help = "Examples:\n  \
        latchkey client create --name \"My web app\" --redirect-uri https://app.example.com/callback \\\n    \
            --grant-type authorization_code --grant-type refresh_token --scope \"openid profile offline_access\"\n  \
        latchkey client create --name \"Nightly job\" --grant-type client_credentials --scope api.read\n  \
        latchkey client create --name \"Orders API\" --grant-type client_credentials --introspection any\n  \
        latchkey client create --json client.json")]
    Create(ClientCreateArgs),
    /// List registered clients as JSON, 50 at a time (never shows secrets).
    List(ListArgs),
    /// Print one client's registered metadata as JSON (never shows its secret).
    Show {
        /// The client's id, as printed by `client create` or `client list`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client; its refresh tokens stop working and its access tokens are revoked.
    Delete {
        /// The client's id, as printed by `client create` or `client list`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working, at
    /// once or after --keep-previous SECONDS.
    RotateSecret {
        /// The client's id, as printed by `client create` or `client list`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Keep the old secret working this many seconds, while the client is redeployed.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        keep_previous: i64,
        /// The new secret stops working after this many seconds (default: never).
        #[arg(long, value_name = "SECONDS")]
        valid_for: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// Name shown to users on the consent page.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where users are sent back after signing in: an exact https URL (http only for
    /// 127.0.0.1, [::1] or localhost), in canonical form (lower case scheme and host, a path
    /// of at least `/`), no fragment, no user:password@. Repeat the flag for several.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// A grant type the client may use. Repeat the flag for several. Default:
    /// authorization_code (users sign in through the browser).
    #[arg(long = "grant-type", value_name = "GRANT", value_parser = PossibleValuesParser::new(SUPPORTED_GRANT_TYPES))]
    pub grant_types: Vec<String>,
    /// Space-separated scopes the client may request, in one quoted argument.
    /// Default: "openid".
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// How the client authenticates to the token endpoint: client_secret_basic (default) or
    /// client_secret_post for server-side apps, which get a secret; private_key_jwt for apps
    /// that sign with their own key (give --jwks-uri); none for apps that cannot keep a secret
    /// (single-page and mobile apps), which must use PKCE.
    #[arg(long = "auth-method", value_name = "METHOD", value_parser = PossibleValuesParser::new(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]))]
    pub auth_method: Option<String>,
    /// Where the client publishes its public keys (a JWK Set), for private_key_jwt.
    #[arg(long = "jwks-uri", value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// Trusted first-party application: users are not asked for consent (unless the app
    /// itself asks with prompt=consent).
    #[arg(long)]
    pub first_party: bool,
    /// Whose tokens the client may introspect: own (default: only tokens issued to it) or
    /// any (a resource server checking tokens issued to other clients for it).
    #[arg(long, value_name = "WHOSE", value_parser = PossibleValuesParser::new(["own", "any"]))]
    pub introspection: Option<String>,
    /// Read the full RFC 7591 client metadata from a JSON file ("-" for stdin) instead of
    /// the flags above; the same document `POST /admin/clients` takes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "redirect_uris", "grant_types", "scope", "auth_method", "jwks_uri", "first_party", "introspection"])]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Start after this id: pass the `next` value printed by the previous page.
    #[arg(long, value_name = "CURSOR", allow_hyphen_values = true)]
    pub after: Option<String>,
    /// How many to print, 1 to 200.
    #[arg(long, value_name = "N", default_value_t = manage::DEFAULT_PAGE_SIZE)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print it as JSON, including its `sub` (the id other commands take).
    #[command(after_help = "Examples:\n  \
        printf '%s\\n' \"$PASSWORD\" | latchkey user create --username alice --password-stdin \\\n    \
            --email alice@example.com --email-verified --name \"Alice Liddell\"\n  \
        latchkey user create --json alice.json --password-stdin < password.txt")]
    Create(UserCreateArgs),
    /// List users as JSON, 50 at a time (never shows passwords).
    List(ListArgs),
    /// Print one user as JSON.
    Show {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
    },
    /// Delete a user, ending their sessions and revoking their tokens.
    Delete {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
    },
    /// Set a user's password; their browser sessions end at once.
    SetPassword {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Provision a TOTP authenticator for a user (replacing any they had) and print
    /// `{"id", "secret", "otpauth_uri"}`; the secret is shown this once.
    ProvisionTotp {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
    },
    /// Remove one second factor of a user (its id as `user show` lists it).
    RemoveFactor {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
        /// The factor's id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Require a second factor of a user (`--off` lifts the requirement).
    RequireMfa {
        /// The user's `sub`, as printed by `user create` or `user list`.
        #[arg(allow_hyphen_values = true)]
        sub: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    /// The name the user types on the login page: stored in Unicode NFKC form (fullwidth
    /// letters become plain ones), 1 to 256 bytes, letters of one script (plus digits,
    /// spaces and . _ - @), no control or invisible characters, no leading or trailing
    /// spaces.
    #[arg(long, value_name = "NAME", required_unless_present = "json")]
    pub username: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Email address (released with the `email` scope).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// Mark the email address as verified.
    #[arg(long)]
    pub email_verified: bool,
    /// Full name (released with the `profile` scope).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Given (first) name.
    #[arg(long, value_name = "NAME")]
    pub given_name: Option<String>,
    /// Family (last) name.
    #[arg(long, value_name = "NAME")]
    pub family_name: Option<String>,
    /// Phone number, preferably in E.164 form such as +14155550100 (released with the
    /// `phone` scope).
    #[arg(long, value_name = "NUMBER")]
    pub phone_number: Option<String>,
    /// Create the account disabled: it cannot log in until enabled through the admin API.
    #[arg(long)]
    pub disabled: bool,
    /// Read the user from a JSON file ("-" for stdin) instead of the flags above: the same
    /// document `POST /admin/users` takes (username, password, OpenID standard claims). A
    /// password flag, when given, replaces the file's password.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["username", "email", "email_verified", "name", "given_name", "family_name", "phone_number", "disabled"])]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (recommended).
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password itself. WARNING: it lands in your shell history and is visible to other
    /// local users in the process list; prefer --password-stdin. At least 8 characters.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the published signing keys (public information only) as JSON.
    List,
    /// Make a new signing key for every algorithm. It is published at once and starts signing
    /// after LATCHKEY_KEY_PUBLISH_AHEAD seconds, when the old keys stop signing; they stay
    /// published until every token they signed has expired.
    Rotate {
        /// Sign with the new keys at once (a key may be compromised). Relying parties that
        /// cached JWKS fail to verify new tokens until they fetch it again.
        #[arg(long)]
        now: bool,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Runs the chosen command.
pub async fn run(cli: Cli, config: Config) -> CliResult {
    match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
        Command::Serve { no_migrate } => Ok(crate::server::run(config, !no_migrate).await?),
        Command::Migrate => {
            let store = crate::app::open_store(&config).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Client(command) => client(&open(config).await?, command).await,
        Command::User(command) => user(&open(config).await?, command).await,
        Command::Keys(command) => keys(&open(config).await?, command).await,
        Command::Apply {
            file,
            dry_run,
            prune,
        } => apply(&open(config).await?, &file, dry_run, prune).await,
        Command::Upstream(command) => upstream(&open(config).await?, command).await,
    }
}

/// `latchkey apply`: the plan on stdout, then (when applied) the secrets generated for new
/// clients, each shown this once.
async fn apply(app: &App, file: &std::path::Path, dry_run: bool, prune: bool) -> CliResult {
    use manage::apply::{ApplyFile, ApplyOptions};
    let text = String::from_utf8(read_input(file)?)
        .map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
    let parsed = ApplyFile::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let env = |name: &str| std::env::var(name).ok();
    let applied = manage::apply::apply(app, &parsed, ApplyOptions { dry_run, prune }, &env).await?;
    print!("{}", applied.plan);
    if dry_run && !applied.plan.is_empty() {
        println!("Dry run: nothing was changed.");
    } else if applied.written {
        println!("Applied.");
    }
    for (client_id, secret) in applied.generated_secrets() {
        println!("client_secret of {client_id}: {secret}");
    }
    if !applied.generated_secrets().is_empty() {
        eprintln!(
            "latchkey: save the generated client secrets now; they are stored only as hashes"
        );
    }
    Ok(())
}

/// `latchkey upstream`: the admin API's upstream operations, from the command line.
async fn upstream(app: &App, command: UpstreamCommand) -> CliResult {
    use crate::manage::upstreams;
    use crate::protocol::upstream::parse_upstream;
    match command {
        UpstreamCommand::Create { json } => {
            let request = parse_upstream(&read_input(&json)?)?;
            let created = upstreams::create(app, request).await?;
            print_json(&created)?;
            eprintln!(
                "latchkey: register redirect_uri {} at the upstream",
                created.redirect_uri
            );
            Ok(())
        }
        UpstreamCommand::List(args) => {
            let page = Page::new(args.after, Some(args.limit))?;
            print_json(&upstreams::list(app, &page).await?)
        }
        UpstreamCommand::Show { id } => print_json(&upstreams::get(app, &id).await?),
        UpstreamCommand::Replace { id, json } => {
            let request = parse_upstream(&read_input(&json)?)?;
            print_json(&upstreams::replace(app, &id, request).await?)
        }
        UpstreamCommand::Delete { id } => {
            upstreams::delete(app, &id).await?;
            eprintln!("latchkey: upstream {id} deleted");
            Ok(())
        }
    }
}

/// Opens the database as the server would (migrating it, loading or creating the keys).
async fn open(config: Config) -> Result<App, Box<dyn std::error::Error>> {
    Ok(App::start(config, Arc::new(SystemClock), true).await?)
}

fn print_json(value: &impl serde::Serialize) -> CliResult {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn client(app: &App, command: ClientCommand) -> CliResult {
    match command {
        ClientCommand::Create(args) => {
            let document = match &args.json {
                Some(path) => read_input(path)?,
                None => serde_json::to_vec(&client_document(args))?,
            };
            let registration = parse_client_registration(&document)?;
            let created = manage::clients::create(app, registration).await?;
            print_json(&created)?;
            if created.client_secret.is_some() {
                eprintln!(
                    "latchkey: save client_secret now; it is stored only as a hash and cannot be shown again"
                );
            }
            Ok(())
        }
        ClientCommand::List(args) => {
            let page = Page::new(args.after, Some(args.limit))?;
            print_json(&manage::clients::list(app, &page).await?)
        }
        ClientCommand::Show { client_id } => {
            print_json(&manage::clients::get(app, &client_id).await?)
        }
        ClientCommand::Delete { client_id } => {
            manage::clients::delete(app, &client_id).await?;
            eprintln!("latchkey: client {client_id} deleted");
            Ok(())
        }
        ClientCommand::RotateSecret {
            client_id,
            keep_previous,
            valid_for,
        } => {
            // Through the admin API's parser, so both refuse the same values.
            let body = serde_json::json!({
                "previous_secret_valid_for": keep_previous,
                "secret_valid_for": valid_for,
            });
            let rotation = parse_secret_rotation(&serde_json::to_vec(&body)?)?;
            print_json(&manage::clients::rotate_secret(app, &client_id, rotation).await?)?;
            eprintln!("latchkey: save client_secret now; it cannot be shown again");
            Ok(())
        }
    }
}

/// The RFC 7591 document the flags describe; it then goes through the same parser as the
/// admin API's bodies, so both refuse the same things in the same words.
fn client_document(args: ClientCreateArgs) -> Value {
    let mut doc = Map::new();
    if let Some(name) = args.name {
        doc.insert("client_name".into(), Value::String(name));
    }
    if !args.redirect_uris.is_empty() {
        doc.insert("redirect_uris".into(), string_array(args.redirect_uris));
    }
    if !args.grant_types.is_empty() {
        doc.insert("grant_types".into(), string_array(args.grant_types));
    }
    if let Some(scope) = args.scope {
        doc.insert("scope".into(), Value::String(scope));
    }
    if let Some(method) = args.auth_method {
        doc.insert("token_endpoint_auth_method".into(), Value::String(method));
    }
    if let Some(uri) = args.jwks_uri {
        doc.insert("jwks_uri".into(), Value::String(uri));
    }
    if args.first_party {
        doc.insert("first_party".into(), Value::Bool(true));
    }
    if let Some(whose) = args.introspection {
        doc.insert("introspection".into(), Value::String(whose));
    }
    Value::Object(doc)
}

fn string_array(values: Vec<String>) -> Value {
    Value::Array(values.into_iter().map(Value::String).collect())
}

async fn user(app: &App, command: UserCommand) -> CliResult {
    match command {
        UserCommand::Create(args) => {
            let document = user_document(args)?;
            let request = parse_user_create(&serde_json::to_vec(&document)?)?;
            print_json(&manage::users::create(app, request).await?)
        }
        UserCommand::List(args) => {
            let page = Page::new(args.after, Some(args.limit))?;
            print_json(&manage::users::list(app, &page).await?)
        }
        UserCommand::Show { sub } => print_json(&manage::users::get(app, &sub).await?),
        UserCommand::Delete { sub } => {
            manage::users::delete(app, &sub).await?;
            eprintln!("latchkey: user {sub} deleted");
            Ok(())
        }
        UserCommand::SetPassword { sub, password } => {
            let Some(password) = password.read()? else {
                return Err(NO_PASSWORD.into());
            };
            manage::users::set_password(app, &sub, &password).await?;
            eprintln!("latchkey: password of user {sub} changed; their sessions have ended");
            Ok(())
        }
        UserCommand::ProvisionTotp { sub } => {
            print_json(&manage::users::provision_totp(app, &sub).await?)
        }
        UserCommand::RemoveFactor { sub, id } => {
            manage::users::delete_factor(app, &sub, &id).await?;
            eprintln!("latchkey: factor {id} of user {sub} removed");
            Ok(())
        }
        UserCommand::RequireMfa { sub, off } => {
            let patch = crate::protocol::admin::UserPatch {
                mfa_required: Some(!off),
                ..Default::default()
            };
            print_json(&manage::users::patch(app, &sub, patch).await?)
        }
    }
}

const NO_PASSWORD: &str = "give the password with --password-stdin (or --password)";

/// The `POST /admin/users` document the flags (or the JSON file) describe.
fn user_document(args: UserCreateArgs) -> Result<Value, Box<dyn std::error::Error>> {
    if args.json.as_deref() == Some(std::path::Path::new("-")) && args.password.password_stdin {
        return Err("--json - and --password-stdin cannot both read standard input".into());
    }
    let password = args.password.read()?;
    let mut doc = match &args.json {
        Some(path) => match serde_json::from_slice::<Value>(&read_input(path)?) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(format!("{}: must hold a JSON object", path.display()).into()),
            Err(e) => return Err(format!("{}: not valid JSON: {e}", path.display()).into()),
        },
        None => {
            let mut doc = Map::new();
            let strings = [
                ("username", args.username),
                ("email", args.email),
                ("name", args.name),
                ("given_name", args.given_name),
                ("family_name", args.family_name),
                ("phone_number", args.phone_number),
            ];
            for (key, value) in strings {
                if let Some(v) = value {
                    doc.insert(key.into(), Value::String(v));
                }
            }
            if args.email_verified {
                doc.insert("email_verified".into(), Value::Bool(true));
            }
            if args.disabled {
                doc.insert("disabled".into(), Value::Bool(true));
            }
            doc
        }
    };
    match password {
        Some(p) => {
            doc.insert("password".into(), Value::String(p));
        }
        None if !doc.contains_key("password") => return Err(NO_PASSWORD.into()),
        None => {}
    }
    Ok(Value::Object(doc))
}

impl PasswordArgs {
    /// The password from whichever flag was given, or `None` when neither was.
    fn read(&self) -> Result<Option<String>, Box<dyn std::error::Error>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        if !self.password_stdin {
            return Ok(None);
        }
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err("--password-stdin: standard input is empty".into());
        }
        // One line: the newline that ends it is not part of the password.
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        Ok(Some(password.to_owned()))
    }
}

/// The bytes of a file, or of stdin for "-".
fn read_input(path: &std::path::Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if path == std::path::Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
    }
}

async fn keys(app: &App, command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::List => print_json(&manage::keys::list(app)),
        KeysCommand::Rotate { now } => print_json(
            &manage::keys::rotate(app, crate::protocol::admin::KeyRotation { now }).await?,
        ),
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use clap::CommandFactory;

    use clap::Parser;

    use super::{Cli, ClientCommand, Command, UserCommand};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// Ids are base64url and may start with `-`; they must still parse as ids, wherever the
    /// flags go.
    #[test]
    fn ids_may_start_with_a_hyphen() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.command);
        assert!(matches!(
            parse(&["latchkey", "client", "show", "-n7hTZ"]),
            Ok(Some(Command::Client(ClientCommand::Show { client_id }))) if client_id == "-n7hTZ"
        ));
        for args in [
            &[
                "latchkey",
                "user",
                "set-password",
                "-abc",
                "--password-stdin",
            ][..],
            &[
                "latchkey",
                "user",
                "set-password",
                "--password-stdin",
                "-abc",
            ][..],
        ] {
            match parse(args) {
                Ok(Some(Command::User(UserCommand::SetPassword { sub, password }))) => {
                    assert_eq!(sub, "-abc", "{args:?}");
                    assert!(password.password_stdin, "{args:?}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(&["latchkey", "client", "list", "--after", "-xyz"]),
            Ok(Some(Command::Client(ClientCommand::List(list)))) if list.after.as_deref() == Some("-xyz")
        ));
    }
}
