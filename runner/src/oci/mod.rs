//! Packages from OCI registries: `runner push/pull/sign`, `runner run REF`, `runner info
//! REF`, and the local store that keeps them for offline use.
//!
//! ```text
//!  push:  pkg.json[@arch]… ─▶ manifest per arch (config + layer) ─▶ index ─▶ registry:tag
//!  sign:  registry:tag ─resolve once─▶ digest ─▶ simple signing payload ─ECDSA─▶ :sha256-<hex>.sig
//!  run:   REF ─resolve once─▶ digest D ─fetch by digest, hash every blob─▶ store
//!            ─▶ signatures for D checked against the policy's keys ─▶ package bytes ─▶ run
//! ```
//!
//! The rest of the runner sees one seam, [`open_package`]: a file path or a reference in,
//! the package bytes out, already verified, never having touched the kernel.

pub mod client;
pub mod commands;
pub mod error;
pub mod media;
pub mod options;
pub mod pull;
pub mod push;
pub mod reference;
pub mod store;

pub use options::{leading_options, PullOptions};
pub use pull::open_package;
