//! The clients of a plan: `[[client]]` entries against the registered clients.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{
    Action, ApplyError, ApplyFile, FieldChange, MASK, Plan, READ_PAGE, all_fields, diff_objects,
    read_all, secret_from, take_name,
};
use crate::app::App;
use crate::crypto::random_secret;
use crate::manage::clients::{check_key_source, check_same_kind};
use crate::protocol::admin::parse_client_registration;
use crate::protocol::client::ClientMetadata;
use crate::store::{Change, ClientRecord, NewClientSecret};

/// The longest client id a file may choose, and its characters: RFC 6749 allows any
/// printable ASCII, these are the ones that need no escaping in a URL or a shell.
const MAX_CLIENT_ID_LEN: usize = 128;

fn check_client_id(id: String) -> Result<String, ApplyError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if ok {
        Ok(id)
    } else {
        Err(ApplyError(format!(
            "client_id `{id}`: 1 to {MAX_CLIENT_ID_LEN} characters of A-Z a-z 0-9 - _ . ~"
        )))
    }
}

/// Everything registered, by id.
async fn registered(app: &App) -> Result<BTreeMap<String, ClientRecord>, ApplyError> {
    let all = read_all(
        async |after| app.store.list_clients(after.as_deref(), READ_PAGE).await,
        |c| c.client_id.clone(),
    )
    .await?;
    Ok(all.into_iter().map(|c| (c.client_id.clone(), c)).collect())
}

fn metadata_object(metadata: &ClientMetadata) -> Result<Map<String, Value>, ApplyError> {
    match serde_json::to_value(metadata) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApplyError("client metadata could not be rendered".into())),
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
    for entry in &file.client {
        let mut entry = entry.clone();
        let client_id = take_name(
            &mut entry,
            "client",
            "client_id",
            &mut named,
            check_client_id,
        )?;
        let what = |e: ApplyError| ApplyError(format!("client {client_id}: {}", e.0));
        let secret = match entry.remove("client_secret") {
            Some(value) => Some(secret_from(&value, "client_secret", env).map_err(what)?),
            None => None,
        };
        let document =
            serde_json::to_vec(&Value::Object(entry)).map_err(|e| ApplyError(e.to_string()))?;
        let metadata = parse_client_registration(&document)
            .and_then(|r| r.validate())
            .map_err(|e| what(e.into()))?;
        check_key_source(app, &metadata).map_err(|e| what(e.into()))?;
        let uses_secret = metadata.token_endpoint_auth_method.uses_secret();
        if secret.is_some() && !uses_secret {
            return Err(what(ApplyError(
                "client_secret is given, but its token_endpoint_auth_method uses none".into(),
            )));
        }
        let wanted = metadata_object(&metadata)?;
        match current.get(&client_id) {
            None => {
                let mut fields = all_fields(&wanted);
                let (hash, shown) = match (&secret, uses_secret) {
                    (Some((name, value)), _) => (
                        Some(app.hasher.hash(value)),
                        format!("{MASK} (from env:{name})"),
                    ),
                    (None, true) => {
                        let generated = random_secret();
                        let hash = app.hasher.hash(&generated);
                        plan.generated_secrets.push((client_id.clone(), generated));
                        (
                            Some(hash),
                            format!("{MASK} (generated, shown once after apply)"),
                        )
                    }
                    (None, false) => (None, String::new()),
                };
                if hash.is_some() {
                    fields.push(FieldChange {
                        field: "client_secret".into(),
                        from: None,
                        to: Some(shown),
                    });
                }
                plan.changes.push(Change::InsertClient(ClientRecord {
                    client_id: client_id.clone(),
                    secret_created_at: hash.as_ref().map(|_| now),
                    secret_hash: hash,
                    secret_expires_at: None,
                    previous_secret: None,
                    metadata,
                    issued_at: now,
                    updated_at: now,
                }));
                plan.item(Action::Create, "client", &client_id, fields);
            }
            Some(record) => {
                check_same_kind(&record.metadata, &metadata).map_err(|e| what(e.into()))?;
                let mut fields = diff_objects(&metadata_object(&record.metadata)?, &wanted);
                if !fields.is_empty() {
                    plan.changes.push(Change::UpdateClientMetadata {
                        client_id: client_id.clone(),
                        metadata,
                    });
                }
                // The keyed hash is deterministic: the same secret gives the same hash, so
                // an unchanged secret is recognised without ever storing it.
                if let Some((name, value)) = &secret {
                    let hash = app.hasher.hash(value);
                    if record.secret_hash.as_deref() != Some(hash.as_slice()) {
                        fields.push(FieldChange {
                            field: "client_secret".into(),
                            from: Some(MASK.into()),
                            to: Some(format!("{MASK} (from env:{name})")),
                        });
                        plan.changes.push(Change::SetClientSecret {
                            client_id: client_id.clone(),
                            secret: NewClientSecret {
                                hash,
                                created_at: now,
                                expires_at: None,
                            },
                        });
                    }
                }
                if !fields.is_empty() {
                    plan.item(Action::Update, "client", &client_id, fields);
                }
            }
        }
    }
    if prune {
        for client_id in current.keys().filter(|id| !named.contains(*id)) {
            plan.changes.push(Change::DeleteClient(client_id.clone()));
            plan.item(Action::Delete, "client", client_id, Vec::new());
        }
    }
    Ok(())
}
