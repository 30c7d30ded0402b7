//! The runner's vocabulary, each word parsed once into an enum: BPF map types, the data
//! sections globals live in, and the `runner:` annotations a program declares with BTF
//! declaration tags. An unknown annotation is an error that lists the valid ones.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An event channel: the kind of map a program submits events to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Ringbuf,
    PerfEventArray,
}

impl Channel {
    /// Whether the kernel rounds each record up to 8 bytes (with its size header), so a
    /// record may end with a few bytes the program did not submit: a perf buffer does; a
    /// ring buffer hands over exactly what was submitted.
    pub fn pads_records(self) -> bool {
        matches!(self, Channel::PerfEventArray)
    }
}

/// How a map that is not an event stream is shown (from the tag `runner:view=<view>`, or
/// `--view MAP=<view>` at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// One row per key: key fields, then value fields.
    Table,
    /// A power-of-two histogram drawn with star bars: per key, the value is an array of
    /// slot counts (or a struct holding one); or the key is the slot index and the value
    /// its count.
    Log2Hist,
    /// The same, with one slot per value: slot `i` counts the value `i`.
    LinearHist,
}

impl View {
    const ALL: [(View, &'static str); 3] = [
        (View::Table, "table"),
        (View::Log2Hist, "log2_hist"),
        (View::LinearHist, "linear_hist"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("", |(_, n)| n)
    }

    pub fn from_name(name: &str) -> Option<View> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    /// The valid names, for an error: `table, log2_hist or linear_hist`.
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
        format!(
            "{} or {}",
            names[..names.len() - 1].join(", "),
            names[names.len() - 1]
        )
    }

    /// The valid names and one more word: `table, log2_hist, linear_hist or none`.
    pub fn names_and(last: &str) -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
        format!("{} or {last}", names.join(", "))
    }
}

/// A unit of time, for `ktime` and `duration` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimeUnit {
    Ns,
    Us,
    Ms,
    S,
}

impl TimeUnit {
    const ALL: [(TimeUnit, &'static str); 4] = [
        (TimeUnit::Ns, "ns"),
        (TimeUnit::Us, "us"),
        (TimeUnit::Ms, "ms"),
        (TimeUnit::S, "s"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(u, _)| *u == self)
            .map_or("", |(_, n)| n)
    }

    fn from_name(name: &str) -> Option<TimeUnit> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(u, _)| *u)
    }

    /// How many nanoseconds one of this unit is.
    pub fn nanos(self) -> u64 {
        match self {
            TimeUnit::Ns => 1,
            TimeUnit::Us => 1_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::S => 1_000_000_000,
        }
    }
}

/// A named set of bit flags, for `flags:<set>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagSet {
    /// open(2) flags: `O_RDONLY|O_CLOEXEC`.
    Open,
}

/// How a value is shown: the `runner:format=<format>` a member or a typedef declares
/// (`spec::names` holds the tables, `output::shown` renders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFormat {
    /// A syscall's return: a negative errno as its name (`ENOENT`), anything else as is.
    Errno,
    /// A signal number: `SIGKILL`; bit 0x80 set on a signal is a core dump (the low byte
    /// of a task's exit code, as exitsnoop reports it).
    Signal,
    /// A syscall number: its name on this machine (`openat`).
    Syscall,
    /// A CLOCK_MONOTONIC stamp (`bpf_ktime_get_ns`) in this unit, as wall-clock time.
    Ktime(TimeUnit),
    /// A time span held in `unit`, shown in `shown` (a number under a header that says the
    /// unit), or, with no `shown`, in the unit that reads best (`1.25ms`).
    Duration {
        unit: TimeUnit,
        shown: Option<TimeUnit>,
    },
    /// A kernel `dev_t` as `major:minor` (major = v >> 20, minor = v & 0xfffff).
    Dev,
    /// An IPv4 address held in network byte order (`__u32`, `__u8[4]`).
    Ipv4,
    /// An IPv6 address (`__u8[16]`, `__u32[4]`, `unsigned __int128`).
    Ipv6,
    /// An IPv4 or IPv6 address, as the member named here says (4 or AF_INET: IPv4; 6 or
    /// AF_INET6: IPv6), held in the first bytes of this one.
    Ip(String),
    /// An integer in hexadecimal: an address, a mask.
    Hex,
    /// An integer in octal: a file mode.
    Octal,
    /// An unsigned integer read as two's complement (a `__u32` holding a negative pgid).
    Signed,
    /// Bit flags by name.
    Flags(FlagSet),
}

/// The formats, as an error lists them.
pub const VALUE_FORMATS: &str = "errno, signal, syscall, ktime[:ns|us|ms|s], duration[:UNIT[:SHOWN UNIT]] (units ns, us, ms, s), dev, ipv4, ipv6, ip:<member holding the family>, hex, octal, signed, flags:open";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`; valid ones: {VALUE_FORMATS}")]
pub struct UnknownFormat(pub String);

impl ValueFormat {
    /// Parse `errno`, `duration:ns:ms`, `flags:open`...
    pub fn parse(text: &str) -> Result<ValueFormat, UnknownFormat> {
        let unknown = || UnknownFormat(text.to_string());
        let mut parts = text.split(':');
        let head = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let unit = |at: usize| match args.get(at) {
            None => Ok(None),
            Some(u) => TimeUnit::from_name(u).map(Some).ok_or_else(unknown),
        };
        let format = match (head, args.len()) {
            ("errno", 0) => ValueFormat::Errno,
            ("signal", 0) => ValueFormat::Signal,
            ("syscall", 0) => ValueFormat::Syscall,
            ("dev", 0) => ValueFormat::Dev,
            ("ipv4", 0) => ValueFormat::Ipv4,
            ("ipv6", 0) => ValueFormat::Ipv6,
            ("hex", 0) => ValueFormat::Hex,
            ("octal", 0) => ValueFormat::Octal,
            ("signed", 0) => ValueFormat::Signed,
            ("ktime", 0 | 1) => ValueFormat::Ktime(unit(0)?.unwrap_or(TimeUnit::Ns)),
            ("duration", 0..=2) => ValueFormat::Duration {
                unit: unit(0)?.unwrap_or(TimeUnit::Ns),
                shown: unit(1)?,
            },
            ("ip", 1) if is_identifier(args[0]) => ValueFormat::Ip(args[0].to_string()),
            ("flags", 1) if args[0] == "open" => ValueFormat::Flags(FlagSet::Open),
            _ => return Err(unknown()),
        };
        Ok(format)
    }

    /// Whether the format turns a number into a name, so that a program may ask for it
    /// only on request (`runner:names=`, shown with `runner run --names`).
    pub fn names(&self) -> bool {
        matches!(
            self,
            ValueFormat::Errno | ValueFormat::Signal | ValueFormat::Syscall | ValueFormat::Flags(_)
        )
    }

    /// Whether JSON keeps the number beside what the format shows (`"ret@raw": -2`): for
    /// every format but those whose text is the value itself, exactly (an address, a number
    /// in another base).
    pub fn keeps_raw(&self) -> bool {
        !matches!(
            self,
            ValueFormat::Hex
                | ValueFormat::Octal
                | ValueFormat::Signed
                | ValueFormat::Ipv4
                | ValueFormat::Ipv6
                | ValueFormat::Ip(_)
        )
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl std::fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueFormat::Errno => f.write_str("errno"),
            ValueFormat::Signal => f.write_str("signal"),
            ValueFormat::Syscall => f.write_str("syscall"),
            ValueFormat::Dev => f.write_str("dev"),
            ValueFormat::Ipv4 => f.write_str("ipv4"),
            ValueFormat::Ipv6 => f.write_str("ipv6"),
            ValueFormat::Hex => f.write_str("hex"),
            ValueFormat::Octal => f.write_str("octal"),
            ValueFormat::Signed => f.write_str("signed"),
            ValueFormat::Ktime(TimeUnit::Ns) => f.write_str("ktime"),
            ValueFormat::Ktime(unit) => write!(f, "ktime:{}", unit.name()),
            ValueFormat::Duration { unit, shown: None } => write!(f, "duration:{}", unit.name()),
            ValueFormat::Duration {
                unit,
                shown: Some(shown),
            } => write!(f, "duration:{}:{}", unit.name(), shown.name()),
            ValueFormat::Ip(member) => write!(f, "ip:{member}"),
            ValueFormat::Flags(FlagSet::Open) => f.write_str("flags:open"),
        }
    }
}

impl Serialize for ValueFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The section `runner build` anchors the program's own structs in (libbpf ignores it).
pub const KEEP_SECTION: &str = ".runner.keep";

macro_rules! map_types {
    ($($variant:ident = $name:literal,)*) => {
        /// `enum bpf_map_type`, in the kernel's order; a number this runner does not know
        /// is kept as `Other` and spelled `type_<n>`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum MapType {
            $($variant,)*
            Other(u32),
        }

        const MAP_TYPE_NAMES: &[(MapType, &str)] = &[$((MapType::$variant, $name),)*];
    };
}

map_types! {
    Unspec = "unspec",
    Hash = "hash",
    Array = "array",
    ProgArray = "prog_array",
    PerfEventArray = "perf_event_array",
    PercpuHash = "percpu_hash",
    PercpuArray = "percpu_array",
    StackTrace = "stack_trace",
    CgroupArray = "cgroup_array",
    LruHash = "lru_hash",
    LruPercpuHash = "lru_percpu_hash",
    LpmTrie = "lpm_trie",
    ArrayOfMaps = "array_of_maps",
    HashOfMaps = "hash_of_maps",
    Devmap = "devmap",
    Sockmap = "sockmap",
    Cpumap = "cpumap",
    Xskmap = "xskmap",
    Sockhash = "sockhash",
    CgroupStorage = "cgroup_storage",
    ReuseportSockarray = "reuseport_sockarray",
    PercpuCgroupStorage = "percpu_cgroup_storage",
    Queue = "queue",
    Stack = "stack",
    SkStorage = "sk_storage",
    DevmapHash = "devmap_hash",
    StructOps = "struct_ops",
    Ringbuf = "ringbuf",
    InodeStorage = "inode_storage",
    TaskStorage = "task_storage",
    BloomFilter = "bloom_filter",
    UserRingbuf = "user_ringbuf",
    CgrpStorage = "cgrp_storage",
    Arena = "arena",
}

impl MapType {
    /// From the number in a map definition's `__uint(type, ...)`.
    pub fn from_raw(raw: u32) -> MapType {
        MAP_TYPE_NAMES
            .get(raw as usize)
            .map_or(MapType::Other(raw), |(t, _)| *t)
    }

    pub fn name(self) -> String {
        match self {
            MapType::Other(raw) => format!("type_{raw}"),
            known => MAP_TYPE_NAMES
                .iter()
                .find(|(t, _)| *t == known)
                .map_or_else(String::new, |(_, n)| n.to_string()),
        }
    }

    fn from_name(name: &str) -> Option<MapType> {
        if let Some((t, _)) = MAP_TYPE_NAMES.iter().find(|(_, n)| *n == name) {
            return Some(*t);
        }
        let raw: u32 = name.strip_prefix("type_")?.parse().ok()?;
        Some(MapType::from_raw(raw)).filter(|t| matches!(t, MapType::Other(_)))
    }

    /// The event channel a map of this type is, if it is one.
    pub fn channel(self) -> Option<Channel> {
        match self {
            MapType::Ringbuf => Some(Channel::Ringbuf),
            MapType::PerfEventArray => Some(Channel::PerfEventArray),
            _ => None,
        }
    }

    /// Whether each CPU has its own copy of every value.
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }
}

impl Serialize for MapType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for MapType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MapType, D::Error> {
        let name = String::deserialize(d)?;
        MapType::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown map type `{name}`")))
    }
}

/// The data sections libbpf turns into maps: `.rodata`, `.data`, `.bss`, and their
/// `.<base>.<name>` variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DataSection {
    Rodata,
    Data,
    Bss,
}

impl DataSection {
    const ALL: [(DataSection, &'static str); 3] = [
        (DataSection::Rodata, ".rodata"),
        (DataSection::Data, ".data"),
        (DataSection::Bss, ".bss"),
    ];

    /// Which data section `section` is, if it is one.
    pub fn of(section: &str) -> Option<DataSection> {
        Self::ALL.iter().find_map(|(kind, base)| {
            let rest = section.strip_prefix(base)?;
            (rest.is_empty() || rest.starts_with('.')).then_some(*kind)
        })
    }

    /// Whether libbpf names the internal map of `section` `map_name`: it prefixes the
    /// section name (cut to 15 bytes) with part of the object's name.
    pub fn names_map(section: &str, map_name: &str) -> bool {
        let cut = &section.as_bytes()[..section.len().min(15)];
        map_name.as_bytes().ends_with(cut)
    }
}

/// What a `runner:` annotation may be attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Map,
    Global,
    Program,
    /// A struct or union member, or a typedef: what a value is read as.
    Value,
}

impl Target {
    fn noun(self) -> &'static str {
        match self {
            Target::Map => "a map",
            Target::Global => "a global",
            Target::Program => "a program",
            Target::Value => "a struct member or a typedef",
        }
    }
}

/// One `runner:<key>=<value>` declaration tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Annotation {
    /// On a ring buffer or perf event array: the struct it carries.
    Event(String),
    /// On a `__u64` global: it counts the events lost on this map.
    Lost(String),
    /// On a program: load it only when this bool global is true.
    If(String),
    /// On a program: load it only when this bool global is false.
    Unless(String),
    /// On a map: how the runner prints it.
    View(View),
    /// On a map: the unit of its histogram's values (`usecs`), for the header.
    Unit(String),
    /// On a member or a typedef: how its values are shown; `on_request` (`runner:names=`)
    /// only when the run asks for names.
    Format {
        format: ValueFormat,
        on_request: bool,
    },
    /// On a ring buffer: its records wake the reader when this global is set (the reader
    /// sleeps) or the ring is a quarter full, and otherwise never (`runner/ring.h`).
    Wakeup(String),
    /// On an event channel: a counter of its events for `--metrics`, labelled by members
    /// of the event struct.
    Metric(MetricTag),
}

/// `runner:metric=<name>[:<member>,...[:<max series>]]`: counter `name` of a channel's
/// events, one series per value of the members; at most `max_series` series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricTag {
    pub name: String,
    pub labels: Vec<String>,
    pub max_series: Option<u32>,
}

impl MetricTag {
    /// Parse the value of the tag; `None` when it has not that form.
    fn parse(value: &str) -> Option<MetricTag> {
        let mut parts = value.split(':');
        let name = parts.next()?.to_string();
        let labels = match parts.next() {
            None | Some("") => Vec::new(),
            Some(list) => list.split(',').map(str::to_string).collect(),
        };
        let max_series = match parts.next() {
            None => None,
            Some(n) => Some(n.parse().ok()?),
        };
        let identifiers = std::iter::once(&name)
            .chain(&labels)
            .all(|n| Self::is_name(n));
        (parts.next().is_none() && identifiers).then_some(MetricTag {
            name,
            labels,
            max_series,
        })
    }

    /// A C identifier: what names of metrics and of their labels are made of.
    pub fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
}

/// Every annotation: its key, what it goes on, and the form of its value, for errors.
const ANNOTATIONS: &[(&str, Target, &str)] = &[
    ("event", Target::Map, "<struct>"),
    ("lost", Target::Global, "<map>"),
    ("if", Target::Program, "<bool global>"),
    ("unless", Target::Program, "<bool global>"),
    ("view", Target::Map, "table|log2_hist|linear_hist"),
    ("unit", Target::Map, "<unit>"),
    ("format", Target::Value, "<format>"),
    ("names", Target::Value, "errno|signal|syscall|flags:<set>"),
    (
        "metric",
        Target::Map,
        "<name>[:<member>,...[:<max series>]]",
    ),
    ("wakeup", Target::Map, "<global>"),
];

/// The valid annotations, as a list for an error message.
pub fn valid_annotations() -> String {
    ANNOTATIONS
        .iter()
        .map(|(key, target, value)| format!("runner:{key}={value} (on {})", target.noun()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    #[error(
        "unknown annotation `{tag}` on {what}; valid ones: {}",
        valid_annotations()
    )]
    Unknown { tag: String, what: String },
    #[error("annotation `{tag}` belongs on {}, not on {what}", target.noun())]
    Misplaced {
        tag: String,
        what: String,
        target: Target,
    },
    #[error("annotation `{tag}` on {what} has no value; expected runner:{key}={form}")]
    Empty {
        tag: String,
        what: String,
        key: &'static str,
        form: &'static str,
    },
    #[error(
        "annotation `{tag}` on {what}: unknown view `{view}` (expected {})",
        View::names()
    )]
    UnknownView {
        tag: String,
        what: String,
        view: String,
    },
    #[error("annotation `{tag}` on {what}: {cause}")]
    UnknownFormat {
        tag: String,
        what: String,
        cause: UnknownFormat,
    },
    #[error("annotation `{tag}` on {what}: `{format}` shows no names, so it is shown always: use runner:format={format}")]
    NotNames {
        tag: String,
        what: String,
        format: ValueFormat,
    },
    #[error("annotation `{tag}` on {what}: expected runner:metric=<name>[:<member>,...[:<max series>]], names being C identifiers")]
    BadMetric { tag: String, what: String },
}

impl Annotation {
    /// Parse a declaration tag found on `what` (a map, global or program, described for
    /// errors). Tags outside the `runner:` namespace are not ours: `None`.
    pub fn parse(tag: &str, on: Target, what: &str) -> Option<Result<Annotation, AnnotationError>> {
        let body = tag.strip_prefix("runner:")?;
        Some(Self::parse_body(tag, body, on, what))
    }

    fn parse_body(
        tag: &str,
        body: &str,
        on: Target,
        what: &str,
    ) -> Result<Annotation, AnnotationError> {
        let (key, value) = body.split_once('=').unwrap_or((body, ""));
        let Some(&(key, target, form)) = ANNOTATIONS.iter().find(|(k, _, _)| *k == key) else {
            return Err(AnnotationError::Unknown {
                tag: tag.into(),
                what: what.into(),
            });
        };
        if target != on {
            return Err(AnnotationError::Misplaced {
                tag: tag.into(),
                what: what.into(),
                target,
            });
        }
        if value.is_empty() {
            return Err(AnnotationError::Empty {
                tag: tag.into(),
                what: what.into(),
                key,
                form,
            });
        }
        if key == "format" || key == "names" {
            return Self::format(tag, key, value, what);
        }
        let value = value.to_string();
        Ok(match key {
            "event" => Annotation::Event(value),
            "lost" => Annotation::Lost(value),
            "if" => Annotation::If(value),
            "unless" => Annotation::Unless(value),
            "unit" => Annotation::Unit(value),
            "metric" => match MetricTag::parse(&value) {
                Some(metric) => Annotation::Metric(metric),
                None => {
                    return Err(AnnotationError::BadMetric {
                        tag: tag.into(),
                        what: what.into(),
                    })
                }
            },
            "wakeup" => Annotation::Wakeup(value),
            _ => match View::from_name(&value) {
                Some(view) => Annotation::View(view),
                None => {
                    return Err(AnnotationError::UnknownView {
                        tag: tag.into(),
                        what: what.into(),
                        view: value,
                    })
                }
            },
        })
    }
}

impl Annotation {
    /// `runner:format=<format>` or `runner:names=<format that shows names>`.
    fn format(
        tag: &str,
        key: &str,
        value: &str,
        what: &str,
    ) -> Result<Annotation, AnnotationError> {
        let format = ValueFormat::parse(value).map_err(|cause| AnnotationError::UnknownFormat {
            tag: tag.into(),
            what: what.into(),
            cause,
        })?;
        let on_request = key == "names";
        if on_request && !format.names() {
            return Err(AnnotationError::NotNames {
                tag: tag.into(),
                what: what.into(),
                format,
            });
        }
        Ok(Annotation::Format { format, on_request })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_types_round_trip_by_name() {
        for raw in 0..40 {
            let t = MapType::from_raw(raw);
            assert_eq!(MapType::from_name(&t.name()), Some(t), "{raw}");
        }
        assert_eq!(MapType::from_raw(27).name(), "ringbuf");
        assert_eq!(MapType::from_raw(99).name(), "type_99");
        assert_eq!(
            MapType::from_name("type_1"),
            None,
            "a known type has its name"
        );
        assert!(MapType::LruPercpuHash.is_percpu() && !MapType::LruHash.is_percpu());
    }

    #[test]
    fn data_sections() {
        assert_eq!(DataSection::of(".rodata"), Some(DataSection::Rodata));
        assert_eq!(DataSection::of(".data.custom"), Some(DataSection::Data));
        assert_eq!(DataSection::of(".rodata_x"), None);
        assert_eq!(DataSection::of(".maps"), None);
        assert!(DataSection::names_map(".bss", "sigsnoop.bss"));
        assert!(DataSection::names_map(
            ".data.a_long_name",
            ".data.a_long_na"
        ));
        assert!(!DataSection::names_map(".bss", "events"));
    }

    #[test]
    fn annotations_parse_once_and_name_the_valid_ones() {
        let parse = |tag, on| Annotation::parse(tag, on, "map `events`").unwrap();
        assert_eq!(
            parse("runner:event=sample", Target::Map).unwrap(),
            Annotation::Event("sample".into())
        );
        assert_eq!(
            parse("runner:view=log2_hist", Target::Map).unwrap(),
            Annotation::View(View::Log2Hist)
        );
        let typo = parse("runner:lsot=events", Target::Global).unwrap_err();
        assert!(typo.to_string().starts_with(
            "unknown annotation `runner:lsot=events` on map `events`; valid ones: runner:event=<struct> (on a map), runner:lost=<map> (on a global)"
        ));
        let misplaced = parse("runner:if=x", Target::Map).unwrap_err().to_string();
        assert_eq!(
            misplaced,
            "annotation `runner:if=x` belongs on a program, not on map `events`"
        );
        assert_eq!(
            parse("runner:view=linear_hist", Target::Map).unwrap(),
            Annotation::View(View::LinearHist)
        );
        assert_eq!(
            parse("runner:unit=usecs", Target::Map).unwrap(),
            Annotation::Unit("usecs".into())
        );
        assert_eq!(
            parse("runner:view=pie", Target::Map).unwrap_err().to_string(),
            "annotation `runner:view=pie` on map `events`: unknown view `pie` (expected table, log2_hist or linear_hist)"
        );
        assert!(parse("runner:lost", Target::Global).is_err());
        assert_eq!(
            parse("runner:metric=signals:sig,comm:50", Target::Map).unwrap(),
            Annotation::Metric(MetricTag {
                name: "signals".into(),
                labels: vec!["sig".into(), "comm".into()],
                max_series: Some(50),
            })
        );
        assert_eq!(
            parse("runner:metric=all", Target::Map).unwrap(),
            Annotation::Metric(MetricTag {
                name: "all".into(),
                labels: Vec::new(),
                max_series: None,
            })
        );
        for bad in [
            "runner:metric=a:b:x",
            "runner:metric=a-b",
            "runner:metric=a:b,,c",
            "runner:metric=a:b:1:2",
        ] {
            assert_eq!(
                parse(bad, Target::Map).unwrap_err().to_string(),
                format!("annotation `{bad}` on map `events`: expected runner:metric=<name>[:<member>,...[:<max series>]], names being C identifiers")
            );
        }
        assert!(Annotation::parse("bpf_kfunc", Target::Program, "f").is_none());
    }
}
