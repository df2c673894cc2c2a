//! Which local user an upstream identity is. The rules, in order:
//!
//! 1. An identity (upstream id + subject) already linked is its linked user, always.
//! 2. With `link_existing: "verified_email"`, an unknown identity whose upstream says
//!    `email_verified: true` links to the one local user whose stored email is the same and
//!    verified. An unverified (or absent) email never links, nor does an email that two
//!    local users share.
//! 3. With `create_users`, an unknown identity gets a new user (random `sub`, no usable
//!    password, claims copied through the `claims` mapping) linked to it.
//! 4. Otherwise nobody signs in with it.
//!
//! A link is one insert keyed by the identity (`UpstreamStore::link_identity`), so of two
//! nodes racing for one identity exactly one links; the loser uses the winner's user (and a
//! user it had created for nothing is deleted).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_token;
use crate::protocol::OAuthError;
use crate::protocol::upstream::{LinkExisting, UpstreamSettings};
use crate::protocol::user::{UserClaims, canonical_username};
use crate::store::{IdentityRecord, StoreError, Unlinked, UserRecord};

/// Longest upstream subject kept (OpenID Connect Core §2 allows 255 ASCII characters).
pub const MAX_SUBJECT_LEN: usize = 255;

/// What an upstream said about the person.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// True only when the upstream said `email_verified: true` (or the string `"true"`,
    /// which some providers send).
    pub email_verified: bool,
    /// The upstream's `amr` values, when it sent any.
    pub amr: Vec<String>,
    pub claims: Map<String, Value>,
}

impl Identity {
    pub fn from_claims(subject: String, claims: Map<String, Value>) -> Identity {
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let email_verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
            || claims.get("email_verified").and_then(Value::as_str) == Some("true");
        let amr = claims
            .get("amr")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Identity {
            subject,
            email,
            email_verified,
            amr,
            claims,
        }
    }
}

/// The local user of an identity, and how it was found.
#[derive(Debug)]
pub enum Resolution {
    Existing(UserRecord),
    Linked(UserRecord),
    Created(UserRecord),
    NoAccount,
}

/// Applies the rules above.
pub async fn resolve(
    app: &App,
    settings: &UpstreamSettings,
    identity: &Identity,
) -> Result<Resolution, OAuthError> {
    let subject = &identity.subject;
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Ok(Resolution::NoAccount);
    }
    if let Some(user) = linked_user(app, &settings.id, subject).await? {
        return Ok(Resolution::Existing(user));
    }
    if settings.link_existing == LinkExisting::VerifiedEmail
        && identity.email_verified
        && let Some(email) = &identity.email
    {
        let candidates = app.store.users_with_verified_email(email, 2).await?;
        if let [user] = candidates.as_slice() {
            return link(app, settings, subject, user.clone(), Resolution::Linked).await;
        }
    }
    if settings.create_users {
        let user = new_user(app, settings, identity).await?;
        return link(app, settings, subject, user, Resolution::Created).await;
    }
    Ok(Resolution::NoAccount)
}

async fn linked_user(
    app: &App,
    upstream: &str,
    subject: &str,
) -> Result<Option<UserRecord>, OAuthError> {
    let Some(sub) = app.store.identity_user(upstream, subject).await? else {
        return Ok(None);
    };
    Ok(app.store.get_user(&sub).await?)
}

/// Links `subject` to `user`; when another request linked it first, that link wins.
async fn link(
    app: &App,
    settings: &UpstreamSettings,
    subject: &str,
    user: UserRecord,
    how: fn(UserRecord) -> Resolution,
) -> Result<Resolution, OAuthError> {
    let record = IdentityRecord {
        upstream_id: settings.id.clone(),
        subject: subject.to_owned(),
        user_sub: user.sub.clone(),
        created_at: app.now(),
    };
    let created = matches!(how(user.clone()), Resolution::Created(_));
    if app.store.link_identity(&record).await? {
        audit::record(
            app,
            Event::new(Kind::IdentityLinked)
                .user(&user.sub)
                .detail("upstream", settings.id.clone())
                .detail("created", created),
        )
        .await;
        return Ok(how(user));
    }
    if created {
        app.store.delete_user(&user.sub, app.now()).await?;
    }
    match linked_user(app, &settings.id, subject).await? {
        Some(winner) => Ok(Resolution::Existing(winner)),
        None => Ok(Resolution::NoAccount),
    }
}

/// What linking an identity to a signed-in user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// It was linked to this user already.
    AlreadyYours,
    /// It is linked to another local user: it stays theirs (an identity is one user).
    SomeoneElses,
}

/// Links `identity` of upstream `upstream_id` to the signed-in user `user_sub` (the account
/// page's "link"): the insert keyed by the identity decides, so a link never moves.
pub async fn link_to_user(
    app: &App,
    upstream_id: &str,
    identity: &Identity,
    user_sub: &str,
) -> Result<LinkOutcome, OAuthError> {
    let subject = &identity.subject;
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Ok(LinkOutcome::SomeoneElses);
    }
    let record = IdentityRecord {
        upstream_id: upstream_id.to_owned(),
        subject: subject.to_owned(),
        user_sub: user_sub.to_owned(),
        created_at: app.now(),
    };
    if app.store.link_identity(&record).await? {
        audit::record(
            app,
            Event::new(Kind::IdentityLinked)
                .user(user_sub)
                .detail("upstream", upstream_id.to_owned())
                .detail("created", false)
                .detail("by", "user"),
        )
        .await;
        crate::telemetry::upstream_login(upstream_id, "linked");
        return Ok(LinkOutcome::Linked);
    }
    match app.store.identity_user(upstream_id, subject).await? {
        Some(owner) if owner == user_sub => Ok(LinkOutcome::AlreadyYours),
        _ => Ok(LinkOutcome::SomeoneElses),
    }
}

/// Removes the signed-in user's link of an identity, unless it is their last way to sign in
/// (`UpstreamStore::unlink_identity` decides, atomically). Audited when done.
pub async fn unlink(
    app: &App,
    user_sub: &str,
    upstream_id: &str,
    subject: &str,
) -> Result<Unlinked, OAuthError> {
    let outcome = app
        .store
        .unlink_identity(user_sub, upstream_id, subject)
        .await?;
    if outcome == Unlinked::Done {
        audit::record(
            app,
            Event::new(Kind::IdentityUnlinked)
                .user(user_sub)
                .detail("upstream", upstream_id.to_owned()),
        )
        .await;
    }
    Ok(outcome)
}

/// The claims mapping used when the operator gives none.
fn default_mapping() -> BTreeMap<String, String> {
    [
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "email",
        "picture",
        "locale",
    ]
    .into_iter()
    .map(|c| (c.to_owned(), c.to_owned()))
    .collect()
}

/// A new user for an identity: claims through the mapping, a username from the mapped
/// `username` claim (else `{upstream}-{random}`), and a password hash no password matches.
async fn new_user(
    app: &App,
    settings: &UpstreamSettings,
    identity: &Identity,
) -> Result<UserRecord, OAuthError> {
    let mapping = if settings.claims.is_empty() {
        default_mapping()
    } else {
        settings.claims.clone()
    };
    let mut local = Map::new();
    let mut username = None;
    for (local_name, upstream_name) in &mapping {
        let value = match identity.claims.get(upstream_name) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        if local_name == "username" {
            username = Some(value);
        } else {
            local.insert(local_name.clone(), Value::String(value));
        }
    }
    // The email is verified locally only when it is the one the upstream verified.
    if let Some(Value::String(email)) = local.get("email") {
        let verified = identity.email_verified && identity.email.as_deref() == Some(email);
        local.insert("email_verified".to_owned(), Value::Bool(verified));
    }
    let claims: UserClaims = serde_json::from_value(Value::Object(local)).unwrap_or_default();
    let now = app.now();
    let mut candidates: Vec<String> = Vec::new();
    if let Some(name) = username.and_then(|n| canonical_username(&n).ok()) {
        candidates.push(name);
    }
    candidates.push(format!("{}-{}", settings.id, random_token(9)));
    for username in candidates {
        let record = UserRecord {
            sub: random_token(16),
            username,
            // Not a PHC string: no password ever verifies against it.
            password_hash: "!upstream".to_owned(),
            claims: claims.clone(),
            disabled: false,
            password_reset_required: false,
            // Set by an operator (`PATCH /admin/users/{sub}`) like any user's.
            mfa_required: false,
            created_at: now,
            updated_at: now,
        };
        match app.store.insert_user(&record).await {
            Ok(()) => {
                audit::record(
                    app,
                    Event::new(Kind::UserCreated)
                        .user(&record.sub)
                        .detail("upstream", settings.id.clone()),
                )
                .await;
                return Ok(record);
            }
            Err(StoreError::Conflict("username")) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::new(
        crate::protocol::ErrorCode::ServerError,
        "no free username for a new user",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_true_email_verified_counts() {
        let id = |v: Value| {
            let mut m = Map::new();
            m.insert("email".into(), "a@example.com".into());
            m.insert("email_verified".into(), v);
            Identity::from_claims("s".into(), m)
        };
        assert!(id(Value::Bool(true)).email_verified);
        assert!(id("true".into()).email_verified);
        assert!(!id(Value::Bool(false)).email_verified);
        assert!(!id("false".into()).email_verified);
        assert!(!id(Value::Null).email_verified);
        assert!(!id(1.into()).email_verified);
        let none = Identity::from_claims("s".into(), Map::new());
        assert!(!none.email_verified);
        assert_eq!(none.email, None);
    }
}
