//! Wire types: what goes over HTTP as JSON or form parameters, error codes, discovery
//! metadata. serde lives here and in `config`; nothing here does I/O, and nothing here knows
//! the layers above (configuration, storage, HTTP).

pub mod admin;
pub mod alg;
pub mod authorization;
pub mod client;
pub mod discovery;
pub mod error;
pub mod form;
pub mod scope;
pub mod token;
pub mod upstream;
pub mod uri;
pub mod user;

pub use error::{ErrorCode, OAuthError};
pub use scope::Scope;
