//! Latchkey: an OAuth 2.0 and OpenID Connect authorization server.
//!
//! `main.rs` only wires things up; everything a test or the binary calls lives in this
//! library. The module tree follows the request path: `http/` translates HTTP into calls on
//! the protocol core (`authorize/`, `token/`, `client_auth/`, `accounts/`, `mint/`, `keys/`),
//! which reads and writes through the per-concern traits in `store/`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod authorize;
pub mod cli;
pub mod client_auth;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod files;
pub mod http;
pub mod keys;
pub mod logout;
pub mod mail;
pub mod manage;
pub mod mint;
pub mod outbound;
pub mod protocol;
pub mod replay;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod upkeep;
pub mod upstream;
