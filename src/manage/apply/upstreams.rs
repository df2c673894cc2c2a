//! The upstreams of a plan: `[[upstream]]` entries against the registered upstream identity
//! providers, matched by `id`. Each entry is the document `POST /admin/upstreams` takes and
//! goes through the same parser and checks (settings, URLs under the outbound rules); its
//! `client_secret` only as `env:NAME`. A stored secret is sealed with a random nonce, so it is
//! opened to tell whether the file's is the same one; the plan shows neither.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{
    Action, ApplyError, ApplyFile, FieldChange, MASK, Plan, PlanItem, all_fields, diff_objects,
    secret_from,
};
use crate::app::App;
use crate::crypto::constant_time_eq;
use crate::manage::upstreams::check;
use crate::protocol::upstream::{UpstreamSettings, check_secret, parse_upstream};
use crate::store::{Change, UpstreamRecord};
use crate::upstream;

/// Every registered upstream, by id.
async fn registered(app: &App) -> Result<BTreeMap<String, UpstreamRecord>, ApplyError> {
    let mut all = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = app.store.list_upstreams(after.as_deref(), 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.settings.id.clone());
        for record in page {
            all.insert(record.settings.id.clone(), record);
        }
    }
    Ok(all)
}

fn settings_object(settings: &UpstreamSettings) -> Result<Map<String, Value>, ApplyError> {
    match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApplyError("upstream settings could not be rendered".into())),
    }
}

pub(super) async fn plan(
    app: &App,
    file: &ApplyFile,
    prune: bool,
    env: &dyn Fn(&str) -> Option<String>,
    now: i64,
    plan: &mut Plan,
) -> Result<(), ApplyError> {
    let current = registered(app).await?;
    let mut named = BTreeSet::new();
    for entry in &file.upstream {
        let mut entry = entry.clone();
        let id = match entry.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => {
                return Err(ApplyError(
                    "every [[upstream]] needs an id (a string)".into(),
                ));
            }
        };
        if !named.insert(id.clone()) {
            return Err(ApplyError(format!("upstream {id} is declared twice")));
        }
        let what = |e: ApplyError| ApplyError(format!("upstream {id}: {}", e.0));
        let secret = match entry.remove("client_secret") {
            Some(value) => Some(secret_from(&value, "client_secret", env).map_err(what)?),
            None => None,
        };
        let document =
            serde_json::to_vec(&Value::Object(entry)).map_err(|e| ApplyError(e.to_string()))?;
        let mut settings = parse_upstream(&document)
            .map_err(|e| what(e.into()))?
            .settings;
        check(app, &mut settings).map_err(|e| what(e.into()))?;
        if let Some((_, value)) = &secret {
            check_secret(value).map_err(|e| what(e.into()))?;
        }
        let wanted = settings_object(&settings)?;
        match current.get(&id) {
            None => {
                let Some((name, value)) = &secret else {
                    return Err(what(ApplyError(
                        "a new upstream needs its client_secret (as \"env:NAME\")".into(),
                    )));
                };
                let mut fields = all_fields(&wanted);
                fields.push(FieldChange {
                    field: "client_secret".into(),
                    from: None,
                    to: Some(format!("{MASK} (from env:{name})")),
                });
                plan.changes.push(Change::InsertUpstream(UpstreamRecord {
                    secret_sealed: upstream::seal_secret(app, &id, value)
                        .map_err(|e| what(e.into()))?,
                    settings,
                    created_at: now,
                    updated_at: now,
                }));
                plan.items.push(PlanItem {
                    action: Action::Create,
                    kind: "upstream",
                    name: id,
                    fields,
                });
            }
            Some(record) => {
                let mut fields = diff_objects(&settings_object(&record.settings)?, &wanted);
                let mut secret_sealed = record.secret_sealed.clone();
                if let Some((name, value)) = &secret {
                    // A stored secret that no longer opens (another master key) is replaced.
                    let same = upstream::open_secret(app, &id, &record.secret_sealed)
                        .is_ok_and(|stored| constant_time_eq(stored.as_bytes(), value.as_bytes()));
                    if !same {
                        fields.push(FieldChange {
                            field: "client_secret".into(),
                            from: Some(MASK.into()),
                            to: Some(format!("{MASK} (from env:{name})")),
                        });
                        secret_sealed =
                            upstream::seal_secret(app, &id, value).map_err(|e| what(e.into()))?;
                    }
                }
                if !fields.is_empty() {
                    plan.changes.push(Change::UpdateUpstream(UpstreamRecord {
                        settings,
                        secret_sealed,
                        created_at: record.created_at,
                        updated_at: now,
                    }));
                    plan.items.push(PlanItem {
                        action: Action::Update,
                        kind: "upstream",
                        name: id,
                        fields,
                    });
                }
            }
        }
    }
    if prune {
        for id in current.keys().filter(|id| !named.contains(*id)) {
            plan.changes.push(Change::DeleteUpstream(id.clone()));
            plan.items.push(PlanItem {
                action: Action::Delete,
                kind: "upstream",
                name: id.clone(),
                fields: Vec::new(),
            });
        }
    }
    Ok(())
}
