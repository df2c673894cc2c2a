//! The token endpoint through the token lifecycle: refresh-token rotation, families and their
//! lifetimes, racing redemptions, the client_credentials and password grants, client
//! authentication (shared with the revocation and introspection endpoints), and the endpoint's
//! HTTP hygiene. One file per concern; the requests they make are in `crate::helpers`.

mod client_auth;
mod client_credentials;
mod families;
mod hygiene;
mod password;
mod refresh;
mod single_use;
