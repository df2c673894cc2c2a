//! Hostile input: well over a thousand malformed requests of assorted shapes, sent over raw TCP
//! (so that shapes no HTTP client library would produce can be sent too) at every endpoint
//! (`malformed`), and client-chosen request ids that must not forge log lines
//! (`request_ids`).
//!
//! The requests come from a small deterministic generator (`rng`, `targets`, `cases`) with a
//! fixed seed, so a failure names the case number and the request, and reproduces; `wire`
//! writes them as bytes and reads the answers. Only `malformed` and `request_ids` hold tests.

mod cases;
mod malformed;
mod request_ids;
mod rng;
mod targets;
mod wire;
