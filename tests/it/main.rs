//! The integration tests: one binary, one module per endpoint or concern. Every test starts
//! the real server on a random loopback port over a fresh database, and runs on SQLite and
//! on Postgres (`both_backends!`).
//!
//! A module that grew past a few hundred lines is a directory with one file per concern
//! (`admin/`, `code_flow/`, `conformance/` by OpenID test plan, `hostile/`, `token/`); its
//! `mod.rs` (and a support file such as `conformance/rp.rs` or `hostile/wire.rs`) holds only
//! what its test files share, never tests. Test modules import from `helpers` and from their
//! own directory, never from another test module: what two modules need belongs in `helpers`
//! (servers to test, the `Browser` and its flow steps, the admin API call, token requests,
//! parsers). To add a test, add an `async fn(Backend)` beside its
//! neighbours and its name to that file's `both_backends!` list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod account;
mod account_page;
mod admin;
mod apply;
mod audit;
mod backchannel_logout;
mod cli;
mod cluster;
mod code_flow;
mod conformance;
mod connections;
mod device;
mod discovery;
mod dpop;
mod failover;
mod faults;
mod form_post;
mod hostile;
mod introspection;
mod key_lifecycle;
mod lifecycle;
mod logout;
mod mail;
mod mfa;
mod nodes;
mod pages;
mod par_jar;
mod passkeys;
mod private_key_jwt;
mod races;
mod refusals;
mod registration;
mod relying_party;
mod revocation;
mod skipped_steps;
mod throttling;
mod tls;
mod token;
mod token_exchange;
mod upstream;
