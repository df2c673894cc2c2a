//! `GET /admin/openapi.json`: the OpenAPI 3.1 description of the admin API.
//!
//! Nothing here is written by hand but the frame: the operations come from the handlers'
//! `#[utoipa::path]` attributes, the schemas from the wire types' `ToSchema` derives, and the
//! paths from the router itself (`described_routes`), so the document describes the routes
//! the server has. What every operation shares because every handler takes `AdminAuth` (the
//! bearer token, and its 401 and 429 answers) is added here once, in `finish`.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::Response;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{self as oa, RefOr, ResponseBuilder, Schema};

use super::{AdminAuth, described_routes, json_response};
use crate::protocol::error::ErrorBody;

/// Where the admin router is mounted (`http::router`); the document's paths include it.
pub const MOUNT: &str = "/admin";

/// The name of the admin token's security scheme in the document.
const ADMIN_TOKEN: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey admin API",
        description = "Clients, users, upstream identity providers, signing keys and the audit log of a Latchkey server. \
            Every operation needs `Authorization: Bearer <LATCHKEY_ADMIN_TOKEN>`. Errors are \
            JSON `{\"error\", \"error_description\"}`.",
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "clients", description = "OAuth clients (RFC 7591 metadata) and their secrets"),
        (name = "users", description = "User accounts and their second factors"),
        (name = "upstreams", description = "Upstream identity providers (\"Log in with …\")"),
        (name = "keys", description = "Signing keys: states, rotation"),
        (name = "events", description = "The audit log"),
        (name = "registration", description = "Dynamic client registration (RFC 7591)"),
        (name = "meta", description = "This document"),
    )
)]
struct AdminApi;

/// The frame the routes are added to.
pub(super) fn base() -> oa::OpenApi {
    AdminApi::openapi()
}

/// The whole document: the described routes under `/admin`, plus what `AdminAuth` adds to
/// every operation.
pub fn document_json() -> oa::OpenApi {
    let (_, mut doc) = described_routes().split_for_parts();
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (format!("{MOUNT}{path}"), item))
        .collect();
    finish(&mut doc);
    doc
}

/// Built once: it depends on nothing but the code.
static DOCUMENT: LazyLock<oa::OpenApi> = LazyLock::new(document_json);

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
/// `GET /admin/openapi.json`. Behind the admin token like the rest: it names every admin
/// path, which an unauthenticated caller must not learn (see `no_such_endpoint`).
pub async fn document(_: AdminAuth) -> Response {
    json_response(StatusCode::OK, &*DOCUMENT)
}

fn operations(item: &mut oa::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn error_response(description: &str) -> RefOr<oa::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            oa::ContentBuilder::new()
                .schema(Some(oa::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .into()
}

fn finish(doc: &mut oa::OpenApi) {
    let components = doc.components.get_or_insert_with(oa::Components::new);
    components.add_security_scheme(
        ADMIN_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("LATCHKEY_ADMIN_TOKEN"))
                .build(),
        ),
    );
    // `UserClaims` is flattened into the user types, which the document writes as `allOf`.
    // JSON Schema checks each part of an `allOf` on its own, so the claims' own
    // `additionalProperties: false` (from `deny_unknown_fields`) would refuse every user,
    // whose `sub` and `username` are not claims. Unknown names are still refused by the server.
    // The same for `UpstreamSettings`, flattened into the upstream's request and answer.
    for flattened in ["UserClaims", "UpstreamSettings"] {
        if let Some(RefOr::T(Schema::Object(schema))) = components.schemas.get_mut(flattened) {
            schema.additional_properties = None;
        }
    }
    doc.security = Some(vec![SecurityRequirement::new(
        ADMIN_TOKEN,
        Vec::<String>::new(),
    )]);
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            responses.insert(
                "401".into(),
                error_response("`invalid_token`: no or a wrong admin token"),
            );
            responses.insert(
                "429".into(),
                error_response("`slow_down`: too many wrong tokens from this address"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
