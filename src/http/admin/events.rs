//! `GET /admin/events`: the audit log. Filters: `kind`, `sub`, `client_id`, `since` (Unix
//! seconds), `before` (the `next` cursor of the previous page), `limit` (1–200, default 50).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{AdminAuth, json_response};
use crate::app::App;
use crate::http::error::AdminError;
use crate::manage::events::Filter;
use crate::manage::{self, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::protocol::OAuthError;
use crate::protocol::admin::{EventResponse, ListResponse};
use crate::protocol::error::ErrorBody;
use crate::protocol::form::Params;

/// The filters of `GET /admin/events`, read from the raw query by `EventQuery::parse` (each
/// at most once; `invalid_request` otherwise) and described in the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of this kind, such as `login_failed`.
    kind: Option<String>,
    /// Only events about this user.
    sub: Option<String>,
    /// Only events about this client.
    client_id: Option<String>,
    /// Only events at or after this time (Unix seconds).
    since: Option<i64>,
    /// The `next` cursor of the previous page.
    before: Option<i64>,
    /// Events per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

impl EventQuery {
    fn parse(query: &str) -> Result<EventQuery, OAuthError> {
        let params = Params::parse(query.as_bytes())
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let number = |name: &str| -> Result<Option<i64>, OAuthError> {
            params
                .get(name)
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        OAuthError::invalid_request(format!("{name} must be an integer"))
                    })
                })
                .transpose()
        };
        Ok(EventQuery {
            kind: params.get("kind").map(str::to_owned),
            sub: params.get("sub").map(str::to_owned),
            client_id: params.get("client_id").map(str::to_owned),
            since: number("since")?,
            before: number("before")?,
            limit: number("limit")?,
        })
    }

    fn into_filter(self) -> Result<Filter, OAuthError> {
        let limit = self.limit.unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
        if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&limit) {
            return Err(OAuthError::invalid_request(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        Ok(Filter {
            kind: self.kind,
            user_sub: self.sub,
            client_id: self.client_id,
            since: self.since,
            before: self.before,
            limit: limit as u32,
        })
    }
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "One page of events, newest first", body = ListResponse<EventResponse>),
        (status = 400, description = "`invalid_request`: a bad filter", body = ErrorBody),
    )
)]
pub async fn list(
    _: AdminAuth,
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let filter = EventQuery::parse(query.as_deref().unwrap_or_default())?.into_filter()?;
    Ok(json_response(
        StatusCode::OK,
        &manage::events::list(&app, &filter).await?,
    ))
}
