//! What the tests share: servers to test (`spawn_app` in this process, `ServerProcess` as the
//! real binary, `cluster::Cluster` as several of them), a `Browser` that walks the flows step
//! by step, the one way to call the admin API (`admin_call`), token-endpoint requests, and the
//! small parsers the tests read answers with.
//!
//! Test modules import from here and from nothing else in `tests/it` (a directory's own
//! `mod.rs` or support files aside, which hold no tests), so that moving or changing one
//! module's tests never breaks another's. Something two modules both need belongs here.

mod admin;
mod app;
mod authenticator;
mod browser;
mod cli;
pub mod cluster;
mod keys;
mod mail;
mod parse;
mod process;
mod races;
mod tokens;

pub use admin::*;
pub use app::*;
pub use authenticator::*;
pub use browser::*;
pub use cli::*;
pub use keys::*;
pub use mail::*;
pub use parse::*;
pub use process::*;
pub use races::*;
pub use tokens::*;
