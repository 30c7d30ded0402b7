//! How packing fails: every error names the global, map, program or struct it is about.

use crate::spec::btf::BtfError;
use crate::spec::elf::ElfError;
use crate::spec::plan::PlanError;
use crate::spec::vocab::AnnotationError;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("bad BTF")]
    Btf(#[from] BtfError),
    #[error("bad layout")]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error("global `{name}` in {section} has no ELF symbol, so its offset is unknown")]
    NoSymbol { name: String, section: String },
    #[error("global `{name}` is {symbol} bytes in the symbol table but its BTF type `{c}` is {btf} bytes")]
    SizeMismatch {
        name: String,
        c: String,
        symbol: u64,
        btf: u64,
    },
    #[error("map `{map}` names event struct `{name}`, which is not in the object's BTF{hint}")]
    MissingStruct {
        map: String,
        name: String,
        hint: String,
    },
    #[error("cannot tell which struct map `{map}` carries: {why}; candidates: {candidates}. Tag the map with __attribute__((btf_decl_tag(\"runner:event=<struct>\"))) or pass --event {map}=<struct>")]
    AmbiguousEvent {
        map: String,
        why: String,
        candidates: String,
    },
    #[error(
        "--event names map `{0}`, which is not a ring buffer or perf event array of this object"
    )]
    UnknownEventMap(String),
    #[error("global `{0}` is tagged runner:lost but is not a __u64 (the runner reads 8 bytes)")]
    BadLostCounter(String),
    #[error("global `{global}` is tagged runner:lost={map}, but the object has no ring buffer or perf event array named `{map}` (event channels: {channels})")]
    LostNamesNoChannel {
        global: String,
        map: String,
        channels: String,
    },
    #[error("map `{map}`: metric `{name}`: {what}")]
    BadMetric {
        map: String,
        name: String,
        what: String,
    },
    #[error("map `{map}` is tagged runner:wakeup={global}, but {why} (include <runner/ring.h> and tag the map with RUNNER_WAKEUP)")]
    BadWakeup {
        map: String,
        global: String,
        why: String,
    },
    #[error(transparent)]
    BadView(#[from] crate::spec::mapview::ViewError),
    /// A declaration (of a sidecar, or stored in a package) that does not fit the object;
    /// `at` is where it is, like `programs.optional[2]`.
    #[error("{at}: {what}")]
    Declaration { at: String, what: String },
    #[error("program `{program}`: tag `runner:{key}={global}` names no bool global")]
    BadCondition {
        program: String,
        key: String,
        global: String,
    },
}
