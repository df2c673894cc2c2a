//! The account page's core: what a signed-in user has given applications, and withdrawing it.
//! Withdrawing deletes the remembered consent and ends every refresh-token family the user has
//! with that client, so the application has to ask again.
//!
//! The page's other sections have a file each: the password change (`password`), the
//! profile claims the operator lets users edit (`profile`), the email address (`email`), and
//! the sessions where the user is signed in (`sessions`).

pub mod email;
pub mod password;
pub mod profile;
pub mod sessions;

use std::net::IpAddr;

use super::session::Session;
use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::OAuthError;
use crate::protocol::user::UserClaims;

/// One application the user gave access to.
pub struct Granted {
    pub client_id: String,
    /// The client's name, or its id when it has none.
    pub name: String,
    pub scope: String,
}

/// What the account page shows for a session.
pub struct Overview {
    pub username: String,
    /// The user's claims, for the profile section.
    pub claims: UserClaims,
    pub granted: Vec<Granted>,
    /// False for a user created through an upstream who never set a password: the page
    /// offers no form that asks for the current one.
    pub has_password: bool,
}

/// The account page for `session`: `None` when its user is gone or disabled (the page then
/// asks to sign in).
pub async fn overview(app: &App, session: &Session) -> Result<Option<Overview>, OAuthError> {
    let user = match app.store.get_user(&session.user_sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Ok(None),
    };
    let consents = app.store.list_consents(&user.sub).await?;
    let mut granted = Vec::with_capacity(consents.len());
    for consent in consents {
        // A consent whose client was deleted since is not shown.
        let Some(client) = app.client(&consent.client_id).await? else {
            continue;
        };
        granted.push(Granted {
            name: crate::clients::display_name(&client).to_owned(),
            client_id: consent.client_id,
            scope: consent.scope,
        });
    }
    Ok(Some(Overview {
        has_password: user.has_password(),
        username: user.username,
        claims: user.claims,
        granted,
    }))
}

/// Withdraws what the session's user granted `client_id`: the consent goes, and so do the
/// client's token families for this user.
pub async fn withdraw(
    app: &App,
    session: &Session,
    client_id: &str,
    ip: Option<IpAddr>,
) -> Result<(), OAuthError> {
    let withdrawn = app
        .store
        .delete_consent(&session.user_sub, client_id)
        .await?;
    // The application loses its refresh tokens too: consent withdrawn ends the families.
    app.store
        .revoke_grants_for_user(&session.user_sub, Some(client_id), app.now())
        .await?;
    if withdrawn {
        audit::record(
            app,
            Event::new(Kind::ConsentWithdrawn)
                .user(&session.user_sub)
                .client(client_id)
                .ip(ip),
        )
        .await;
    }
    Ok(())
}
