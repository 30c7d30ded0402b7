//! The package schema (`schemas/package.schema.json`) held against the runner.
//!
//! - The schema is valid draft 2020-12, documents every field and closes every object.
//! - Real packages validate: the committed sigsnoop one, and fresh ones from `runner build`
//!   and `runner pack` (sigsnoop, and `fixtures/schema/kinds.bpf.c`, which uses every kind).
//! - A package using every field and variant of the serde types validates, and the
//!   schema's closed lists (type kinds, channels, views, attach kinds) are exactly the
//!   serde enums' variants.
//! - Broken packages (the mutations of sigsnoop in `fixtures/schema/broken.json`) are
//!   rejected at the path each names, and those marked `"reader": "rejects"` are rejected
//!   by `runner info` too, with a one-line error; `{"schema_only": "why"}` marks the ones
//!   only the schema catches.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use jsonschema::Validator;
use runner::spec::flags::flag_for;
use runner::spec::package::{
    Attach, AttachKind, Channel, Choice, Condition, Embedded, Entries, Event, EventMetric, Global,
    Group, Implied, Map, Package, Program, Switch, View, FORMAT_VERSION,
};
use runner::spec::types::{self, Bitfield, EnumValue, Kind, Member, Selector, Shown, Type};
use runner::spec::vocab::ValueFormat;
use serde_json::{json, Value};

use common::{repo, run_runner, sigsnoop_package};

fn schema() -> Value {
    let path = repo().join("schemas/package.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validator() -> Validator {
    jsonschema::draft202012::new(&schema())
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"))
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every validation error: where in the instance (a JSON pointer), and what.
fn errors(validator: &Validator, instance: &Value) -> Vec<(String, String)> {
    validator
        .iter_errors(instance)
        .map(|e| (e.instance_path.as_str().to_string(), e.to_string()))
        .collect()
}

fn show(errors: &[(String, String)]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|(at, what)| format!("`{at}`: {what}"))
        .collect();
    lines.join("\n    ")
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n    {}",
        show(&errors)
    );
}

// ---------------------------------------------------------------------------------------
// The schema itself
// ---------------------------------------------------------------------------------------

#[test]
fn schema_is_valid_draft_2020_12() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["$id"],
        "https://runner.invalid/schemas/package.schema.json"
    );
    // The 2020-12 meta-schema ships with the crate: no network.
    let meta = jsonschema::draft202012::new(
        &json!({ "$ref": "https://json-schema.org/draft/2020-12/schema" }),
    )
    .expect("the 2020-12 meta-schema compiles");
    assert_valid(
        &meta,
        &schema,
        "the schema, against the 2020-12 meta-schema,",
    );
    // Meta-validation lets unknown keywords through; compiling catches bad regexes and refs.
    validator();
}

/// Visit every subschema of `node` with its location, and whether it lies under an `if`
/// (a condition, not a description of a field).
fn walk<'a>(node: &'a Value, at: &str, in_if: bool, visit: &mut dyn FnMut(&str, &'a Value, bool)) {
    visit(at, node, in_if);
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                walk(child, &format!("{at}/{key}"), in_if || key == "if", visit);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{i}"), in_if, visit);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_documents_every_field_and_closes_every_object() {
    let schema = schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let mut problems = Vec::new();
    let mut refs = BTreeSet::new();
    // Definitions only ever used as the `then` of a kind switch are closed by the
    // `unevaluatedProperties: false` of the schema that switches.
    let mut then_only = BTreeSet::new();
    walk(&schema, "#", false, &mut |at, node, in_if| {
        let Some(obj) = node.as_object() else { return };
        if let Some(Value::String(target)) = obj.get("$ref") {
            let name = target.strip_prefix("#/$defs/").unwrap_or(target);
            refs.insert(name.to_string());
            if at.ends_with("/then") {
                then_only.insert(name.to_string());
            }
        }
        if in_if {
            return;
        }
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, prop) in props {
                if !prop.get("description").is_some_and(Value::is_string) {
                    problems.push(format!("{at}/properties/{name} has no description"));
                }
            }
        }
    });
    for name in &refs {
        if !defs.contains_key(name) {
            problems.push(format!("$ref to #/$defs/{name}, which does not exist"));
        }
    }
    // The compatibility contract: unknown fields are ignored everywhere, so no object of
    // the format may be closed.
    let closed = |s: &Value| {
        s.get("additionalProperties") == Some(&json!(false))
            || s.get("unevaluatedProperties") == Some(&json!(false))
    };
    if closed(&schema) {
        problems.push("the top level is closed".into());
    }
    for (name, def) in defs {
        if !def.get("description").is_some_and(Value::is_string) {
            problems.push(format!("#/$defs/{name} has no description"));
        }
        if !refs.contains(name) {
            problems.push(format!("#/$defs/{name} is never used"));
        }
        if closed(def) {
            problems.push(format!(
                "#/$defs/{name} is closed, but a runner ignores unknown fields"
            ));
        }
        // Every required field is described.
        for field in def
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = field.as_str().unwrap();
            if def["properties"].get(field).is_none() {
                problems.push(format!(
                    "#/$defs/{name} requires `{field}` but does not describe it"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "schema problems:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Real packages validate
// ---------------------------------------------------------------------------------------

#[test]
fn committed_sigsnoop_package_validates() {
    assert_valid(
        &validator(),
        &read_json(&sigsnoop_package()),
        "programs/sigsnoop/package.json",
    );
}

fn run_ok(args: &[&str]) {
    let out = run_runner(args);
    assert!(
        out.status.success(),
        "runner {args:?} failed ({}):\n{}",
        out.status,
        out.stderr
    );
}

/// `runner build` a source (keeping the object), then `runner pack` that object; both
/// packages must validate and be the same bytes.
fn build_and_pack(source: &Path, name: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = dir.path().join("built.json");
    let object = dir.path().join(format!("{name}.bpf.o"));
    let packed = dir.path().join("packed.json");
    let [source, built_s, object_s, packed_s] =
        [source, &built, &object, &packed].map(|p| p.to_str().expect("UTF-8 path"));
    run_ok(&["build", source, "-o", built_s, "--object", object_s]);
    run_ok(&[
        "pack", object_s, "--source", source, "--name", name, "-o", packed_s,
    ]);

    let validator = validator();
    let built_json = read_json(&built);
    assert_valid(&validator, &built_json, &format!("`runner build {source}`"));
    assert_valid(
        &validator,
        &read_json(&packed),
        &format!("`runner pack` of {name}'s object"),
    );
    assert!(
        std::fs::read(&built).unwrap() == std::fs::read(&packed).unwrap(),
        "`runner build` and `runner pack` of the same object differ for {name}"
    );
    built_json
}

#[test]
fn freshly_built_sigsnoop_validates() {
    let package = build_and_pack(&repo().join("programs/sigsnoop/sigsnoop.bpf.c"), "sigsnoop");
    assert_eq!(package["name"], "sigsnoop");
    assert_eq!(package["events"][0]["channel"], "ringbuf");
}

#[test]
fn freshly_built_package_of_every_kind_validates() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema/kinds.bpf.c");
    let package = build_and_pack(&source, "kinds");
    // The fixture did produce what it is there for.
    let mut kinds = BTreeSet::new();
    walk(&package, "", false, &mut |_, node, _| {
        if let Some(kind) = node.get("kind").and_then(Value::as_str) {
            kinds.insert(kind.to_string());
        }
    });
    for kind in [
        "int", "char", "bool", "float", "enum", "array", "struct", "union", "pointer",
    ] {
        assert!(kinds.contains(kind), "kinds.bpf.c packs no `{kind}` type");
    }
    let record = &package["events"][0]["type"]["members"];
    assert_eq!(record[0]["bitfield"], json!({"bit_offset": 0, "bits": 3}));
    assert_eq!(record[1]["bitfield"], json!({"bit_offset": 3, "bits": 21}));
    let wide = record
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "wide")
        .expect("member `wide`");
    assert_eq!(
        wide["type"]["values"][1],
        json!({"name": "WIDE_TOP", "value": u64::MAX})
    );
    assert_eq!(package["events"][1]["lost_counter"], "lost");
    assert_eq!(package["maps"][2]["view"], "table");
    assert_eq!(
        package["programs"][1]["when"],
        json!({"global": "extra", "equals": true})
    );
}

// ---------------------------------------------------------------------------------------
// The serde types against the schema
// ---------------------------------------------------------------------------------------

fn ty(c: &str, kind: Kind) -> Type {
    Type { c: c.into(), kind }
}

fn int(c: &str, size: u32, signed: bool) -> Type {
    ty(c, Kind::Int { size, signed })
}

fn member(name: &str, offset: u32, ty: Type) -> Member {
    Member {
        name: name.into(),
        offset,
        bitfield: None,
        ty,
        shown: None,
    }
}

/// The tag each kind has in JSON. No wildcard: a new variant does not compile here until
/// it is named, given a sample in `record`, and listed by the schema.
fn kind_tag(kind: &Kind) -> &'static str {
    match kind {
        Kind::Int { .. } => "int",
        Kind::Char { .. } => "char",
        Kind::Bool { .. } => "bool",
        Kind::Float { .. } => "float",
        Kind::Enum { .. } => "enum",
        Kind::Array { .. } => "array",
        Kind::Struct { .. } => "struct",
        Kind::Union { .. } => "union",
        Kind::Pointer { .. } => "pointer",
    }
}

fn kind_tags(ty: &Type, out: &mut BTreeSet<String>) {
    out.insert(kind_tag(&ty.kind).to_string());
    match &ty.kind {
        Kind::Array { elem, .. } => kind_tags(elem, out),
        Kind::Struct { members, .. } | Kind::Union { members, .. } => {
            members.iter().for_each(|m| kind_tags(&m.ty, out))
        }
        _ => {}
    }
}

/// How many variants each closed list has. No wildcards: a new variant does not compile
/// here until it is counted (and then the schema must list it).
fn variant_counts() -> [(&'static str, usize); 3] {
    use AttachKind::*;
    let attach = match Other {
        Tracepoint | RawTracepoint | TpBtf | Kprobe | Kretprobe | Ksyscall | Kretsyscall
        | Uprobe | Uretprobe | Usdt | Fentry | Fexit | FmodRet | Lsm | PerfEvent | Iter | Other => {
            17
        }
    };
    let channel = match Channel::Ringbuf {
        Channel::Ringbuf | Channel::PerfEventArray => 2,
    };
    let view = match View::Table {
        View::Table | View::Log2Hist | View::LinearHist => 3,
    };
    [("AttachKind", attach), ("Channel", channel), ("View", view)]
}

/// The values of the schema's closed list `$defs/<def>`, read by serde.
fn variants<T: serde::de::DeserializeOwned>(def: &str) -> Vec<T> {
    let names = schema()["$defs"][def]["enum"].clone();
    serde_json::from_value(names)
        .unwrap_or_else(|e| panic!("serde cannot read a {def} of the schema: {e}"))
}

/// An enum whose values span the whole range the format allows (i64 ∪ u64).
fn enum_type(signed: bool) -> Type {
    let (size, values) = if signed {
        (8, vec![("LOWEST", i128::from(i64::MIN)), ("NONE", 0)])
    } else {
        (8, vec![("ONE", 1), ("TOP", i128::from(u64::MAX))])
    };
    let values = values
        .into_iter()
        .map(|(name, value)| EnumValue {
            name: name.into(),
            value,
        })
        .collect();
    ty(
        if signed { "enum delta" } else { "enum wide" },
        Kind::Enum {
            size,
            signed,
            values,
        },
    )
}

/// A struct using every kind (enums only `with_enums`), a bitfield and an anonymous union.
fn record(with_enums: bool) -> Type {
    let char_t = ty("char", Kind::Char { signed: true });
    let mut members = vec![
        Member {
            bitfield: Some(Bitfield {
                bit_offset: 0,
                bits: 3,
            }),
            ..member("low", 0, int("__u32", 4, false))
        },
        Member {
            bitfield: Some(Bitfield {
                bit_offset: 3,
                bits: 29,
            }),
            ..member("high", 0, int("__u32", 4, false))
        },
        Member {
            shown: Some(Shown {
                hidden: true,
                selected_by: Some(Selector {
                    member: "c".into(),
                    cases: vec![types::Case {
                        value: 1,
                        member: "x".into(),
                    }],
                }),
                ..Shown::format(ValueFormat::Signal, true)
            }),
            ..member("c", 4, char_t.clone())
        },
        member("on", 5, ty("bool", Kind::Bool { size: 1 })),
        member("ratio", 8, ty("float", Kind::Float { size: 4 })),
        member("ptr", 16, ty("void *", Kind::Pointer { size: 8 })),
        member(
            "",
            24,
            ty(
                "union <anon>",
                Kind::Union {
                    size: 8,
                    members: vec![
                        member("word", 0, int("__u64", 8, false)),
                        member("half", 0, int("__s32", 4, true)),
                    ],
                },
            ),
        ),
        member(
            "name",
            32,
            ty(
                "char[16]",
                Kind::Array {
                    len: 16,
                    elem: Box::new(char_t),
                },
            ),
        ),
        member("big", 48, int("__int128", 16, true)),
    ];
    if with_enums {
        members.push(member("wide", 64, enum_type(false)));
        members.push(member("delta", 72, enum_type(true)));
    }
    ty("struct record", Kind::Struct { size: 80, members })
}

/// A package using every field (all optional ones set) and every variant of the serde
/// types; enum types only `with_enums`.
fn full_package(with_enums: bool) -> Package {
    let mut globals = vec![
        ("pid", int("pid_t", 4, true), json!(0)),
        ("on", ty("bool", Kind::Bool { size: 1 }), json!(true)),
        ("letter", ty("char", Kind::Char { signed: true }), json!(97)),
        ("ratio", ty("double", Kind::Float { size: 8 }), json!(0.5)),
        (
            "where",
            ty("void *", Kind::Pointer { size: 8 }),
            json!("0x0"),
        ),
        ("last", record(with_enums), json!({"low": 0, "name": "x"})),
        ("lost", int("__u64", 8, false), json!(0)),
        ("asleep", int("__u32", 4, false), json!(0)),
    ];
    if with_enums {
        globals.push(("mode", enum_type(false), json!("TOP")));
    }
    let mut offset = 0;
    let globals = globals
        .into_iter()
        .map(|(name, ty, default)| {
            let global = Global {
                name: name.into(),
                section: match name {
                    "last" | "lost" | "asleep" => ".bss",
                    "ratio" => ".data.tuning",
                    _ => ".rodata",
                }
                .into(),
                offset,
                size: ty.size(),
                flag: flag_for(name, &ty),
                ty,
                compiled: (name == "pid").then(|| json!(1)),
                default,
                help: format!("the {name} setting"),
                implies: match name {
                    "pid" => vec![Implied {
                        global: "on".into(),
                        value: json!(true),
                    }],
                    _ => Vec::new(),
                },
            };
            offset += global.size;
            global
        })
        .collect();
    let map = |name: &str, kind: &str, key: Option<Type>, value: Option<Type>, view| Map {
        name: name.into(),
        kind: serde_json::from_value(json!(kind)).unwrap(),
        key_size: key.as_ref().map_or(0, |t| t.size() as u32),
        value_size: value.as_ref().map_or(0, |t| t.size() as u32),
        max_entries: 4096,
        key,
        value,
        view,
        unit: view.filter(|v| *v != View::Table).map(|_| "usecs".into()),
        size: (name == "future").then(|| Choice::If {
            flag: "kill_only".into(),
            then: Box::new(Choice::Is(Entries::PidMax)),
            otherwise: Box::new(Choice::If {
                flag: "on".into(),
                then: Box::new(Choice::Is(Entries::Ncpus)),
                otherwise: Box::new(Choice::Is(Entries::Count(1))),
            }),
        }),
    };
    let counts = ty(
        "__u64[64]",
        Kind::Array {
            len: 64,
            elem: Box::new(int("__u64", 8, false)),
        },
    );
    let [table, log2_hist, linear_hist] = [0, 1, 2].map(|i| Some(variants::<View>("View")[i]));
    Package {
        format_version: FORMAT_VERSION,
        // Only ever validated, never run: no runner implements it.
        requires: vec!["every_feature".into()],
        name: "everything".into(),
        description: "every field of the format".into(),
        license: "GPL".into(),
        globals,
        switches: vec![Switch {
            name: "kill_only".into(),
            help: "kill-family syscalls only".into(),
        }],
        events: variants::<Channel>("Channel")
            .into_iter()
            .enumerate()
            .map(|(i, channel)| Event {
                map: format!("events{i}"),
                channel,
                struct_name: "record".into(),
                ty: record(with_enums),
                lost_counter: (i == 0).then(|| "lost".into()),
                metrics: vec![EventMetric {
                    name: format!("records{i}"),
                    labels: vec!["name".into(), "on".into()],
                    max_series: 100,
                    help: "records by name".into(),
                }],
                wakeup: (i == 0).then(|| "asleep".into()),
            })
            .collect(),
        maps: vec![
            map("events0", "ringbuf", None, None, None),
            map("events1", "perf_event_array", None, None, None),
            map(
                "by_pid",
                "hash",
                Some(int("__u32", 4, false)),
                Some(record(with_enums)),
                table,
            ),
            map(
                "latency",
                "array",
                Some(int("__u32", 4, false)),
                Some(counts.clone()),
                log2_hist,
            ),
            map(
                "depths",
                "percpu_array",
                Some(int("__u32", 4, false)),
                Some(counts),
                linear_hist,
            ),
            map("future", "type_99", None, None, None),
        ],
        programs: variants::<AttachKind>("AttachKind")
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Program {
                name: format!("prog{i}"),
                section: format!("section{i}/target"),
                attach: Attach {
                    kind,
                    target: if i == 0 {
                        String::new()
                    } else {
                        "target".into()
                    },
                },
                when: match i {
                    0 => Some(Condition {
                        global: "on".into(),
                        equals: false,
                    }),
                    1 => Some(Condition {
                        global: "kill_only".into(),
                        equals: true,
                    }),
                    _ => None,
                },
                optional: i == 2,
                targets: match kind {
                    AttachKind::Uprobe => vec!["/bin/bash:readline".into()],
                    _ => Vec::new(),
                },
            })
            .collect(),
        groups: vec![
            Group {
                programs: vec!["prog2".into(), "prog3".into()],
                declared: false,
            },
            Group {
                programs: vec!["prog4".into(), "prog5".into()],
                declared: true,
            },
        ],
        declarations: Some(json!({"flags": {"kill_only": {"help": "kill-family syscalls only"}}})),
        object: Embedded::new(b"\x7fELF: stands in for an object; only its checksum is read"),
    }
}

fn package_json(package: &Package) -> Value {
    serde_json::from_str(&package.to_json()).expect("a package is JSON")
}

#[test]
fn package_using_every_field_and_variant_validates() {
    let validator = validator();
    for with_enums in [false, true] {
        assert_valid(
            &validator,
            &package_json(&full_package(with_enums)),
            &format!("the full package (enums: {with_enums})"),
        );
    }
}

/// Names of all keys of all objects in `value`, except inside the `default`, `compiled` and
/// implied `value` of a global (member names, not fields of the format) and inside
/// `declarations` (a sidecar: `schemas/sidecar.schema.json`, checked by tests/sidecar.rs).
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.insert(key.clone());
                if !["default", "compiled", "value", "declarations"].contains(&key.as_str()) {
                    keys(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn schema_fields_are_the_fields_the_runner_writes() {
    let mut written = BTreeSet::new();
    keys(&package_json(&full_package(true)), &mut written);
    let mut described = BTreeSet::new();
    walk(&schema(), "#", false, &mut |_, node, in_if| {
        if let (false, Some(Value::Object(props))) = (in_if, node.get("properties")) {
            described.extend(props.keys().cloned());
        }
    });
    assert_eq!(
        written, described,
        "fields written by the serde types (left) and described by the schema (right)"
    );
}

fn serialized<T: serde::Serialize>(items: &[T]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| {
            serde_json::to_value(i)
                .unwrap()
                .as_str()
                .expect("a unit variant")
                .to_string()
        })
        .collect()
}

#[test]
fn schema_lists_are_the_serde_enums() {
    // Every name the schema lists is a variant serde reads (`variants` panics otherwise),
    // written back the same, and there are as many as the enum has variants.
    let counts = variant_counts();
    let lists = [
        serialized(&variants::<AttachKind>("AttachKind")),
        serialized(&variants::<Channel>("Channel")),
        serialized(&variants::<View>("View")),
    ];
    for ((def, count), written) in counts.iter().zip(&lists) {
        let listed: BTreeSet<String> =
            serde_json::from_value(schema()["$defs"][*def]["enum"].clone()).unwrap();
        assert_eq!(
            &listed, written,
            "{def}: the schema's names (left), as serde writes them back (right)"
        );
        assert_eq!(
            listed.len(),
            *count,
            "{def}: the schema lists {listed:?}, the enum has {count} variants"
        );
    }
    // Type kinds: the tags of the Rust samples, as serde writes them, are the schema's.
    let mut written = BTreeSet::new();
    walk(
        &package_json(&full_package(true)),
        "",
        false,
        &mut |_, node, _| {
            if let (Some(kind), Some(_)) = (node.get("kind").and_then(Value::as_str), node.get("c"))
            {
                written.insert(kind.to_string());
            }
        },
    );
    let mut tags = BTreeSet::new();
    kind_tags(&record(true), &mut tags);
    assert_eq!(
        written, tags,
        "kinds as serde writes them (left) and as `kind_tag` names them (right)"
    );
    let listed: BTreeSet<String> =
        serde_json::from_value(schema()["$defs"]["Type"]["properties"]["kind"]["enum"].clone())
            .unwrap();
    assert_eq!(
        listed, tags,
        "type kinds in the schema (left) and in the serde type (right)"
    );
}

// ---------------------------------------------------------------------------------------
// Broken packages are rejected
// ---------------------------------------------------------------------------------------

/// A mutation of sigsnoop's package, from `fixtures/schema/broken.json`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Remove the field at this JSON pointer...
    #[serde(default)]
    remove: Option<String>,
    /// ...or set the field at this pointer (created if absent) to `to`.
    #[serde(default)]
    set: Option<String>,
    #[serde(default)]
    to: Value,
    /// Where the schema must report an error.
    error_at: String,
    reader: Reader,
}

/// Whether the runner's reader must reject the mutation too.
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reader {
    /// Serde or the reader's own checks catch it: `runner info` must fail.
    Rejects,
    /// Only the schema catches it; why the reader lets it through.
    SchemaOnly(String),
}

fn broken_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema/broken.json");
    serde_json::from_value(read_json(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sigsnoop's package with `case` applied.
fn broken(sigsnoop: &Value, case: &Case) -> Value {
    let mut package = sigsnoop.clone();
    let pointer = case
        .remove
        .as_ref()
        .or(case.set.as_ref())
        .expect("`remove` or `set`");
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = package
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{}: sigsnoop has no object at `{parent}`", case.name));
    if case.remove.is_some() {
        parent
            .remove(key)
            .unwrap_or_else(|| panic!("{}: sigsnoop has no `{pointer}`", case.name));
    } else {
        parent.insert(key.to_string(), case.to.clone());
    }
    package
}

#[test]
fn schema_rejects_broken_packages_at_the_right_path() {
    let validator = validator();
    let sigsnoop = read_json(&sigsnoop_package());
    assert_valid(&validator, &sigsnoop, "sigsnoop, unchanged,");
    let mut failures = Vec::new();
    for case in broken_cases() {
        let errors = errors(&validator, &broken(&sigsnoop, &case));
        if errors.is_empty() {
            failures.push(format!("{}: accepted", case.name));
        } else if !errors.iter().any(|(at, _)| *at == case.error_at) {
            failures.push(format!(
                "{}: no error at `{}`:\n    {}",
                case.name,
                case.error_at,
                show(&errors)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the schema got these wrong:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn runner_rejects_what_the_schema_rejects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sigsnoop = read_json(&sigsnoop_package());
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, case) in broken_cases().into_iter().enumerate() {
        if let Reader::SchemaOnly(why) = &case.reader {
            eprintln!("not checked against the reader: {} ({why})", case.name);
            continue;
        }
        let package = broken(&sigsnoop, &case);
        let path = dir.path().join(format!("broken{i}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&package).unwrap()).unwrap();
        let path = path.to_str().expect("UTF-8 path");
        let out = run_runner(&["info", path]);
        let lines: Vec<&str> = out.stderr.lines().collect();
        let ok = out.status.code() == Some(1)
            && out.stdout.is_empty()
            && lines.len() == 1
            && lines[0].starts_with("runner: error: package `")
            && lines[0].contains(path);
        if !ok {
            failures.push(format!(
                "{}: exit {}, stderr {:?}",
                case.name, out.status, out.stderr
            ));
        }
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} cases are checked against the reader"
    );
    assert!(
        failures.is_empty(),
        "`runner info` should fail with one line (exit 1) on:\n  {}",
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// What the schema accepts, the runner reads
// ---------------------------------------------------------------------------------------

fn assert_reads_back(package: &Package, what: &str) {
    // Without the feature no runner implements (compat.rs checks that one is refused).
    let package = &Package {
        requires: Vec::new(),
        ..package.clone()
    };
    let text = package.to_json();
    let (read, object) = Package::from_slice(text.as_bytes(), Path::new("full.json"))
        .unwrap_or_else(|e| panic!("the runner cannot read {what}: {}", error_chain(&e)));
    assert_eq!(&read, package, "{what} reads back different");
    assert_eq!(read.to_json(), text, "{what} is written back different");
    assert_eq!(object.len() as u64, package.object.size);
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[test]
fn runner_reads_a_package_using_every_field() {
    assert_reads_back(&full_package(false), "the full package without enums");
}

#[test]
fn runner_reads_enum_types() {
    assert_reads_back(&full_package(true), "the full package with enums");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema/kinds.bpf.c");
    let dir = tempfile::tempdir().expect("tempdir");
    let built = dir.path().join("kinds.json");
    run_ok(&[
        "build",
        source.to_str().unwrap(),
        "-o",
        built.to_str().unwrap(),
    ]);
    run_ok(&["info", built.to_str().unwrap()]);
}
