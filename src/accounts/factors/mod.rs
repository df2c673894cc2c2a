//! Second factors, one file per kind. Their secrets and state go through `crypto::Sealer`;
//! their rows through the store's per-factor traits.

pub mod passkey;
