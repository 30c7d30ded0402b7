//! runner: ship an eBPF tool as one self-describing JSON package, run it with one generic
//! runner.
//!
//! ```text
//!  build:  source.bpf.c ──clang──▶ object.bpf.o ──pack──▶ package.json
//!                                   (ELF + BTF)     (globals, events, maps, programs,
//!                                                    object embedded with its sha256)
//!  run:    package.json ─▶ Loaded ─▶ checked against the object's own BTF
//!                        ─▶ Configured (flags written into .rodata/.data/.bss)
//!                        ─▶ Attached (programs, per their `when` conditions)
//!                        ─▶ streaming: ring/perf buffer ─▶ Plan (decoder) ─▶ table | json | csv
//! ```
//!
//! One BTF walker ([`btf`]) resolves every type into [`types::Type`]; the packer
//! ([`pack`]), the flags ([`flags`]) and the decoder ([`plan`]) all read that.

/// `eprintln!` that cannot panic: a closed or full stderr must not bring the runner down
/// (some callers are callbacks from C, where a panic aborts).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod attach;
pub mod btf;
pub mod cli;
pub mod compile;
pub mod elf;
pub mod flags;
pub mod info;
pub mod kernel;
pub mod maps;
pub mod oci;
pub mod output;
pub mod pack;
pub mod package;
pub mod perfbuf;
pub mod plan;
pub mod policy;
pub mod run;
pub mod sign;
pub mod source;
pub mod stream;
pub mod types;
pub mod views;
