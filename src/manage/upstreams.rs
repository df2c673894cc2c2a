//! Upstream identity providers as data: register, list, read, replace and delete them, for
//! the admin API and the CLI alike. The client secret is sealed under the master key before
//! it is stored (`upstream::seal_secret`) and never answered; URLs obey the outbound rules
//! (`outbound::Outbound::check_url`: https, public addresses unless the host is trusted).

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::protocol::admin::ListResponse;
use crate::protocol::upstream::{
    UpstreamRequest, UpstreamResponse, UpstreamSettings, check_secret, check_settings,
};
use crate::protocol::{ErrorCode, OAuthError};
use crate::store::{StoreError, UpstreamRecord};
use crate::upstream;

use super::Page;

fn not_found(id: &str) -> OAuthError {
    OAuthError::new(ErrorCode::NotFound, format!("no upstream with id `{id}`"))
}

fn answer(app: &App, record: UpstreamRecord) -> UpstreamResponse {
    UpstreamResponse {
        redirect_uri: upstream::redirect_uri(&app.config.issuer, &record.settings.id),
        settings: record.settings,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// Every check of a registration: the settings (`protocol::upstream::check_settings`) and
/// each URL under the outbound rules. `latchkey apply` checks its `[[upstream]]` entries here
/// too.
pub(crate) fn check(app: &App, settings: &mut UpstreamSettings) -> Result<(), OAuthError> {
    check_settings(settings)?;
    let urls = [
        ("issuer", &settings.issuer),
        ("authorization_endpoint", &settings.authorization_endpoint),
        ("token_endpoint", &settings.token_endpoint),
        ("userinfo_endpoint", &settings.userinfo_endpoint),
    ];
    for (name, url) in urls {
        if let Some(url) = url {
            app.outbound
                .check_url(url)
                .map_err(|e| OAuthError::invalid_request(format!("{name}: {e}")))?;
            if url.len() > 2048 {
                return Err(OAuthError::invalid_request(format!("{name} is too long")));
            }
        }
    }
    Ok(())
}

/// Registers an upstream; the secret is required.
pub async fn create(app: &App, request: UpstreamRequest) -> Result<UpstreamResponse, OAuthError> {
    let UpstreamRequest {
        mut settings,
        client_secret,
    } = request;
    check(app, &mut settings)?;
    let secret =
        client_secret.ok_or_else(|| OAuthError::invalid_request("client_secret is required"))?;
    check_secret(&secret)?;
    let now = app.now();
    let record = UpstreamRecord {
        secret_sealed: upstream::seal_secret(app, &settings.id, &secret)?,
        settings,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_upstream(&record)
        .await
        .map_err(|e| match e {
            StoreError::Conflict("upstream_id") => OAuthError::new(
                ErrorCode::Conflict,
                format!("an upstream with id `{}` exists", record.settings.id),
            ),
            other => other.into(),
        })?;
    audit::record(
        app,
        Event::new(Kind::UpstreamCreated).detail("upstream", record.settings.id.clone()),
    )
    .await;
    Ok(answer(app, record))
}

/// One page of upstreams, ordered by id.
pub async fn list(app: &App, page: &Page) -> Result<ListResponse<UpstreamResponse>, OAuthError> {
    let records = app
        .store
        .list_upstreams(page.after.as_deref(), page.limit)
        .await?;
    let next = page.next(&records, |r| r.settings.id.as_str());
    Ok(ListResponse {
        items: records.into_iter().map(|r| answer(app, r)).collect(),
        next,
    })
}

pub async fn get(app: &App, id: &str) -> Result<UpstreamResponse, OAuthError> {
    match app.store.get_upstream(id).await? {
        Some(record) => Ok(answer(app, record)),
        None => Err(not_found(id)),
    }
}

/// Replaces an upstream's settings. The id in the body, when given, must be the one in the
/// path; a left-out `client_secret` keeps the stored one.
pub async fn replace(
    app: &App,
    id: &str,
    request: UpstreamRequest,
) -> Result<UpstreamResponse, OAuthError> {
    let UpstreamRequest {
        mut settings,
        client_secret,
    } = request;
    if settings.id != id {
        return Err(OAuthError::invalid_request(
            "the id in the body must be the id in the path (an upstream cannot be renamed)",
        ));
    }
    check(app, &mut settings)?;
    let current = app
        .store
        .get_upstream(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let secret_sealed = match client_secret {
        Some(secret) => {
            check_secret(&secret)?;
            upstream::seal_secret(app, id, &secret)?
        }
        None => current.secret_sealed,
    };
    let record = UpstreamRecord {
        settings,
        secret_sealed,
        created_at: current.created_at,
        updated_at: app.now(),
    };
    if !app.store.update_upstream(&record).await? {
        return Err(not_found(id));
    }
    app.upstreams.forget(id);
    audit::record(
        app,
        Event::new(Kind::UpstreamUpdated).detail("upstream", id.to_owned()),
    )
    .await;
    Ok(answer(app, record))
}

/// Deletes an upstream and every identity linked through it.
pub async fn delete(app: &App, id: &str) -> Result<(), OAuthError> {
    if !app.store.delete_upstream(id).await? {
        return Err(not_found(id));
    }
    app.upstreams.forget(id);
    audit::record(
        app,
        Event::new(Kind::UpstreamDeleted).detail("upstream", id.to_owned()),
    )
    .await;
    Ok(())
}
