//! How loading and attaching fail, with what the kernel and libbpf said.

use crate::spec::package::{serde_name, AttachKind};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open the embedded object of `{name}`: {detail}")]
    Open { name: String, detail: String },
    #[error("the verifier rejected program `{program}` of `{name}`; end of its log:\n{log}")]
    Verifier {
        name: String,
        program: String,
        log: String,
    },
    #[error("cannot load `{name}` into the kernel: {error}{hint}")]
    Load {
        name: String,
        error: String,
        hint: String,
    },
    #[error("`{name}` has no program to attach: nothing would be traced")]
    NothingToAttach { name: String },
    #[error(
        "failed to attach program `{program}` to {} {target}: {error}",
        serde_name(kind)
    )]
    Attach {
        program: String,
        kind: AttachKind,
        target: String,
        error: String,
    },
}
