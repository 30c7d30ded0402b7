//! The package: one JSON file that embeds a BPF object and describes it. This module owns
//! the format (see `schemas/package.schema.json`), reading it with errors that name the file
//! and the cause, and writing it byte for byte the same for the same content.
//!
//! The compatibility contract: a runner reads every package whose `format_version` it
//! knows, and ignores any field it does not know, anywhere in the package, so a newer
//! runner may add information an older one can do without. What a runner must understand
//! to run a package correctly is listed in `requires`; a runner refuses a package that
//! requires a feature it does not implement ([`FEATURES`]). The description is a manifest:
//! the runner derives it again from the embedded object (`spec::verify`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::spec::sidecar::{Choice, Entries};
use crate::spec::types::Type;
pub use crate::spec::vocab::{Channel, MapType, View};

/// The format this runner writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The features, beyond format version 1 itself, that this runner implements: a package
/// that `requires` another is refused. Each is something a runner must understand to run
/// the package correctly; the packer lists the ones a package uses ([`Feature`]).
pub const FEATURES: &[&str] = &[
    Feature::Switches.name(),
    Feature::Alternatives.name(),
    Feature::OptionalPrograms.name(),
    Feature::PackageDefaults.name(),
    Feature::ImpliedValues.name(),
    Feature::MapSizes.name(),
    Feature::AttachTargets.name(),
    Feature::WakeupFlag.name(),
];

/// A feature a package may require (see [`FEATURES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// Program conditions may name a switch (`switches`), a flag with no global.
    Switches,
    /// Of each of `groups`, exactly one program loads: the best this kernel supports.
    Alternatives,
    /// A program marked `optional` is left out when it cannot load or attach.
    OptionalPrograms,
    /// A global with a `compiled` value has another default, written before load.
    PackageDefaults,
    /// Setting a global also sets the globals its `implies` lists.
    ImpliedValues,
    /// A map's `size` gives the size of a map the object declares without one.
    MapSizes,
    /// A uprobe's `targets` are tried in order when `--attach` gives none.
    AttachTargets,
    /// An event channel's `wakeup` global is set by the runner while it sleeps (a runner
    /// that does not know the `runner:wakeup` annotation cannot read the object).
    WakeupFlag,
}

impl Feature {
    pub const fn name(self) -> &'static str {
        match self {
            Feature::Switches => "switches",
            Feature::Alternatives => "alternatives",
            Feature::OptionalPrograms => "optional_programs",
            Feature::PackageDefaults => "package_defaults",
            Feature::ImpliedValues => "implied_values",
            Feature::MapSizes => "map_sizes",
            Feature::AttachTargets => "attach_targets",
            Feature::WakeupFlag => "wakeup_flag",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub format_version: u32,
    /// What a runner must implement to run this package (see [`FEATURES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    pub name: String,
    pub description: String,
    pub license: String,
    pub globals: Vec<Global>,
    /// Flags of `runner run` with no global behind them, used in program conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<Switch>,
    pub events: Vec<Event>,
    pub maps: Vec<Map>,
    pub programs: Vec<Program>,
    /// Programs that are alternatives for one event: exactly one of each group loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// What the description is derived from besides the object: the validated sidecar
    /// (`spec::sidecar`), as found in the package (unknown keys in it are ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declarations: Option<serde_json::Value>,
    pub object: Embedded,
}

/// A switch: a bool flag that is no global.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    pub name: String,
    pub help: String,
}

/// Alternative programs for one event, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub programs: Vec<String>,
    /// Declared (in the sidecar) rather than found: the same hook through different
    /// mechanisms (`tp_btf`/`raw_tp`, `fentry`/`kprobe`, `fexit`/`kretprobe`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

/// A global variable of `.rodata`, `.data` or `.bss`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Global {
    pub name: String,
    pub section: String,
    pub offset: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub ty: Type,
    /// The value the global has when its flag is not given, decoded: the value compiled
    /// into the object, unless the package declares another (then in `compiled`).
    pub default: serde_json::Value,
    /// The value compiled into the object, when the package's default differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled: Option<serde_json::Value>,
    /// The command-line flag (`--<flag>`), or why there is none.
    pub flag: Flag,
    /// The author's comment above the declaration.
    pub help: String,
    /// Setting this global's flag also sets these globals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implies: Vec<Implied>,
}

/// A global set, with this value, by setting another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Implied {
    pub global: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Name(String),
    None(String),
}

/// An event channel (ring buffer or perf event array) and the struct it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub map: String,
    pub channel: Channel,
    #[serde(rename = "struct")]
    pub struct_name: String,
    #[serde(rename = "type")]
    pub ty: Type,
    /// A global that the program increments when it cannot submit an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_counter: Option<String>,
    /// A 4-byte global the runner sets while it sleeps: the program's records wake it
    /// only then, or when a quarter of the ring waits (`runner/ring.h`). Without one, the
    /// runner also drains the channel on a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakeup: Option<String>,
    /// Counters of these events that `runner run --metrics` serves (`runner:metric=` tags
    /// and the sidecar's `metrics`). Presentation: a runner without metrics runs the
    /// package the same, so no feature is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<EventMetric>,
}

/// A counter of a channel's events, one series per value of some members of the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetric {
    /// Its name in the package: served as `<package>_<name>_total`.
    pub name: String,
    /// Top-level members of the event struct whose values label the series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The most series (label sets) kept; an event that would start another is counted
    /// as dropped instead.
    pub max_series: u32,
    /// Its help line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
}

impl EventMetric {
    /// The most series a counter keeps unless its declaration says.
    pub const DEFAULT_MAX_SERIES: u32 = 1000;
    /// The most series a declaration may ask for.
    pub const MAX_SERIES_LIMIT: u32 = 100_000;
}

/// The name serde gives a unit variant (`perf_event_array`, `tracepoint`...), for display.
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Type>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Type>,
    /// How the runner prints the map's contents, if it declares it (`spec::mapview`). A
    /// view this runner does not know reads as none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_view"
    )]
    pub view: Option<View>,
    /// The unit of the values a histogram view counts (`usecs`), for its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The size to create the map with, when the object leaves it to userspace: a number,
    /// `pid_max`, `ncpus`, or a choice on a flag (`{"if", "then", "else"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Choice<Entries>>,
}

/// A map's view: one this runner knows, or none (a newer runner's view is presentation
/// an older one can do without).
fn known_view<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<View>, D::Error> {
    let name = Option::<String>::deserialize(d)?;
    Ok(name.as_deref().and_then(View::from_name))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub section: String,
    pub attach: Attach,
    /// Load and attach only when this bool global (or switch) has this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Left out, with one line on stderr, when it cannot load or attach.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// For a uprobe without a target: `BINARY:FUNCTION` targets tried in order when
    /// `--attach` gives none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    pub kind: AttachKind,
    /// What it attaches to, as the section names it; empty when given at run time.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachKind {
    Tracepoint,
    RawTracepoint,
    TpBtf,
    Kprobe,
    Kretprobe,
    Ksyscall,
    Kretsyscall,
    Uprobe,
    Uretprobe,
    Usdt,
    Fentry,
    Fexit,
    FmodRet,
    Lsm,
    PerfEvent,
    Iter,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// A bool global, or one of the package's switches.
    pub global: String,
    pub equals: bool,
}

/// The embedded object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedded {
    pub sha256: String,
    pub size: u64,
    pub base64: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read package `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("package `{path}` is not valid JSON: {cause}")]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error(
        "package `{path}` has format version {found}; this runner reads version {FORMAT_VERSION}"
    )]
    Version { path: PathBuf, found: String },
    #[error("package `{path}` requires {features}, which this runner ({}) does not implement; run it with a newer runner", env!("CARGO_PKG_VERSION"))]
    Requires { path: PathBuf, features: String },
    #[error("package `{path}` is malformed: {cause}")]
    Structure {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("package `{path}`: embedded object is not valid base64 ({reason})")]
    Base64 { path: PathBuf, reason: String },
    #[error("package `{path}`: embedded object is {actual} bytes, the package says {expected} (truncated?)")]
    Size {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("package `{path}`: embedded object checksum mismatch (sha256 {actual}, the package says {expected})")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl Embedded {
    pub fn new(object: &[u8]) -> Self {
        Embedded {
            sha256: sha256_hex(object),
            size: object.len() as u64,
            base64: base64::engine::general_purpose::STANDARD.encode(object),
        }
    }
}

impl Package {
    /// Read and check a package: JSON, format version, then the embedded object's size
    /// and checksum. Returns the package and the object bytes.
    pub fn read(path: &Path) -> Result<(Package, Vec<u8>), PackageError> {
        Self::from_slice(&Self::read_bytes(path)?, path)
    }

    /// The bytes of the package file at `path`.
    pub fn read_bytes(path: &Path) -> Result<Vec<u8>, PackageError> {
        crate::spec::json::read_capped(path).map_err(|source| PackageError::Read {
            path: path.into(),
            source,
        })
    }

    pub fn from_slice(text: &[u8], path: &Path) -> Result<(Package, Vec<u8>), PackageError> {
        let value: serde_json::Value =
            crate::spec::json::parse(text).map_err(|cause| PackageError::Json {
                path: path.into(),
                cause,
            })?;
        match value.get("format_version") {
            Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
            other => {
                return Err(PackageError::Version {
                    path: path.into(),
                    found: other.map_or("(none)".into(), |v| v.to_string()),
                })
            }
        }
        let package: Package =
            serde_json::from_value(value).map_err(|cause| PackageError::Structure {
                path: path.into(),
                cause,
            })?;
        let missing: Vec<String> = package
            .requires
            .iter()
            .filter(|f| !FEATURES.contains(&f.as_str()))
            .map(|f| format!("`{f}`"))
            .collect();
        if !missing.is_empty() {
            return Err(PackageError::Requires {
                path: path.into(),
                features: missing.join(", "),
            });
        }
        let object = base64::engine::general_purpose::STANDARD
            .decode(&package.object.base64)
            .map_err(|e| PackageError::Base64 {
                path: path.into(),
                reason: e.to_string(),
            })?;
        if object.len() as u64 != package.object.size {
            return Err(PackageError::Size {
                path: path.into(),
                expected: package.object.size,
                actual: object.len() as u64,
            });
        }
        let actual = sha256_hex(&object);
        if actual != package.object.sha256 {
            return Err(PackageError::Checksum {
                path: path.into(),
                expected: package.object.sha256.clone(),
                actual,
            });
        }
        Ok((package, object))
    }

    /// The package as written to disk: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a package always serializes");
        text.push('\n');
        text
    }
}
