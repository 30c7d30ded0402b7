//! Signatures, made and checked without any network: cosign's keyed signatures for
//! images ([`cosign`]), minisign's detached signatures for package files ([`minisign`]).
//! Which keys are trusted for what is the trust policy's business ([`crate::policy`]).

pub mod cosign;
pub mod minisign;
