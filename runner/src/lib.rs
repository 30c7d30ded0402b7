//! runner: ship an eBPF tool as one self-describing JSON package, run it with one generic
//! runner.
//!
//! ```text
//!  build:  source.bpf.c ──clang──▶ object.bpf.o ──pack──▶ package.json
//!          (compile)                (ELF + BTF)    (spec::pack: globals, events, maps,
//!                                                   programs; object embedded + sha256)
//!          + <base>.runner.json (spec::sidecar: the front end's choices, checked against
//!            the object and kept in the package as its declarations)
//!
//!  run:    package.json ─▶ Verified ─▶ Configured ─▶ Loaded ─▶ Attached ─▶ stream
//!          (spec::verify,  (run::*: programs chosen (probe), flags written, maps sized,
//!           declarations)   programs loaded, readers opened, programs attached)
//!          stream: channel::{ringbuf, perfbuf} ─▶ record ─▶ spec::plan (decoder)
//!                  ─▶ output::{table, json, csv}; map views ─▶ the same outputs
//! ```
//!
//! Two sides that never mix: [`spec`] reads ELF, BTF and JSON and never touches the
//! kernel; [`run`], [`channel`], [`kernel`] and `probe` call libbpf. One BTF walker
//! (`spec::btf`) resolves every type into [`spec::types::Type`]; the packer, the flags and
//! the decoder all read that.

/// `eprintln!` that cannot panic or hang: a closed, full or stalled stderr must not bring
/// the runner down (some callers are callbacks from C, where a panic aborts), and control
/// characters from a package cannot reach the terminal (see [`stdio::note`]).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::stdio::note(format_args!($($arg)*))
    };
}

mod args;
mod cache;
mod channel;
pub mod cli;
pub mod compile;
#[doc(hidden)]
pub mod fuzz;
mod info;
mod kernel;
mod metrics;
mod oci;
pub mod output;
mod policy;
mod probe;
mod run;
mod sandbox;
mod sign;
pub mod spec;
pub mod stdio;
