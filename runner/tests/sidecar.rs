//! The sidecar (`schemas/sidecar.schema.json`) held against the runner, and what the
//! packer does with it (no root needed):
//!
//! - The schema is valid draft 2020-12, documents every field and closes every object (a
//!   sidecar is strict, unlike a package); its keys are the keys the serde types write, and
//!   its views are the package's views.
//! - Every sidecar of the project (the corpus fixture, `examples/libbpf-tools/`) validates
//!   and parses; a sidecar using every key validates, parses and round-trips.
//! - Broken sidecars are rejected by both, the runner naming the file and the JSON path.
//! - `runner build` checks every name against the object, one line per error; the package
//!   carries the sidecar as its `declarations`, and the runner derives the description from
//!   the object and those (the sidecar file is not read again).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use runner::spec::sidecar::Sidecar;
use serde_json::{json, Value};

use common::{repo, run_runner, Finished};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema() -> Value {
    read_json(&repo().join("schemas/sidecar.schema.json"))
}

fn validator() -> Validator {
    jsonschema::draft202012::new(&schema()).unwrap_or_else(|e| panic!("schema: {e}"))
}

fn errors(instance: &Value) -> Vec<String> {
    validator()
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/declared")
}

/// Every sidecar the project has.
fn project_sidecars() -> Vec<PathBuf> {
    let mut all = vec![fixture_dir().join("declared.runner.json")];
    let examples = repo().join("examples/libbpf-tools");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".runner.json"))
        .collect();
    found.sort();
    assert_eq!(found.len(), 13, "a sidecar per corpus tool");
    all.extend(found);
    all
}

#[test]
fn schema_is_valid_documented_and_closed() {
    let schema = schema();
    let meta = jsonschema::draft202012::new(
        &json!({ "$ref": "https://json-schema.org/draft/2020-12/schema" }),
    )
    .unwrap();
    assert!(meta.is_valid(&schema), "not a 2020-12 schema");
    validator();
    let mut problems = Vec::new();
    fn check(at: &str, node: &Value, problems: &mut Vec<String>) {
        let Some(obj) = node.as_object() else { return };
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, prop) in props {
                if !prop.get("description").is_some_and(Value::is_string) {
                    problems.push(format!("{at}/properties/{name} has no description"));
                }
            }
            if obj.get("additionalProperties") != Some(&json!(false)) {
                problems.push(format!("{at} is open: a sidecar must be strict"));
            }
        }
    }
    check("#", &schema, &mut problems);
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if !def.get("description").is_some_and(Value::is_string) {
            problems.push(format!("#/$defs/{name} has no description"));
        }
        check(&format!("#/$defs/{name}"), def, &mut problems);
        for (i, variant) in def["oneOf"].as_array().into_iter().flatten().enumerate() {
            check(&format!("#/$defs/{name}/oneOf/{i}"), variant, &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A sidecar using every key and every form of value.
fn full() -> Value {
    json!({
        "$schema": "../schemas/sidecar.schema.json",
        "description": "every key",
        "events": {"events": "event"},
        "flags": {"kill_only": {"help": "kill only"}},
        "globals": {
            "targ_uid": {"default": 4294967295u64, "help": "uid", "implies": {"filter": true}},
            "filter": {"hide": "set by --targ_uid"}
        },
        "programs": {
            "groups": [["a", "b"]],
            "optional": ["c"],
            "if": {"d": "kill_only"},
            "unless": {"e": "kill_only"},
            "attach": {"f": ["/bin/bash:readline"]}
        },
        "maps": {
            "start": {"max_entries": "pid_max"},
            "cpus": {"max_entries": "ncpus"},
            "hists": {
                "max_entries": {"if": "kill_only", "then": 10240, "else": {"if": "filter", "then": "pid_max", "else": 1}},
                "view": "log2_hist",
                "unit": "usecs"
            },
            "data": {"view": "table"}
        },
        "formats": {
            "event": {
                "ret": "errno",
                "ts": "hide",
                "lat": {"format": "duration:ns:ms", "hide": true},
                "sig": {"names": "signal"},
                "arg": {"union": "op", "cases": {"MOUNT": "mount", "7": "fsopen"}}
            }
        },
        "metrics": {
            "signals": {"map": "events", "labels": ["sig", "comm"], "max_series": 100, "help": "signals"}
        }
    })
}

fn parse(value: &Value) -> Result<Sidecar, String> {
    Sidecar::parse(value.to_string().as_bytes(), Path::new("t.runner.json"))
        .map_err(|e| e.to_string())
}

#[test]
fn every_sidecar_of_the_project_validates_and_parses() {
    for path in project_sidecars() {
        let value = read_json(&path);
        let errors = errors(&value);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        Sidecar::read(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_sidecar_using_every_key_validates_parses_and_round_trips() {
    let value = full();
    assert_eq!(errors(&value), Vec::<String>::new());
    let sidecar = parse(&value).unwrap();
    let written = serde_json::to_value(&sidecar).unwrap();
    // `$schema` is for editors; the package does not keep it.
    let mut original = value.clone();
    original.as_object_mut().unwrap().remove("$schema");
    assert_eq!(
        written, original,
        "what the runner keeps is what was written"
    );
}

fn keys(value: &Value, out: &mut BTreeSet<String>, names_below: &[&str]) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            out.insert(key.clone());
            if key == "formats" {
                // Struct names, then member paths, then fields.
                let structs = child.as_object().into_iter().flat_map(|m| m.values());
                for members in structs.filter_map(Value::as_object) {
                    for decl in members.values() {
                        keys(decl, out, names_below);
                    }
                }
            } else if names_below.contains(&key.as_str()) {
                // Keys below are names (of globals, programs, maps), not fields.
                for grandchild in child.as_object().into_iter().flat_map(|m| m.values()) {
                    keys(grandchild, out, names_below);
                }
            } else if key != "default" {
                keys(child, out, names_below);
            }
        }
    }
}

#[test]
fn schema_fields_are_the_fields_the_runner_reads() {
    let mut written = BTreeSet::new();
    let value = full();
    keys(
        &value,
        &mut written,
        &[
            "events", "flags", "globals", "maps", "if", "unless", "attach", "implies", "cases",
            "metrics",
        ],
    );
    let mut described = BTreeSet::new();
    fn walk(node: &Value, out: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&schema(), &mut described);
    assert_eq!(
        written, described,
        "keys of the full sidecar (left), of the schema (right)"
    );
    // Views: the sidecar offers exactly the package's.
    let package = read_json(&repo().join("schemas/package.schema.json"));
    assert_eq!(
        schema()["$defs"]["Map"]["properties"]["view"]["enum"],
        package["$defs"]["View"]["enum"]
    );
}

/// Mutations of the full sidecar: each is rejected by the schema and by the runner, whose
/// error names where.
#[test]
fn broken_sidecars_are_rejected_by_both_at_the_right_place() {
    let cases: [(&str, Value, &str); 13] = [
        (
            "/metrics/signals/label",
            json!(["sig"]),
            "metrics.signals.label: unknown key `label`",
        ),
        (
            "/metrics/signals/max_series",
            json!(-1),
            "metrics.signals.max_series: invalid value: integer `-1`, expected u32",
        ),
        (
            "/programs/optinal",
            json!(["c"]),
            "programs.optinal: unknown key `optinal`",
        ),
        ("/alerts", json!({}), "alerts: unknown key `alerts`"),
        (
            "/formats/event/ret",
            json!("erno"),
            "formats.event.ret: unknown format `erno`; valid ones: errno,",
        ),
        (
            "/formats/event/sig/nmaes",
            json!("signal"),
            "formats.event.sig.nmaes: unknown key `nmaes`; expected one of `format`, `names`, `hide`, `union`, `cases`",
        ),
        (
            "/globals/filter/hidden",
            json!("x"),
            "globals.filter.hidden: unknown key `hidden`",
        ),
        (
            "/maps/start/max_entries",
            json!(0),
            "maps.start.max_entries: a map size is a number from 1",
        ),
        (
            "/maps/start/max_entries",
            json!("lots"),
            "maps.start.max_entries: a map size is a number, \"pid_max\" or \"ncpus\"",
        ),
        (
            "/maps/start/max_entries",
            json!({"if": "kill_only", "then": 1}),
            "maps.start.max_entries: a choice on `kill_only` needs `then` and `else`",
        ),
        (
            "/maps/data/view",
            json!("pie"),
            "maps.data.view: unknown variant `pie`",
        ),
        (
            "/programs/optional",
            json!("c"),
            "programs.optional: invalid type: string \"c\", expected a sequence",
        ),
        (
            "/flags/kill_only/hlep",
            json!("x"),
            "flags.kill_only.hlep: unknown key `hlep`",
        ),
    ];
    for (pointer, to, message) in cases {
        let mut value = full();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        value
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no {parent}"))
            .insert(key.into(), to.clone());
        assert!(
            !errors(&value).is_empty(),
            "the schema accepts {pointer} = {to}"
        );
        let err = parse(&value).expect_err(pointer);
        assert!(
            err.starts_with(&format!("sidecar `t.runner.json`: {message}")),
            "{pointer} = {to}: {err}"
        );
    }
}

fn build_with(sidecar: &Value) -> (Finished, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for file in ["declared.bpf.c", "declared.h"] {
        std::fs::copy(fixture_dir().join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(
        dir.path().join("declared.runner.json"),
        serde_json::to_string_pretty(sidecar).unwrap(),
    )
    .unwrap();
    let source = dir.path().join("declared.bpf.c");
    let out = dir.path().join("declared.json");
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    (done, dir)
}

/// Names and values that do not fit the object: one line, exit 1, naming the file and
/// the place in it, and what there is instead.
#[test]
fn names_are_checked_against_the_object() {
    let good = read_json(&fixture_dir().join("declared.runner.json"));
    let cases: [(&str, Value, &str); 13] = [
        ("/metrics", json!({"seen": {"labels": ["by", "bye"]}}), "metrics.seen: struct event has no member `bye` (its members: `value`, `by`, `ret`, `comm`)"),
        ("/metrics", json!({"seen": {"map": "values"}}), "metrics.seen.map: no event channel `values` (channels: `events`)"),
        ("/metrics", json!({"seen": {"max_series": 0}}), "metrics.seen: max_series is from 1 to 100000, not 0"),
        ("/programs/optional", json!(["never_tp", "nevr_kprobe"]), "programs.optional[1]: no program `nevr_kprobe` (programs: `sleep_fentry`, `never_kprobe`, `on_raw`, `sleep_tp`, `rejected`, `never_tp`, `on_prctl`, `lost_uprobe`)"),
        ("/globals/min_valu", json!({"default": 1}), "globals.min_valu: no global `min_valu` (globals: `target_tgid`, `min_value`, `targ_comm`, `filter_comm`)"),
        ("/globals/min_value", json!({"default": -1}), "globals.min_value.default: -1 is out of range for u64 (0..=18446744073709551615)"),
        ("/globals/targ_comm", json!({"implies": {"filter_comm": "maybe"}}), "globals.targ_comm.implies.filter_comm: expected true or false"),
        ("/maps/valeus", json!({"max_entries": 3}), "maps.valeus: no map `valeus` (maps: `values`, `events`)"),
        ("/maps/values", json!({"max_entries": {"if": "raw", "then": 1, "else": 2}}), "maps.values.max_entries: `raw` is no bool global and no switch declared under `flags` (flags: `filter_comm`, `raw_mode`)"),
        ("/programs/if", json!({"on_raw": "min_value"}), "programs.if.on_raw: `min_value` is no bool global and no switch declared under `flags` (flags: `filter_comm`, `raw_mode`)"),
        ("/programs/groups", json!([["sleep_fentry"]]), "programs.groups[0]: a group holds at least two alternatives"),
        ("/flags/min_value", json!({"help": "x"}), "flags.min_value: global `min_value` has that name; use the global"),
        ("/flags/duration", json!({"help": "x"}), "flags.duration: --duration is an option of the runner itself"),
    ];
    for (pointer, to, message) in cases {
        let mut sidecar = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        sidecar
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert(key.into(), to.clone());
        let (done, dir) = build_with(&sidecar);
        let path = dir.path().join("declared.runner.json");
        assert_eq!(done.status.code(), Some(1), "{pointer}: {}", done.stderr);
        assert_eq!(
            done.stderr.trim_end(),
            format!("runner: error: sidecar `{}`: {message}", path.display()),
            "{pointer} = {to}"
        );
    }
}

/// The package carries the declarations; with the sidecar gone, `runner info` still shows
/// what it declared, derived again from the object and them; a package whose
/// declarations were changed shows the change (the description follows them) and one
/// whose declarations no longer fit its object is refused in one line.
#[test]
fn the_package_carries_the_declarations() {
    let sidecar = read_json(&fixture_dir().join("declared.runner.json"));
    let (done, dir) = build_with(&sidecar);
    assert!(done.status.success(), "{}", done.stderr);
    std::fs::remove_file(dir.path().join("declared.runner.json")).unwrap();
    let pkg_path = dir.path().join("declared.json");
    let pkg = read_json(&pkg_path);
    let mut expected = sidecar.clone();
    expected.as_object_mut().unwrap().remove("$schema");
    assert_eq!(
        serde_json::to_string(&pkg["declarations"]).unwrap(),
        serde_json::to_string(
            &Sidecar::from_package(&expected)
                .map(|s| serde_json::to_value(s).unwrap())
                .unwrap()
        )
        .unwrap()
    );
    assert_eq!(
        pkg["requires"],
        json!([
            "switches",
            "alternatives",
            "optional_programs",
            "package_defaults",
            "implied_values",
            "map_sizes"
        ])
    );
    let info = run_runner(&["info", pkg_path.to_str().unwrap()]);
    assert!(info.status.success(), "{}", info.stderr);
    assert!(
        info.stdout
            .contains("default 100 (the package's; compiled 0)"),
        "{}",
        info.stdout
    );

    // Another default in the declarations: derived again, with a warning for the manifest.
    let mut changed = pkg.clone();
    changed["declarations"]["globals"]["min_value"]["default"] = json!(7);
    std::fs::write(&pkg_path, serde_json::to_string(&changed).unwrap()).unwrap();
    let info = run_runner(&["info", pkg_path.to_str().unwrap()]);
    assert!(info.status.success(), "{}", info.stderr);
    assert!(
        info.stdout
            .contains("default 7 (the package's; compiled 0)"),
        "{}",
        info.stdout
    );
    assert!(
        info.stderr.contains("the default of global `min_value` differs from what the object says; using the object's"),
        "{}",
        info.stderr
    );

    // Declarations naming what the object does not have.
    let mut broken = pkg.clone();
    broken["declarations"]["programs"]["optional"] = json!(["gone"]);
    std::fs::write(&pkg_path, serde_json::to_string(&broken).unwrap()).unwrap();
    let info = run_runner(&["info", pkg_path.to_str().unwrap()]);
    assert_eq!(info.status.code(), Some(1), "{}", info.stderr);
    assert!(
        info.stderr.trim_end().starts_with(&format!(
            "runner: error: package `{}`: its declarations do not fit the embedded object: programs.optional[0]: no program `gone`",
            pkg_path.display()
        )),
        "{}",
        info.stderr
    );

    // A key a newer runner added is ignored, as anywhere in a package.
    let mut newer = pkg.clone();
    newer["declarations"]["metrics"] = json!({"events": {"counter": "ret"}});
    std::fs::write(&pkg_path, serde_json::to_string(&newer).unwrap()).unwrap();
    let info = run_runner(&["info", pkg_path.to_str().unwrap()]);
    assert!(info.status.success(), "{}", info.stderr);
}

/// `--sidecar FILE` names another file, `--no-sidecar` reads none, and `runner pack
/// --source` finds the one beside the source, so build and pack agree.
#[test]
fn sidecar_options_of_build_and_pack() {
    let sidecar = read_json(&fixture_dir().join("declared.runner.json"));
    let (done, dir) = build_with(&sidecar);
    assert!(done.status.success(), "{}", done.stderr);
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let built = std::fs::read(d.join("declared.json")).unwrap();

    let object = d.join("declared.bpf.o");
    let plain = d.join("plain.json");
    let done = run_runner(&[
        "build",
        &s(&d.join("declared.bpf.c")),
        "--no-sidecar",
        "-o",
        &s(&plain),
        "--object",
        &s(&object),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let plain = read_json(&plain);
    assert!(plain.get("declarations").is_none());
    assert!(plain.get("requires").is_none(), "{}", plain["requires"]);

    let packed = d.join("packed.json");
    let done = run_runner(&[
        "pack",
        &s(&object),
        "--source",
        &s(&d.join("declared.bpf.c")),
        "-o",
        &s(&packed),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        std::fs::read(&packed).unwrap() == built,
        "build and pack --source differ"
    );

    let moved = d.join("elsewhere.json");
    std::fs::rename(d.join("declared.runner.json"), &moved).unwrap();
    let packed = d.join("packed2.json");
    let done = run_runner(&[
        "pack",
        &s(&object),
        "--source",
        &s(&d.join("declared.bpf.c")),
        "--sidecar",
        &s(&moved),
        "-o",
        &s(&packed),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        std::fs::read(&packed).unwrap() == built,
        "pack --sidecar differs"
    );

    let done = run_runner(&[
        "build",
        &s(&d.join("declared.bpf.c")),
        "--sidecar",
        &s(&d.join("missing.json")),
    ]);
    assert_eq!(done.status.code(), Some(1));
    assert!(
        done.stderr.starts_with(&format!(
            "runner: error: cannot read sidecar `{}`",
            d.join("missing.json").display()
        )),
        "{}",
        done.stderr
    );
}
