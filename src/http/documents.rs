//! The static documents — both discovery documents and the JWKS — answered ahead of the
//! layer stack.
//!
//! They are the most requested and cheapest answers Latchkey gives: bytes serialised once
//! (the JWKS again only when the keys change). Walking them through the full stack (request
//! id, tracing, timeout, body limit, metrics middleware, CORS, six header layers, two route
//! tables) cost more than twice what producing them does, so a `GET` for one of them is
//! answered here with the same headers the stack would have added: the security headers,
//! CORS for browser clients, the request id, caching. Every other request, including `HEAD`
//! and CORS preflights on these paths, goes through the stack unchanged.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};

use crate::app::App;
use crate::protocol::discovery::paths;

use super::{REQUEST_ID, security_headers};

/// The documents answered here.
#[derive(Clone, Copy)]
pub(super) enum Document {
    OpenidConfiguration,
    OauthAuthorizationServer,
    Jwks,
}

impl Document {
    const ALL: [Document; 3] = [
        Self::OpenidConfiguration,
        Self::OauthAuthorizationServer,
        Self::Jwks,
    ];

    fn for_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.path() == path)
    }

    fn path(self) -> &'static str {
        match self {
            Self::OpenidConfiguration => paths::OPENID_CONFIGURATION,
            Self::OauthAuthorizationServer => paths::OAUTH_AUTHORIZATION_SERVER,
            Self::Jwks => paths::JWKS,
        }
    }

    /// The document's bytes and how long clients may cache them. Both well-known documents
    /// are one document, serialised at start-up; the JWKS is rebuilt only when the keys
    /// change and cached briefly, so that clients see a rotation quickly.
    /// JWKS is cached no longer than the keys' publish-ahead window (`keys::Schedule`).
    pub(super) fn body(self, app: &App) -> (Bytes, HeaderValue) {
        match self {
            Self::OpenidConfiguration | Self::OauthAuthorizationServer => (
                app.discovery.json.clone(),
                HeaderValue::from_static("public, max-age=300"),
            ),
            Self::Jwks => (
                app.keys.jwks_json(),
                // Built from a number by `Keys`: always a valid header value.
                HeaderValue::from_maybe_shared(app.keys.jwks_cache_control())
                    .unwrap_or(HeaderValue::from_static("no-cache")),
            ),
        }
    }
}

/// Wraps the whole stack; see the module comment.
#[derive(Clone)]
pub struct StaticDocumentsLayer {
    app: App,
    /// Security headers plus content type and CORS: the same for every document.
    common: HeaderMap,
    /// `latchkey_http_requests_total` for each document (`Document::ALL` order), looked up
    /// once: counting an answer is then one atomic add.
    counters: [metrics::Counter; 3],
}

impl StaticDocumentsLayer {
    pub fn new(app: App) -> Self {
        let mut common = security_headers(&app.config);
        common.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        common.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        let counters =
            Document::ALL.map(|d| super::metrics::request_counter(d.path(), "GET", "200"));
        Self {
            app,
            common,
            counters,
        }
    }
}

impl<S> Layer<S> for StaticDocumentsLayer {
    type Service = StaticDocuments<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StaticDocuments {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StaticDocuments<S> {
    inner: S,
    layer: StaticDocumentsLayer,
}

impl<S> Service<Request> for StaticDocuments<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::GET
            && let Some(document) = Document::for_path(request.uri().path())
        {
            return Either::Left(ready(Ok(self.layer.answer(document, &request))));
        }
        Either::Right(self.inner.call(request))
    }
}

impl StaticDocumentsLayer {
    fn answer(&self, document: Document, request: &Request) -> Response {
        let (body, cache) = document.body(&self.app);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.clone_from(&self.common);
        headers.insert(header::CACHE_CONTROL, cache);
        headers.insert(
            HeaderName::from_static(REQUEST_ID),
            super::request_id(request),
        );
        // Not timed: there is nothing between receiving the request and answering it.
        self.counters[document as usize].increment(1);
        response
    }
}
