//! User accounts: creation, listing, partial update (including disabling), deletion and
//! password changes.
//!
//! Passwords are checked for length, hashed with argon2id off the async executor, and never
//! returned or logged. Anything that should end a user's access (disabling, a new password,
//! deletion) ends it at once: sessions are deleted, and on disabling every refresh-token
//! family is revoked, which also makes the family's access tokens introspect as inactive.

use crate::accounts::email_links;
use crate::accounts::factors;
use crate::accounts::password::check_new_password;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::crypto::random_token;
use crate::protocol::admin::{
    IdentityResponse, ListResponse, TotpProvisioned, UserCreate, UserPatch, UserResponse,
    merge_claims,
};
use crate::protocol::user::canonical_username;
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{StoreError, UserRecord};

use super::Page;

/// Bytes of randomness in a `sub`: 128 bits. OpenID Connect Core §2 wants a locally unique
/// identifier that is never reassigned; random ids also reveal nothing about sign-up order.
const SUB_BYTES: usize = 16;
fn not_found(sub: &str) -> OAuthError {
    OAuthError::new(ErrorCode::NotFound, format!("no user with sub `{sub}`"))
}

fn answer(record: UserRecord) -> UserResponse {
    UserResponse {
        sub: record.sub,
        username: record.username,
        claims: record.claims,
        disabled: record.disabled,
        password_reset_required: record.password_reset_required,
        mfa_required: record.mfa_required,
        factors: None,
        created_at: record.created_at,
        updated_at: record.updated_at,
        identities: None,
    }
}

/// The username to store: `protocol::user::canonical_username` (NFKC, one script, no
/// control, invisible or surrounding whitespace characters), refused as `invalid_request`.
/// The CLI reaches it through the same `create` and `patch`.
pub fn check_username(username: &str) -> Result<String, OAuthError> {
    canonical_username(username).map_err(OAuthError::invalid_request)
}

fn check_password(password: &str) -> Result<(), OAuthError> {
    check_new_password(password).map_err(OAuthError::invalid_request)
}

async fn hash_password(app: &App, password: &str) -> Result<String, OAuthError> {
    app.passwords
        .hash(password)
        .await
        .map_err(OAuthError::server_error)
}

/// The store reports a taken username as a unique-constraint conflict; that is the caller's
/// error (409), anything else is ours.
fn username_conflict(username: &str) -> impl FnOnce(StoreError) -> OAuthError + '_ {
    move |e| match e {
        StoreError::Conflict("username") => OAuthError::new(
            ErrorCode::Conflict,
            format!("the username `{username}` is taken"),
        ),
        other => other.into(),
    }
}

/// Creates a user with a new random `sub`.
pub async fn create(app: &App, request: UserCreate) -> Result<UserResponse, OAuthError> {
    let username = check_username(&request.username)?;
    check_password(&request.password)?;
    let password_hash = hash_password(app, &request.password).await?;
    let now = app.now();
    let mut claims = request.claims;
    let declared = claims.email_verified == Some(true);
    let verify = awaits_verification(app, None, &mut claims, declared);
    let record = UserRecord {
        sub: random_token(SUB_BYTES),
        username,
        password_hash,
        claims,
        disabled: request.disabled,
        password_reset_required: request.password_reset_required,
        mfa_required: request.mfa_required,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_user(&record)
        .await
        .map_err(username_conflict(&record.username))?;
    audit::record(app, Event::new(Kind::UserCreated).user(&record.sub)).await;
    if verify {
        email_links::send_verification(app, &record, "").await?;
    }
    // A new user has no factors yet; the answer has the shape of `get`'s.
    let mut user = answer(record);
    user.factors = Some(Vec::new());
    Ok(user)
}

/// One page of users, ordered by `sub`.
pub async fn list(app: &App, page: &Page) -> Result<ListResponse<UserResponse>, OAuthError> {
    let records = app
        .store
        .list_users(page.after.as_deref(), page.limit)
        .await?;
    let next = page.next(&records, |r| r.sub.as_str());
    Ok(ListResponse {
        items: records.into_iter().map(answer).collect(),
        next,
    })
}

/// A user with their second factors (never a secret of one) and the upstream identities
/// linked to it.
pub async fn get(app: &App, sub: &str) -> Result<UserResponse, OAuthError> {
    let Some(record) = app.store.get_user(sub).await? else {
        return Err(not_found(sub));
    };
    let factors = factors::list(app, sub).await?;
    let identities = app
        .store
        .identities_of_user(sub)
        .await?
        .into_iter()
        .map(|i| IdentityResponse {
            upstream: i.upstream_id,
            subject: i.subject,
        })
        .collect();
    Ok(UserResponse {
        factors: Some(factors),
        identities: Some(identities),
        ..answer(record)
    })
}

/// Removes factor `id` of user `sub` (audited as the operator's).
pub async fn delete_factor(app: &App, sub: &str, id: &str) -> Result<(), OAuthError> {
    if app.store.get_user(sub).await?.is_none() {
        return Err(not_found(sub));
    }
    if !factors::remove(app, sub, id, factors::RemovedBy::Admin).await? {
        return Err(OAuthError::new(
            ErrorCode::NotFound,
            format!("user `{sub}` has no factor `{id}`"),
        ));
    }
    Ok(())
}

/// Provisions a TOTP authenticator for `sub` (replacing any they had); the secret is in the
/// answer this once.
pub async fn provision_totp(app: &App, sub: &str) -> Result<TotpProvisioned, OAuthError> {
    let user = app
        .store
        .get_user(sub)
        .await?
        .ok_or_else(|| not_found(sub))?;
    factors::provision_totp(app, sub, &user.username).await
}

/// Applies a partial update. Everything is validated (and a new password hashed) before
/// anything is written, so a refused patch changes nothing.
///
/// Disabling ends the user's sessions and revokes every refresh-token family at once; the
/// login check refuses disabled users from then on. Requiring a password reset does the same
/// (the password is no longer trusted, so neither is what was won with it), and the next
/// login must choose a new password. A new password alone ends the sessions too, so
/// whoever knew the old one is signed out everywhere; refresh tokens, which apps hold rather
/// than people, are left alone unless the user is also disabled.
pub async fn patch(app: &App, sub: &str, patch: UserPatch) -> Result<UserResponse, OAuthError> {
    let current = app
        .store
        .get_user(sub)
        .await?
        .ok_or_else(|| not_found(sub))?;
    let username = match &patch.username {
        Some(username) => Some(check_username(username)?),
        None => None,
    };
    if let Some(password) = &patch.password {
        check_password(password)?;
    }
    let mut claims = merge_claims(&current.claims, &patch.claims)?;
    let verify = awaits_verification(
        app,
        current.claims.email.as_deref(),
        &mut claims,
        patch
            .claims
            .get("email_verified")
            .and_then(serde_json::Value::as_bool)
            == Some(true),
    );
    let new_hash = match &patch.password {
        Some(password) => Some(hash_password(app, password).await?),
        None => None,
    };
    let now = app.now();
    let updated = UserRecord {
        username: username.unwrap_or_else(|| current.username.clone()),
        claims,
        disabled: patch.disabled.unwrap_or(current.disabled),
        password_reset_required: patch
            .password_reset_required
            .unwrap_or(current.password_reset_required),
        mfa_required: patch.mfa_required.unwrap_or(current.mfa_required),
        updated_at: now,
        ..current
    };
    // The password first: setting one clears password_reset_required, and the update after
    // it writes the flag this patch asked for (an operator may set a temporary password and
    // require a new one in the same call).
    if let Some(hash) = &new_hash
        && !app.store.set_password(sub, hash, now).await?
    {
        return Err(not_found(sub));
    }
    let found = app
        .store
        .update_user(&updated)
        .await
        .map_err(username_conflict(&updated.username))?;
    if !found {
        return Err(not_found(sub));
    }
    if patch.disabled == Some(true) {
        end_access(app, sub, true, now).await?;
        audit::record(app, Event::new(Kind::UserDisabled).user(sub)).await;
    } else if patch.password_reset_required == Some(true) {
        // The password is no longer trusted: whoever holds a session or a token family won
        // with it loses them, and the next login must choose a new one.
        end_access(app, sub, true, now).await?;
    } else if new_hash.is_some() {
        end_access(app, sub, false, now).await?;
    }
    if new_hash.is_some() {
        audit::record(app, Event::new(Kind::PasswordChanged).user(sub)).await;
    }
    audit::record(app, Event::new(Kind::UserUpdated).user(sub)).await;
    if verify {
        email_links::send_verification(app, &updated, "").await?;
    }
    let mut user = answer(updated);
    user.factors = Some(factors::list(app, sub).await?);
    Ok(user)
}

/// Whether a new or changed email address must be verified by mail (mail on, and the
/// operator did not declare it verified in the same request); if so, marks it unverified in
/// `claims` until the link is used. `declared_verified`: the request itself says
/// `"email_verified": true`.
fn awaits_verification(
    app: &App,
    before: Option<&str>,
    claims: &mut crate::protocol::user::UserClaims,
    declared_verified: bool,
) -> bool {
    if app.mailer.is_none()
        || declared_verified
        || !email_links::needs_verification(before, claims.email.as_deref())
    {
        return false;
    }
    claims.email_verified = Some(false);
    true
}

/// Sets a new password and ends the user's sessions.
pub async fn set_password(app: &App, sub: &str, password: &str) -> Result<(), OAuthError> {
    check_password(password)?;
    let hash = hash_password(app, password).await?;
    let now = app.now();
    if !app.store.set_password(sub, &hash, now).await? {
        return Err(not_found(sub));
    }
    end_access(app, sub, false, now).await?;
    audit::record(app, Event::new(Kind::PasswordChanged).user(sub)).await;
    Ok(())
}

/// Deletes the user; the store ends its sessions (their clients notified: back-channel
/// logout), deletes its codes, refresh tokens and consents and revokes its grants in the same
/// transaction (`latchkey apply --prune` takes the same path).
pub async fn delete(app: &App, sub: &str) -> Result<(), OAuthError> {
    if !app.store.delete_user(sub, app.now()).await? {
        return Err(not_found(sub));
    }
    audit::record(app, Event::new(Kind::UserDeleted).user(sub)).await;
    Ok(())
}

/// Ends every browser session of a user (`DELETE /admin/users/{sub}/sessions`); the clients
/// that took part in them are notified (back-channel logout). Returns how many ended.
pub async fn end_sessions(app: &App, sub: &str) -> Result<u64, OAuthError> {
    if app.store.get_user(sub).await?.is_none() {
        return Err(not_found(sub));
    }
    let ended = app.store.delete_sessions_for_user(sub, app.now()).await?;
    audit::record(
        app,
        Event::new(Kind::SessionsEnded)
            .user(sub)
            .detail("sessions", ended),
    )
    .await;
    Ok(ended)
}

/// Ends the user's browser sessions, and with `revoke_grants` every token family of theirs.
async fn end_access(app: &App, sub: &str, revoke_grants: bool, now: i64) -> Result<(), OAuthError> {
    app.store.delete_sessions_for_user(sub, now).await?;
    if revoke_grants {
        app.store.revoke_grants_for_user(sub, None, now).await?;
    }
    Ok(())
}
