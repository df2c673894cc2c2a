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

use super::{REQUEST_ID, oidc, security_headers};

/// The documents answered here.
#[derive(Clone, Copy)]
enum Document {
    OpenidConfiguration,
    OauthAuthorizationServer,
    Jwks,
}

impl Document {
    fn for_path(path: &str) -> Option<Self> {
        match path {
            paths::OPENID_CONFIGURATION => Some(Self::OpenidConfiguration),
            paths::OAUTH_AUTHORIZATION_SERVER => Some(Self::OauthAuthorizationServer),
            paths::JWKS => Some(Self::Jwks),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::OpenidConfiguration => paths::OPENID_CONFIGURATION,
            Self::OauthAuthorizationServer => paths::OAUTH_AUTHORIZATION_SERVER,
            Self::Jwks => paths::JWKS,
        }
    }
}

/// Wraps the whole stack; see the module comment.
#[derive(Clone)]
pub struct StaticDocumentsLayer {
    app: App,
    /// Security headers plus content type and CORS: the same for every document.
    common: HeaderMap,
}

impl StaticDocumentsLayer {
    pub fn new(app: App) -> Self {
        let mut common = security_headers(app.config.issuer_is_https);
        common.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        common.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        Self { app, common }
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
        let (body, cache): (Bytes, _) = match document {
            // Both well-known documents are one document, serialised at start-up.
            Document::OpenidConfiguration | Document::OauthAuthorizationServer => {
                (self.app.discovery.json.clone(), oidc::DISCOVERY_CACHE)
            }
            // Rebuilt only when the keys change.
            Document::Jwks => (self.app.keys.jwks_json(), oidc::JWKS_CACHE),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.clone_from(&self.common);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            HeaderName::from_static(REQUEST_ID),
            super::request_id(request),
        );
        super::metrics::count_static_document(document.path());
        response
    }
}
