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
use crate::protocol::form::Params;

pub async fn list(
    _: AdminAuth,
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let number = |name: &str| -> Result<Option<i64>, OAuthError> {
        params
            .get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| OAuthError::invalid_request(format!("{name} must be an integer")))
            })
            .transpose()
    };
    let limit = number("limit")?.unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
    if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&limit) {
        return Err(OAuthError::invalid_request(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        ))
        .into());
    }
    let filter = Filter {
        kind: params.get("kind").map(str::to_owned),
        user_sub: params.get("sub").map(str::to_owned),
        client_id: params.get("client_id").map(str::to_owned),
        since: number("since")?,
        before: number("before")?,
        limit: limit as u32,
    };
    Ok(json_response(
        StatusCode::OK,
        &manage::events::list(&app, &filter).await?,
    ))
}
