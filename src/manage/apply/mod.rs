//! Configuration as code: `latchkey apply FILE [--dry-run] [--prune]`.
//!
//! A TOML file declares clients (`[[client]]`, named by `client_id`), users (`[[user]]`,
//! named by `username`) and upstream identity providers (`[[upstream]]`, named by `id`). Applying it compares each with the database and makes a `Plan`:
//! what to create, update (field by field) or, with `--prune`, delete. Secrets are never
//! written in the file (`client_secret` and `password` only as `env:NAME`, read from the
//! environment) and never shown in the plan. The plan is written in one transaction
//! (`store::ApplyStore`), so a file is applied whole or not at all; applying the same file
//! again finds nothing to do.
//!
//! What administers Latchkey is the admin token (configuration) and the command line (access
//! to the database): a file can change neither. What it can break is every person's way in,
//! so a plan that would leave no enabled user where there is one now is refused, and so is
//! `--prune` with a file that declares nothing (an empty or truncated file would otherwise
//! delete everything). Both are still possible one by one with `client delete` and
//! `user delete`.
//!
//! Server-side policies that live in the database would go here too; today every policy is
//! configuration (`LATCHKEY_*`).

mod clients;
mod upstreams;
mod users;

use std::fmt;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::store::{Change, STALE_PLAN, StoreError};

/// How secrets appear in a plan.
pub const MASK: &str = "********";

/// The file, as TOML spells it. Each entry stays a JSON object here and is validated by the
/// same parsers as the admin API's bodies, so both refuse the same things in the same words.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyFile {
    #[serde(default)]
    pub client: Vec<Map<String, Value>>,
    #[serde(default)]
    pub user: Vec<Map<String, Value>>,
    #[serde(default)]
    pub upstream: Vec<Map<String, Value>>,
}

impl ApplyFile {
    /// Parses TOML text; errors name the place in the file.
    pub fn parse(text: &str) -> Result<ApplyFile, ApplyError> {
        Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| ApplyError(format!("the file is not valid: {e}")))
    }
}

/// Why a file cannot be applied: one line, for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

impl From<OAuthError> for ApplyError {
    fn from(e: OAuthError) -> Self {
        ApplyError(e.description.into_owned())
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(STALE_PLAN) => ApplyError(
                "the database changed while the plan was made; nothing was applied, run \
                 apply again"
                    .into(),
            ),
            StoreError::Conflict(what) => ApplyError(format!(
                "a {what} in the file is taken; nothing was applied"
            )),
            other => ApplyError(format!("nothing was applied: {other}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One field of a create or update, rendered for people (JSON values; secrets as `MASK`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One client, user or upstream the plan touches.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    pub action: Action,
    pub kind: &'static str,
    pub name: String,
    pub fields: Vec<FieldChange>,
}

/// What applying the file would do, and the writes that do it.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    changes: Vec<Change>,
    /// Secrets generated for new confidential clients that the file gave none: shown once,
    /// after the plan is applied. (client_id, secret).
    generated_secrets: Vec<(String, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records one client or user the plan touches (its writes are pushed separately).
    fn item(&mut self, action: Action, kind: &'static str, name: &str, fields: Vec<FieldChange>) {
        self.items.push(PlanItem {
            action,
            kind,
            name: name.to_owned(),
            fields,
        });
    }

    fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "No changes: the database already matches the file.");
        }
        for item in &self.items {
            let sign = match item.action {
                Action::Create => "+ create",
                Action::Update => "~ update",
                Action::Delete => "- delete",
            };
            writeln!(f, "{sign} {} {}", item.kind, item.name)?;
            for field in &item.fields {
                match (&field.from, &field.to) {
                    (None, Some(to)) => writeln!(f, "    {}: {to}", field.field)?,
                    (Some(from), Some(to)) => writeln!(f, "    {}: {from} -> {to}", field.field)?,
                    (Some(from), None) => writeln!(f, "    {}: {from} -> (none)", field.field)?,
                    (None, None) => writeln!(f, "    {}", field.field)?,
                }
            }
        }
        writeln!(
            f,
            "Plan: {} to create, {} to update, {} to delete.",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Delete)
        )
    }
}

/// What `apply` did.
pub struct Applied {
    pub plan: Plan,
    /// False for `--dry-run` and for an empty plan.
    pub written: bool,
}

impl Applied {
    /// Secrets generated for new clients, to show once. (client_id, secret)
    pub fn generated_secrets(&self) -> &[(String, String)] {
        if self.written {
            &self.plan.generated_secrets
        } else {
            &[]
        }
    }
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub prune: bool,
}

/// Plans `file` against the database and, unless `dry_run`, writes the plan in one
/// transaction. `env` resolves `env:NAME` values.
pub async fn apply(
    app: &App,
    file: &ApplyFile,
    options: ApplyOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Applied, ApplyError> {
    if options.prune && file.client.is_empty() && file.user.is_empty() && file.upstream.is_empty() {
        return Err(ApplyError(
            "--prune with a file that declares no client, no user and no upstream would delete \
             everything; refused (delete them one by one with `client delete`, `user delete` \
             and `upstream delete`)"
                .into(),
        ));
    }
    let now = app.now();
    let mut plan = Plan::default();
    clients::plan(app, file, options.prune, env, now, &mut plan).await?;
    users::plan(app, file, options.prune, env, now, &mut plan).await?;
    upstreams::plan(app, file, options.prune, env, now, &mut plan).await?;
    if options.dry_run || plan.is_empty() {
        return Ok(Applied {
            plan,
            written: false,
        });
    }
    app.store.apply_changes(&plan.changes, now).await?;
    super::clients::forget_cached(app);
    for item in plan.items.iter().filter(|i| i.kind == "upstream") {
        app.upstreams.forget(&item.name);
    }
    for item in &plan.items {
        audit::record(app, audit_event(item)).await;
    }
    Ok(Applied {
        plan,
        written: true,
    })
}

fn audit_event(item: &PlanItem) -> Event {
    let kind = match (item.kind, item.action) {
        ("client", Action::Create) => Kind::ClientCreated,
        ("client", Action::Update) => Kind::ClientUpdated,
        ("client", Action::Delete) => Kind::ClientDeleted,
        ("upstream", Action::Create) => Kind::UpstreamCreated,
        ("upstream", Action::Update) => Kind::UpstreamUpdated,
        ("upstream", Action::Delete) => Kind::UpstreamDeleted,
        (_, Action::Create) => Kind::UserCreated,
        (_, Action::Update) => Kind::UserUpdated,
        (_, Action::Delete) => Kind::UserDeleted,
    };
    let event = Event::new(kind).detail("source", "apply");
    match item.kind {
        "client" => event.client(&item.name),
        "upstream" => event.detail("upstream", item.name.as_str()),
        _ => event.detail("username", item.name.as_str()),
    }
}

/// How many rows one store call lists while a plan reads everything.
const READ_PAGE: u32 = 200;

/// Every row of a paged store list (`list_clients`, `list_users`), following the cursor
/// (`cursor` of the last row) to the end.
async fn read_all<T>(
    mut page: impl AsyncFnMut(Option<String>) -> Result<Vec<T>, StoreError>,
    cursor: impl Fn(&T) -> String,
) -> Result<Vec<T>, ApplyError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let rows = page(after.take()).await?;
        let Some(last) = rows.last() else { break };
        after = Some(cursor(last));
        all.extend(rows);
    }
    Ok(all)
}

/// Takes the naming key (`client_id`, `username`) out of a `[[kind]]` entry and makes sure
/// no other entry of the file has the same name.
fn take_name(
    entry: &mut Map<String, Value>,
    kind: &str,
    key: &str,
    named: &mut std::collections::BTreeSet<String>,
    check: impl FnOnce(String) -> Result<String, ApplyError>,
) -> Result<String, ApplyError> {
    let name = match entry.remove(key) {
        Some(Value::String(name)) => check(name)?,
        _ => {
            return Err(ApplyError(format!(
                "every [[{kind}]] needs a {key} (a string)"
            )));
        }
    };
    if !named.insert(name.clone()) {
        return Err(ApplyError(format!("{kind} {name} is declared twice")));
    }
    Ok(name)
}

/// A secret from the file: only `env:NAME`, naming a set, non-empty variable.
fn secret_from(
    value: &Value,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), ApplyError> {
    let Some(name) = value.as_str().and_then(|v| v.strip_prefix("env:")) else {
        return Err(ApplyError(format!(
            "{what} must be given as \"env:NAME\" (secrets are read from the environment, \
             never written in the file)"
        )));
    };
    match env(name) {
        Some(secret) if !secret.is_empty() => Ok((name.to_owned(), secret)),
        _ => Err(ApplyError(format!(
            "{what}: the environment variable {name} is not set"
        ))),
    }
}

/// The fields of two JSON objects that differ, in key order, rendered as JSON.
fn diff_objects(current: &Map<String, Value>, wanted: &Map<String, Value>) -> Vec<FieldChange> {
    let mut keys: Vec<&String> = current.keys().chain(wanted.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| current.get(*k) != wanted.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            from: current.get(k).map(Value::to_string),
            to: wanted.get(k).map(Value::to_string),
        })
        .collect()
}

/// Every field of a new object, rendered as JSON.
fn all_fields(wanted: &Map<String, Value>) -> Vec<FieldChange> {
    diff_objects(&Map::new(), wanted)
}

#[cfg(test)]
mod tests;
