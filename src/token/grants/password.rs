//! `grant_type=password` (RFC 6749 §4.3). Legacy, for migrations only: off unless
//! `LATCHKEY_ENABLE_PASSWORD_GRANT=true` and the client lists it in `grant_types`. It checks
//! the password exactly as the login page does.

use std::sync::Arc;

use crate::accounts::login::LoginOutcome;
use crate::app::App;
use crate::crypto::random_token;
use crate::protocol::OAuthError;
use crate::protocol::form::Params;
use crate::store::{ClientRecord, GrantRecord, RefreshTokenRecord};
use crate::token::{GrantOutcome, RefreshPlan, UserContext, audience, wants_refresh_token};

pub async fn validate(
    app: &App,
    client: Arc<ClientRecord>,
    params: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<GrantOutcome, OAuthError> {
    let username = params
        .get("username")
        .ok_or_else(|| OAuthError::invalid_request("username is required"))?;
    let password = params
        .get("password")
        .ok_or_else(|| OAuthError::invalid_request("password is required"))?;
    let registered = client.metadata.registered_scope();
    let scope = match super::requested_scope(params)? {
        None => registered.clone(),
        Some(requested) => {
            if !requested.is_subset_of(&registered) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds what this client registered",
                ));
            }
            requested
        }
    };
    let resource = params.get("resource");
    let audience = audience(&client, resource)?;
    // Usernames never contain control characters (the admin API refuses them), and some
    // databases reject such strings outright (Postgres text cannot hold NUL): look up a name
    // that cannot exist instead, so the answer and the work done are those of an unknown user.
    let username = if username.chars().any(char::is_control) {
        ""
    } else {
        username
    };
    let user = match crate::accounts::login::check_credentials(
        app,
        username,
        password,
        ip,
        Some(&client.client_id),
    )
    .await?
    {
        // A forced password change happens on the login page; a legacy password-grant client
        // cannot offer it, so the grant waits until the user has chosen a new password.
        LoginOutcome::Success(user) if user.password_reset_required => {
            return Err(OAuthError::invalid_grant(
                "the user must choose a new password first (sign in through the browser)",
            ));
        }
        // The "check your mail" stage lives in the browser flow; the grant waits for it.
        LoginOutcome::Success(user)
            if app.config.require_verified_email
                && !crate::accounts::email_links::is_verified(&user) =>
        {
            return Err(OAuthError::invalid_grant(
                "the user must verify their email address first (sign in through the browser)",
            ));
        }
        LoginOutcome::Success(user) => {
            // The password grant has no second step: a user who has or must use a second
            // factor cannot be signed in with the password alone.
            let standing = crate::accounts::factors::standing(app, &user.sub)
                .await?
                .unwrap_or_default();
            if standing.mfa_required || standing.has_second_factor() || client.metadata.require_mfa
            {
                return Err(OAuthError::invalid_grant(
                    "this account uses a second factor: sign in through the browser",
                ));
            }
            let succeeded =
                crate::accounts::login::succeeded(&user.sub, ip, Some(&client.client_id));
            crate::audit::record(app, succeeded).await;
            user
        }
        LoginOutcome::Failed => {
            return Err(OAuthError::invalid_grant(
                "the username or password is wrong",
            ));
        }
        LoginOutcome::Throttled { retry_after } => return Err(OAuthError::slow_down(retry_after)),
        // Nobody reads this answer; it only has to stay quiet in the logs.
        LoginOutcome::ClientLeft => {
            return Err(OAuthError::invalid_request("the client left"));
        }
    };
    let now = app.now();
    let grant_id = random_token(16);
    let sid = random_token(16);
    let refreshable = wants_refresh_token(&client, &scope);
    app.store
        .insert_grant(&GrantRecord {
            grant_id: grant_id.clone(),
            client_id: client.client_id.clone(),
            user_sub: user.sub.clone(),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + super::grant_lifetime(&app.config, refreshable),
            revoked_at: None,
        })
        .await?;
    let refresh = if refreshable {
        RefreshPlan::Start(Box::new(RefreshTokenRecord {
            generation: 0,
            token_hash: Vec::new(),
            grant_id: grant_id.clone(),
            client_id: client.client_id.clone(),
            user_sub: user.sub.clone(),
            scope: scope.to_string(),
            sid: sid.clone(),
            auth_time: now,
            amr: "pwd".into(),
            resource: resource.map(str::to_owned),
            created_at: now,
            idle_expires_at: now + app.config.refresh_token_idle_ttl,
            expires_at: now + app.config.refresh_token_ttl,
            // Bound by `token::issue` when the request carried a DPoP proof.
            dpop_jkt: None,
        }))
    } else {
        RefreshPlan::None
    };
    Ok(GrantOutcome {
        audience,
        client,
        subject: user.sub,
        scope,
        grant_id: Some(grant_id),
        user: Some(UserContext {
            auth_time: now,
            sid,
            amr: "pwd".into(),
            nonce: None,
            acr: None,
        }),
        refresh,
        act: None,
    })
}
