//! Package input is bounded and strict where it should be, and the runner and the schema
//! accept the same packages:
//!
//! - a package larger than the limit (or endless, `/dev/zero`) is one line, read no
//!   further than the limit; a key given twice, at any depth, is one line naming it;
//! - every mutation of the sigsnoop package that the schema rejects (each key removed,
//!   each value replaced by one of another JSON type) is rejected by the runner's reader,
//!   and what the schema lets through (an unknown key in any object, per the compatibility
//!   contract) the reader reads. The test follows whatever `schemas/package.schema.json`
//!   says;
//! - flag values: hex and negative values read the same after a space as after `=`, a
//!   number beyond 128 bits is out of range, a uprobe target needs its function.

mod common;

use std::path::Path;

use jsonschema::Validator;
use runner::spec::package::Package;
use serde_json::Value;

use common::{repo, run_runner, sigsnoop_package};

fn validator() -> Validator {
    let text = std::fs::read_to_string(repo().join("schemas/package.schema.json")).unwrap();
    jsonschema::draft202012::new(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn sigsnoop() -> Value {
    serde_json::from_slice(&std::fs::read(sigsnoop_package()).unwrap()).unwrap()
}

/// The one line a failed command printed, checking it failed with status 1.
fn one_error_line(done: &common::Finished) -> String {
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    lines[0].to_string()
}

#[test]
fn an_endless_or_oversized_package_is_refused_at_the_limit() {
    let started = std::time::Instant::now();
    let done = run_runner(&["info", "/dev/zero"]);
    assert_eq!(
        one_error_line(&done),
        "runner: error: cannot read package `/dev/zero`: it is larger than 64 MiB, the most a package may be"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A valid package padded with spaces past the limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.json");
    let mut text = std::fs::read(sigsnoop_package()).unwrap();
    text.resize(65 << 20, b' ');
    std::fs::write(&path, &text).unwrap();
    let done = run_runner(&["info", path.to_str().unwrap()]);
    assert!(
        one_error_line(&done).ends_with("it is larger than 64 MiB, the most a package may be"),
        "{}",
        done.stderr
    );
    // Just under the limit, the same package reads.
    text.truncate(64 << 20);
    std::fs::write(&path, &text).unwrap();
    let done = run_runner(&["info", path.to_str().unwrap()]);
    assert!(done.status.success(), "{}", done.stderr);
}

#[test]
fn a_key_given_twice_is_refused_at_any_depth() {
    let text = std::fs::read_to_string(sigsnoop_package()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // At the top, in a global's type, deep in the event struct's members.
    for key in ["\"name\": \"sigsnoop\"", "\"signed\": true", "\"len\": 16"] {
        let at = text
            .find(key)
            .unwrap_or_else(|| panic!("{key} not in sigsnoop"));
        let twice = format!("{}{key}, {}", &text[..at], &text[at..]);
        let path = dir.path().join("twice.json");
        std::fs::write(&path, twice).unwrap();
        let done = run_runner(&["info", path.to_str().unwrap()]);
        let line = one_error_line(&done);
        let name = key.split('"').nth(1).unwrap();
        assert!(
            line.starts_with(&format!(
                "runner: error: package `{}` is not valid JSON: duplicate key `{name}` at line ",
                path.display()
            )),
            "{line}"
        );
    }
}

/// Every JSON pointer of `value`, with the value there.
fn pointers(value: &Value, at: String, out: &mut Vec<(String, Value)>) {
    out.push((at.clone(), value.clone()));
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `value` with the node at `pointer` replaced (`Some`) or removed (`None`).
fn mutated(value: &Value, pointer: &str, to: Option<Value>) -> Value {
    let mut copy = value.clone();
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    match copy.pointer_mut(parent).unwrap() {
        Value::Object(fields) => match to {
            Some(v) => {
                fields.insert(last, v);
            }
            None => {
                fields.shift_remove(&last);
            }
        },
        Value::Array(items) => {
            let i: usize = last.parse().unwrap();
            match to {
                Some(v) => items[i] = v,
                None => {
                    items.remove(i);
                }
            }
        }
        _ => unreachable!(),
    }
    copy
}

/// Values of every JSON type but `like`'s.
fn other_types(like: &Value) -> Vec<Value> {
    let all = [
        Value::Bool(true),
        serde_json::json!(-1),
        serde_json::json!(0.5),
        serde_json::json!("text"),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    let kind = |v: &Value| std::mem::discriminant(v);
    all.into_iter().filter(|v| kind(v) != kind(like)).collect()
}

/// What the schema checks and the reader knowingly leaves to the object: a global's
/// `default` is typed by the global's kind in the schema, and any JSON value to the reader,
/// since the runner derives every default from the object itself (`spec::verify`) and
/// uses the manifest's only for display.
fn reader_may_accept(what: &str) -> bool {
    what.starts_with("`/globals/") && what.contains("/default` = ")
}

fn reader_accepts(value: &Value) -> bool {
    let text = serde_json::to_vec(value).unwrap();
    Package::from_slice(&text, Path::new("mutated.json")).is_ok()
}

#[test]
fn the_reader_rejects_what_the_schema_rejects_and_reads_unknown_fields() {
    let validator = validator();
    let original = sigsnoop();
    assert!(validator.is_valid(&original));
    let mut nodes = Vec::new();
    pointers(&original, String::new(), &mut nodes);
    let mut fed = 0;
    let mut unknown = 0;
    let mut disagree = Vec::new();
    for (at, node) in &nodes {
        let mut cases: Vec<(String, Value)> = Vec::new();
        if let Value::Object(_) = node {
            let with = mutated(
                &original,
                &format!("{at}/x_unknown_field"),
                Some(Value::Bool(true)),
            );
            cases.push((format!("unknown field in `{at}`"), with));
        }
        // The embedded object's bytes: the reader checks them against size and checksum,
        // which the schema cannot; replacing them is covered by those checks' own tests.
        if at.is_empty() || at.starts_with("/object/base64") {
            continue;
        }
        cases.push((format!("`{at}` removed"), mutated(&original, at, None)));
        if !matches!(node, Value::Object(_) | Value::Array(_)) {
            for other in other_types(node) {
                cases.push((
                    format!("`{at}` = {other}"),
                    mutated(&original, at, Some(other)),
                ));
            }
        }
        for (what, instance) in cases {
            let schema = validator.is_valid(&instance);
            let reader = reader_accepts(&instance);
            if !schema {
                fed += 1;
            }
            let unknown_field = what.starts_with("unknown field");
            if (!schema && reader && !reader_may_accept(&what))
                || (unknown_field && schema != reader)
            {
                disagree.push(format!(
                    "{what}: the schema {}, the reader {}",
                    if schema { "accepts" } else { "rejects" },
                    if reader { "accepts" } else { "rejects" },
                ));
            }
            unknown += usize::from(unknown_field && schema && reader);
        }
    }
    eprintln!("{fed} mutations the schema rejects were fed to the reader");
    assert!(fed > 500, "only {fed} mutations fed");
    // The compatibility contract: an unknown field is ignored (the tagged `flag` object,
    // which is one of two keys, is closed for both).
    assert!(
        unknown > 30,
        "only {unknown} objects read with an unknown field"
    );
    assert!(
        disagree.is_empty(),
        "{} disagreements:\n{}",
        disagree.len(),
        disagree.join("\n")
    );
}

/// The usage error `runner run <pkg> <args>` exits 2 with.
fn usage_error(pkg: &str, args: &[&str]) -> String {
    let mut argv = vec!["run", pkg];
    argv.extend_from_slice(args);
    let done = run_runner(&argv);
    assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
    done.stderr.lines().next().unwrap_or_default().to_string()
}

#[test]
fn hex_and_negative_values_read_the_same_after_a_space_and_overflow_is_out_of_range() {
    let pkg = sigsnoop_package();
    let pkg = pkg.to_str().unwrap();
    for sep in [" ", "="] {
        let args: Vec<String> = format!("--target_signal{sep}-0x80000001")
            .split(' ')
            .map(str::to_string)
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            usage_error(pkg, &args),
            "error: invalid value '-0x80000001' for '--target_signal <INT>': -2147483649 is out of range for i32 (-2147483648..=2147483647)",
            "{sep:?}"
        );
    }
    let huge = "340282366920938463463374607431768211456"; // 2^128
    assert_eq!(
        usage_error(pkg, &["--target_signal", huge]),
        format!("error: invalid value '{huge}' for '--target_signal <INT>': {huge} is out of range for i32 (-2147483648..=2147483647)")
    );
    assert_eq!(
        usage_error(pkg, &["--filtered_pid", &format!("-{huge}")]),
        format!("error: invalid value '-{huge}' for '--filtered_pid <INT>': -{huge} is out of range for i32 (-2147483648..=2147483647)")
    );
    // Options are still options: `--filtered_pid --failed_only` is no value.
    assert!(usage_error(pkg, &["--filtered_pid", "--failed_only"]).contains("--filtered_pid"));
}

#[test]
fn a_uprobe_target_without_its_function_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("uprobe.json");
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/uprobe/uprobe.bpf.c");
    let done = run_runner(&[
        "build",
        source.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let pkg = out.to_str().unwrap();
    for target in ["/bin/true", "/bin/true:", ":main"] {
        assert_eq!(
            usage_error(pkg, &["--attach", &format!("on_entry={target}"), "--attach", "on_return=/bin/true:main"]),
            format!("error: --attach on_entry={target}: expected BINARY:FUNCTION, like /bin/bash:readline (a uprobe needs the function it probes)")
        );
    }
}
