//! What a package and its object say, read without touching the kernel: the package
//! format, the ELF and BTF readers, the resolved type model, the decoder, the flags of
//! globals and the packer. Nothing here imports the run side ([`crate::run`],
//! [`crate::channel`], [`crate::kernel`]); the same inputs always give the same outputs.

pub(crate) mod btf;
pub mod core_btf;
pub(crate) mod elf;
pub(crate) mod eunomia;
pub mod flags;
pub mod json;
pub(crate) mod kfuncs;
pub mod mapview;
pub mod names;
pub(crate) mod pack;
pub mod package;
pub mod plan;
pub mod shown_decl;
pub mod sidecar;
pub(crate) mod source;
pub(crate) mod tail;
pub mod types;
pub(crate) mod value;
pub(crate) mod verify;
pub mod vocab;
