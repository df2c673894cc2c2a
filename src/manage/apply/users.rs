//! The users of a plan: `[[user]]` entries against the user accounts, matched by username.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{
    Action, ApplyError, ApplyFile, FieldChange, MASK, Plan, READ_PAGE, all_fields, diff_objects,
    read_all, secret_from, take_name,
};
use crate::app::App;
use crate::crypto::{random_secret, random_token};
use crate::manage::users::check_username;
use crate::protocol::admin::claims_from;
use crate::store::{Change, UserRecord};

/// Bytes of randomness in a new user's `sub`, as `manage::users` makes them.
const SUB_BYTES: usize = 16;

/// Every user, by username.
async fn accounts(app: &App) -> Result<BTreeMap<String, UserRecord>, ApplyError> {
    let all = read_all(
        async |after| app.store.list_users(after.as_deref(), READ_PAGE).await,
        |u| u.sub.clone(),
    )
    .await?;
    Ok(all.into_iter().map(|u| (u.username.clone(), u)).collect())
}

fn take_bool(entry: &mut Map<String, Value>, field: &str) -> Result<Option<bool>, ApplyError> {
    match entry.remove(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(ApplyError(format!("{field} must be true or false"))),
    }
}

/// The part of a user the plan compares: claims, and the flags.
fn comparable(record: &UserRecord) -> Result<Map<String, Value>, ApplyError> {
    let mut map = match serde_json::to_value(&record.claims) {
        Ok(Value::Object(map)) => map,
        _ => return Err(ApplyError("user claims could not be rendered".into())),
    };
    map.insert("disabled".into(), Value::Bool(record.disabled));
    map.insert(
        "password_reset_required".into(),
        Value::Bool(record.password_reset_required),
    );
    map.insert("mfa_required".into(), Value::Bool(record.mfa_required));
    Ok(map)
}

pub(super) async fn plan(
    app: &App,
    file: &ApplyFile,
    prune: bool,
    env: &dyn Fn(&str) -> Option<String>,
    now: i64,
    plan: &mut Plan,
) -> Result<(), ApplyError> {
    let current = accounts(app).await?;
    let enabled_now = current.values().filter(|u| !u.disabled).count();
    let mut named = BTreeSet::new();
    let mut enabled_after = 0;
    for entry in &file.user {
        let mut entry = entry.clone();
        let username = take_name(&mut entry, "user", "username", &mut named, |name| {
            Ok(check_username(&name)?)
        })?;
        let what = |e: ApplyError| ApplyError(format!("user {username}: {}", e.0));
        let password = match entry.remove("password") {
            Some(value) => Some(secret_from(&value, "password", env).map_err(what)?),
            None => None,
        };
        if let Some((_, p)) = &password {
            crate::accounts::password::check_new_password(p)
                .map_err(|e| what(ApplyError(e.into())))?;
        }
        let disabled = take_bool(&mut entry, "disabled")
            .map_err(what)?
            .unwrap_or(false);
        let reset = take_bool(&mut entry, "password_reset_required").map_err(what)?;
        // A policy the file does not mention is left as it is, so that a file written before
        // an operator required a second factor does not quietly lift the requirement.
        let mfa = take_bool(&mut entry, "mfa_required").map_err(what)?;
        for field in ["sub", "created_at", "updated_at"] {
            if entry.contains_key(field) {
                return Err(what(ApplyError(format!(
                    "{field} is assigned by the server"
                ))));
            }
        }
        let claims = claims_from(entry).map_err(|e| what(e.into()))?;
        if !disabled {
            enabled_after += 1;
        }
        match current.get(&username) {
            None => {
                // Without a password the account has one nobody knows: it cannot log in
                // until an operator sets one (`user set-password`) or the user resets it.
                let password_hash = match &password {
                    Some((_, p)) => app.passwords.hash(p).await,
                    None => app.passwords.hash(&random_secret()).await,
                }
                .map_err(|e| ApplyError(format!("password hashing failed: {e}")))?;
                let record = UserRecord {
                    sub: random_token(SUB_BYTES),
                    username: username.clone(),
                    password_hash,
                    claims,
                    disabled,
                    password_reset_required: reset.unwrap_or(false),
                    mfa_required: mfa.unwrap_or(false),
                    created_at: now,
                    updated_at: now,
                };
                let mut fields = all_fields(&comparable(&record)?);
                fields.push(FieldChange {
                    field: "password".into(),
                    from: None,
                    to: Some(match &password {
                        Some((name, _)) => format!("{MASK} (from env:{name})"),
                        None => "(none: cannot log in until one is set)".into(),
                    }),
                });
                plan.changes.push(Change::InsertUser(record));
                plan.item(Action::Create, "user", &username, fields);
            }
            Some(record) => {
                let wanted = UserRecord {
                    claims,
                    disabled,
                    password_reset_required: reset.unwrap_or(record.password_reset_required),
                    mfa_required: mfa.unwrap_or(record.mfa_required),
                    updated_at: now,
                    ..record.clone()
                };
                let mut fields = diff_objects(&comparable(record)?, &comparable(&wanted)?);
                // A password is salted: the only way to know whether it changed is to check
                // the one from the environment against the stored hash.
                let mut new_hash = None;
                if let Some((name, p)) = &password {
                    let same = app
                        .passwords
                        .verify(p, Some(&record.password_hash))
                        .await
                        .map_err(|e| ApplyError(format!("password check failed: {e}")))?;
                    if !same {
                        new_hash =
                            Some(app.passwords.hash(p).await.map_err(|e| {
                                ApplyError(format!("password hashing failed: {e}"))
                            })?);
                        fields.push(FieldChange {
                            field: "password".into(),
                            from: Some(MASK.into()),
                            to: Some(format!("{MASK} (from env:{name})")),
                        });
                    }
                }
                if fields.is_empty() {
                    continue;
                }
                if let Some(password_hash) = new_hash {
                    // First, as `manage::users::patch` does: setting a password clears the
                    // reset flag, and the update after it writes the flag the file asks for.
                    plan.changes.push(Change::SetPassword {
                        sub: record.sub.clone(),
                        password_hash,
                    });
                }
                let end_access = (wanted.disabled && !record.disabled)
                    || (wanted.password_reset_required && !record.password_reset_required);
                plan.changes.push(Change::UpdateUser {
                    user: wanted,
                    end_access,
                });
                plan.item(Action::Update, "user", &username, fields);
            }
        }
    }
    if prune {
        for (username, record) in current.iter().filter(|(name, _)| !named.contains(*name)) {
            plan.changes.push(Change::DeleteUser(record.sub.clone()));
            plan.item(Action::Delete, "user", username, Vec::new());
        }
    } else {
        enabled_after += current
            .iter()
            .filter(|(name, u)| !named.contains(*name) && !u.disabled)
            .count();
    }
    if enabled_now > 0 && enabled_after == 0 {
        return Err(ApplyError(
            "this file would leave no enabled user, locking every person out; refused \
             (disable or delete the last users one by one with `user` commands if you mean it)"
                .into(),
        ));
    }
    Ok(())
}
