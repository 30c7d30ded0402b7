//! How getting, checking and storing images fails: each error names the reference.

use std::path::PathBuf;

use crate::oci::{client, reference, store};
use crate::policy::PolicyError;
use crate::sign::{cosign::CosignError, minisign::MinisignError};
use crate::spec::package::PackageError;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Cosign(#[from] CosignError),
    #[error(transparent)]
    Minisign(#[from] MinisignError),
    #[error(transparent)]
    Reference(#[from] reference::ParseError),
    #[error("{reference} is not in the local store `{store}` (`runner pull` fetches it)")]
    NotInStore { reference: String, store: PathBuf },
    #[error("{reference} has no package for {arch} (it has: {available})")]
    NoPlatform {
        reference: String,
        arch: String,
        available: String,
    },
    #[error("{reference} is not a runner package image: {what}")]
    NotRunnerImage { reference: String, what: String },
    #[error("{reference} is not signed; the trust policy `{policy}` requires a signature by {keys} for `{scope}`")]
    Unsigned {
        reference: String,
        policy: PathBuf,
        scope: String,
        keys: String,
    },
    #[error(
        "{reference}: no valid signature by {keys} ({why}); refused by the trust policy `{policy}`"
    )]
    BadSignature {
        reference: String,
        policy: PathBuf,
        keys: String,
        why: String,
    },
    #[error(
        "{reference} is not covered by the trust policy `{policy}`, whose default is to reject"
    )]
    NotCovered { reference: String, policy: PathBuf },
    #[error("{reference}: the BPF object is {object}-endian, {target} is {order}-endian")]
    Endianness {
        reference: String,
        object: String,
        /// `this machine`, or the architecture pushed for.
        target: String,
        order: String,
    },
    #[error("{reference}: the image config does not match its package ({what})")]
    ConfigMismatch { reference: String, what: String },
    #[error("{what}")]
    Usage { what: String },
}
