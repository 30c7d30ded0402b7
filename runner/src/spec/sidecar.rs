//! The sidecar: what a program's userspace front end decides and its BPF source cannot
//! say, declared in a JSON file beside the source (`<base>.runner.json` for
//! `<base>.bpf.c`) for a source one cannot edit. `runner build` reads it, the packer checks
//! every name in it against the object (`spec::pack::declare`) and stores it in the
//! package as its `declarations`, from which the runner derives the description again.
//! `schemas/sidecar.schema.json` documents it.
//!
//! A sidecar is written by a person, so unlike a package it is strict: an unknown key is
//! an error naming where it is (`programs.optinal`), so a typo cannot silently do nothing.
//! Stored in a package, the same declarations follow the package's rule instead: keys
//! this runner does not know are ignored. New kinds of declarations (like `metrics` and
//! `formats`) are new top-level keys; one a runner must understand adds a feature to the
//! package's `requires` (`metrics` and `formats` need none: a runner without them runs the
//! package the same, only presented differently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::spec::shown_decl::{MemberDecl, MEMBER_KEYS};
use crate::spec::vocab::View;

/// A sidecar file, read and parsed; every name in it still to be checked against the
/// object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// A schema reference for editors; not kept.
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    /// The package description (wins over the source's leading comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which struct each event channel carries, as `--event MAP=STRUCT` says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, String>,
    /// Switches with no global behind them (`-k` of bcc's sigsnoop), usable in conditions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, SwitchDecl>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub globals: BTreeMap<String, GlobalDecl>,
    #[serde(default, skip_serializing_if = "ProgramsDecl::is_empty")]
    pub programs: ProgramsDecl,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub maps: BTreeMap<String, MapDecl>,
    /// How members are shown, by struct name, then member path (`fname.depth`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formats: BTreeMap<String, BTreeMap<String, MemberDecl>>,
    /// Counters of events that `runner run --metrics` serves, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricDecl>,
}

/// A counter of a channel's events, labelled by members of the event struct.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricDecl {
    /// The event channel whose events it counts (may be left out when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    /// Top-level members of the event struct whose values label the series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The most series kept (default 1000); events of any further label set are counted
    /// as dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_series: Option<u32>,
    /// The help line of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwitchDecl {
    /// The switch's help line.
    #[serde(default)]
    pub help: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalDecl {
    /// The package's default, written into the object when the flag is not given
    /// (instead of the value compiled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The flag's help line (instead of the comment above the declaration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// No flag for this global; the text says why (`runner info` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide: Option<String>,
    /// Passing this global's flag also sets these globals to these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub implies: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgramsDecl {
    /// Alternatives across different hooks, best first: exactly one of each loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<String>>,
    /// Left out, with one line on stderr, when its hook is missing or it fails to load or
    /// attach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<String>,
    /// Loaded only when this flag (a bool global or a switch) is true.
    #[serde(rename = "if", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub when: BTreeMap<String, String>,
    /// Loaded only when this flag (a bool global or a switch) is false.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unless: BTreeMap<String, String>,
    /// Targets (`BINARY:FUNCTION`) of a uprobe without one, tried in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attach: BTreeMap<String, Vec<String>>,
}

impl ProgramsDecl {
    fn is_empty(&self) -> bool {
        self == &ProgramsDecl::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapDecl {
    /// The map's size, for a map the object declares without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<Choice<Entries>>,
    /// How the runner prints the map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// What a histogram of the map counts (`usecs`), for its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A map size: a number, or what the front end reads from the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    Count(u32),
    /// `/proc/sys/kernel/pid_max`.
    PidMax,
    /// The number of possible CPUs.
    Ncpus,
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Entries::Count(n) => s.serialize_u32(*n),
            Entries::PidMax => s.serialize_str("pid_max"),
            Entries::Ncpus => s.serialize_str("ncpus"),
        }
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => Ok(Entries::Count(n)),
                _ => Err(D::Error::custom(format!(
                    "a map size is a number from 1 to {}, not {n}",
                    u32::MAX
                ))),
            },
            Value::String(s) if s == "pid_max" => Ok(Entries::PidMax),
            Value::String(s) if s == "ncpus" => Ok(Entries::Ncpus),
            other => Err(D::Error::custom(format!(
                "a map size is a number, \"pid_max\" or \"ncpus\", not {other}"
            ))),
        }
    }
}

/// A value that may depend on a flag: `X`, or `{"if": FLAG, "then": X, "else": X}`
/// (either branch may be a choice again).
#[derive(Debug, Clone, PartialEq)]
pub enum Choice<T> {
    Is(T),
    If {
        flag: String,
        then: Box<Choice<T>>,
        otherwise: Box<Choice<T>>,
    },
}

impl<T> Choice<T> {
    /// The value for the flags' values (`flag(name)` is whether that flag is on).
    pub fn pick(&self, flag: &dyn Fn(&str) -> bool) -> &T {
        match self {
            Choice::Is(value) => value,
            Choice::If {
                flag: name,
                then,
                otherwise,
            } => {
                if flag(name) {
                    then.pick(flag)
                } else {
                    otherwise.pick(flag)
                }
            }
        }
    }

    /// Every flag the choice depends on.
    pub fn flags(&self) -> Vec<&str> {
        match self {
            Choice::Is(_) => Vec::new(),
            Choice::If {
                flag,
                then,
                otherwise,
            } => {
                let mut all = vec![flag.as_str()];
                all.extend(then.flags());
                all.extend(otherwise.flags());
                all
            }
        }
    }
}

impl<T: Serialize> Serialize for Choice<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Choice::Is(value) => value.serialize(s),
            Choice::If {
                flag,
                then,
                otherwise,
            } => {
                use serde::ser::SerializeMap as _;
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("if", flag)?;
                map.serialize_entry("then", then)?;
                map.serialize_entry("else", otherwise)?;
                map.end()
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Choice<T>, D::Error> {
        choice(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

fn choice<T: DeserializeOwned>(value: Value) -> Result<Choice<T>, String> {
    let Value::Object(mut map) = value else {
        return serde_json::from_value(value)
            .map(Choice::Is)
            .map_err(|e| e.to_string());
    };
    if !map.contains_key("if") {
        return serde_json::from_value(Value::Object(map))
            .map(Choice::Is)
            .map_err(|e| e.to_string());
    }
    if let Some(extra) = map
        .keys()
        .find(|k| !["if", "then", "else"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key `{extra}` in a choice; expected `if`, `then` and `else`"
        ));
    }
    let flag = match map.remove("if") {
        Some(Value::String(flag)) => flag,
        _ => return Err("`if` names a flag (a bool global or a switch)".into()),
    };
    let mut branch = |key: &str| match map.remove(key) {
        Some(v) => choice(v).map(Box::new),
        None => Err(format!("a choice on `{flag}` needs `then` and `else`")),
    };
    let then = branch("then")?;
    let otherwise = branch("else")?;
    Ok(Choice::If {
        flag,
        then,
        otherwise,
    })
}

/// The keys of each object of the format, for the error about an unknown one.
const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "$schema",
            "description",
            "events",
            "flags",
            "globals",
            "programs",
            "maps",
            "formats",
            "metrics",
        ],
    ),
    ("flags.", &["help"]),
    ("globals.", &["default", "help", "hide", "implies"]),
    (
        "programs",
        &["groups", "optional", "if", "unless", "attach"],
    ),
    ("maps.", &["max_entries", "view", "unit"]),
    ("formats.", MEMBER_KEYS),
    ("metrics.", &["map", "labels", "max_series", "help"]),
];

/// `a`, `b`, `c`: the keys of the object at `parent` (a path like `globals.targ_uid`).
fn keys_of(parent: &str) -> String {
    let keys = KEYS
        .iter()
        .find(|(prefix, _)| match prefix.strip_suffix('.') {
            Some(section) => parent.starts_with(prefix) && parent != section,
            None => parent == *prefix,
        })
        .map_or(&[][..], |(_, keys)| keys);
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("cannot read sidecar `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sidecar `{path}`: {at}{cause}")]
    Parse {
        path: PathBuf,
        at: String,
        cause: String,
    },
}

impl Sidecar {
    /// The sidecar of source `source`: `<base>.runner.json` beside it, where `<base>` is
    /// the file name without `.bpf.c` (or `.c`).
    pub fn beside(source: &Path) -> PathBuf {
        let file = source.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let base = file
            .strip_suffix(".bpf.c")
            .or_else(|| file.strip_suffix(".c"))
            .unwrap_or(file);
        source.with_file_name(format!("{base}.runner.json"))
    }

    /// Read and parse the sidecar at `path`; errors name the file and where in it.
    pub fn read(path: &Path) -> Result<Sidecar, SidecarError> {
        let text = std::fs::read(path).map_err(|source| SidecarError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse a sidecar strictly: a key this runner does not know is an error.
    pub fn parse(text: &[u8], path: &Path) -> Result<Sidecar, SidecarError> {
        let mut unknown: Vec<(String, String)> = Vec::new();
        let de = &mut serde_json::Deserializer::from_slice(text);
        let mut note = |at: serde_ignored::Path| {
            if let serde_ignored::Path::Map { parent, key } = at {
                let parent = parent.to_string();
                let parent = if parent == "." { String::new() } else { parent };
                unknown.push((parent, key));
            }
        };
        let tracked = serde_ignored::Deserializer::new(de, &mut note);
        let parsed: Result<Sidecar, _> = serde_path_to_error::deserialize(tracked);
        let error = |at: String, cause: String| SidecarError::Parse {
            path: path.into(),
            at: if at.is_empty() || at == "." {
                String::new()
            } else {
                format!("{at}: ")
            },
            cause,
        };
        // An unknown key first: a misspelt key is often why what follows does not parse.
        if let Some((parent, key)) = unknown.into_iter().next() {
            let at = if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            };
            let cause = format!("unknown key `{key}`; expected one of {}", keys_of(&parent));
            return Err(error(at, cause));
        }
        parsed.map_err(|e| error(e.path().to_string(), e.into_inner().to_string()))
    }

    /// Parse the declarations stored in a package: keys this runner does not know are
    /// ignored, as everywhere in a package (a newer runner may have added them).
    pub fn from_package(value: &Value) -> Result<Sidecar, String> {
        let mut value = value.clone();
        if let Some(formats) = value.get_mut("formats") {
            crate::spec::shown_decl::drop_unknown_formats(formats);
        }
        serde_path_to_error::deserialize(&value).map_err(|e| {
            let at = e.path().to_string();
            format!("{at}: {}", e.into_inner())
        })
    }

    /// Whether it declares nothing.
    pub fn is_empty(&self) -> bool {
        Sidecar {
            schema: None,
            ..self.clone()
        } == Sidecar::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sidecar, String> {
        Sidecar::parse(text.as_bytes(), Path::new("x.runner.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_beside_a_source() {
        assert_eq!(
            Sidecar::beside(Path::new("a/opensnoop.bpf.c")),
            Path::new("a/opensnoop.runner.json")
        );
        assert_eq!(
            Sidecar::beside(Path::new("prog.c")),
            Path::new("prog.runner.json")
        );
    }

    #[test]
    fn reads_every_key() {
        let sidecar = parse(
            r#"{
              "$schema": "../../schemas/sidecar.schema.json",
              "description": "Trace signals",
              "events": {"events": "event"},
              "flags": {"kill_only": {"help": "kill only"}},
              "globals": {"targ_uid": {"default": 4294967295, "help": "uid", "hide": "why",
                          "implies": {"filter": true}}},
              "programs": {"groups": [["a", "b"]], "optional": ["c"], "if": {"d": "kill_only"},
                           "unless": {"e": "kill_only"}, "attach": {"f": ["/bin/bash:readline"]}},
              "maps": {"start": {"max_entries": "pid_max"},
                       "hists": {"max_entries": {"if": "per_pid", "then": "pid_max", "else": 1},
                                 "view": "log2_hist", "unit": "usecs"}},
              "formats": {"event": {"ret": "errno", "ts": "hide",
                                    "arg": {"union": "op", "cases": {"MOUNT": "mount"}}}},
              "metrics": {"signals": {"map": "events", "labels": ["sig", "comm"],
                                      "max_series": 50, "help": "signals by number"}}
            }"#,
        )
        .unwrap();
        assert_eq!(
            sidecar.maps["hists"].max_entries,
            Some(Choice::If {
                flag: "per_pid".into(),
                then: Box::new(Choice::Is(Entries::PidMax)),
                otherwise: Box::new(Choice::Is(Entries::Count(1))),
            })
        );
        let size = sidecar.maps["hists"].max_entries.as_ref().unwrap();
        assert_eq!(size.pick(&|f| f == "per_pid"), &Entries::PidMax);
        assert_eq!(size.pick(&|_| false), &Entries::Count(1));
        assert_eq!(size.flags(), ["per_pid"]);
        // The keys of every object are the ones `KEYS` lists for its error messages.
        let full = serde_json::to_value(&sidecar).unwrap();
        let names = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let mut top = vec!["$schema".to_string()];
        top.extend(names(&full));
        for (parent, value) in [
            ("", top),
            ("flags.kill_only", names(&full["flags"]["kill_only"])),
            ("globals.targ_uid", names(&full["globals"]["targ_uid"])),
            ("programs", names(&full["programs"])),
            ("maps.hists", names(&full["maps"]["hists"])),
            (
                "formats.event.arg",
                ["format", "names", "hide", "union", "cases"]
                    .map(String::from)
                    .to_vec(),
            ),
            ("metrics.signals", names(&full["metrics"]["signals"])),
        ] {
            let listed: Vec<String> = value.iter().map(|k| format!("`{k}`")).collect();
            assert_eq!(keys_of(parent), listed.join(", "), "{parent}");
        }
        // What it declares survives a round trip through the package (without $schema).
        let text = serde_json::to_string(&sidecar).unwrap();
        assert!(!text.contains("$schema"));
        let back = parse(&text).unwrap();
        assert_eq!(
            back,
            Sidecar {
                schema: None,
                ..sidecar
            }
        );
    }

    #[test]
    fn typos_are_errors_that_say_where() {
        assert_eq!(
            parse(r#"{"programs": {"optinal": ["x"]}}"#).unwrap_err(),
            "sidecar `x.runner.json`: programs.optinal: unknown key `optinal`; expected one of `groups`, `optional`, `if`, `unless`, `attach`"
        );
        assert_eq!(
            parse(r#"{"alerts": {}}"#).unwrap_err(),
            "sidecar `x.runner.json`: alerts: unknown key `alerts`; expected one of `$schema`, `description`, `events`, `flags`, `globals`, `programs`, `maps`, `formats`, `metrics`"
        );
        assert_eq!(
            parse(r#"{"formats": {"event": {"fname.depth": {"hdie": true}}}}"#).unwrap_err(),
            "sidecar `x.runner.json`: formats.event.fname.depth.hdie: unknown key `hdie`; expected one of `format`, `names`, `hide`, `union`, `cases`"
        );
        assert!(parse(r#"{"formats": {"event": {"ret": "erno"}}}"#)
            .unwrap_err()
            .starts_with("sidecar `x.runner.json`: formats.event.ret: unknown format `erno`; valid ones: errno,"));
        assert_eq!(
            parse(r#"{"globals": {"g": {"defualt": 1}}}"#).unwrap_err(),
            "sidecar `x.runner.json`: globals.g.defualt: unknown key `defualt`; expected one of `default`, `help`, `hide`, `implies`"
        );
        assert!(parse(r#"{"maps": {"m": {"size": 1}}}"#)
            .unwrap_err()
            .ends_with(
                "maps.m.size: unknown key `size`; expected one of `max_entries`, `view`, `unit`"
            ));
        assert!(parse(r#"{"metrics": {"m": {"label": ["a"]}}}"#)
            .unwrap_err()
            .ends_with("metrics.m.label: unknown key `label`; expected one of `map`, `labels`, `max_series`, `help`"));
        assert!(parse(r#"{"flags": {"k": {"hlep": ""}}}"#)
            .unwrap_err()
            .ends_with("flags.k.hlep: unknown key `hlep`; expected one of `help`"));
        // In a package the same keys are ignored: a newer runner may have added them.
        let newer = serde_json::json!({"metrics": {}, "programs": {"optional": ["x"], "later": 1},
            "formats": {"event": {"ret": {"format": "errno", "color": "red"}}}});
        assert_eq!(
            Sidecar::from_package(&newer).unwrap().programs.optional,
            ["x"]
        );
        let bad_size = parse(r#"{"maps": {"m": {"max_entries": 0}}}"#).unwrap_err();
        assert!(
            bad_size.starts_with(
                "sidecar `x.runner.json`: maps.m.max_entries: a map size is a number from 1"
            ),
            "{bad_size}"
        );
        let bad_choice = parse(r#"{"maps": {"m": {"max_entries": {"if": "f", "then": 1}}}}"#);
        assert!(bad_choice.unwrap_err().contains("needs `then` and `else`"));
        assert!(parse("{").unwrap_err().contains("EOF while parsing"));
        assert!(parse(r#"{"maps": {"m": {"view": "pie"}}}"#)
            .unwrap_err()
            .contains("maps.m.view: unknown variant `pie`"));
    }
}
