//! Users, their passwords, browser sessions, remembered consent, and what the login, password
//! and account pages do with them.
//!
//! Password hashing is argon2id, always off the async executor and behind a semaphore so that
//! a burst of logins cannot exhaust memory. An unknown username costs the same hash as a
//! known one (a dummy hash), so timing does not reveal who exists.

pub mod account;
pub mod assurance;
pub mod consent;
pub mod email_links;
pub mod factors;
pub mod login;
pub mod password;
pub mod password_change;
pub mod password_policy;
pub mod session;
pub mod signup;
pub mod throttle;
pub mod user_agent;

pub use password::PasswordHasher;
