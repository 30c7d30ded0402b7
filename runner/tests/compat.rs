//! The compatibility contract (README, "The package format"): a runner reads every package
//! of a format version it knows, ignores fields it does not know anywhere, refuses a
//! package that requires a feature it lacks, runs from what it derives from the object,
//! refuses a package whose description disagrees with the object on where bytes are, and
//! only warns where it disagrees on presentation. No root needed: `runner info` and
//! `runner run --help` go through the same verification as a run. The frozen packages of
//! earlier runners (`fixtures/compat/`) are run for real by `sigsnoop.rs` and `corpus.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::{run_runner, Finished};
use serde_json::{json, Value};

fn frozen(prefix: &str) -> PathBuf {
    let dir = common::repo().join("runner/tests/fixtures/compat");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .unwrap_or_else(|| panic!("no frozen package {prefix}* in {}", dir.display()))
}

fn sigsnoop() -> Value {
    serde_json::from_slice(&std::fs::read(common::sigsnoop_package()).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

fn warnings(done: &Finished) -> Vec<&str> {
    done.stderr
        .lines()
        .filter(|l| l.starts_with("runner: warning: "))
        .collect()
}

fn info(path: &str) -> Finished {
    let done = run_runner(&["info", path]);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    done
}

#[test]
fn frozen_packages_of_earlier_runners_read_without_a_warning() {
    for prefix in ["sigsnoop-876e3f9a", "scalars-"] {
        let path = frozen(prefix);
        let done = info(path.to_str().unwrap());
        assert_eq!(done.status.code(), Some(0), "{prefix}: {}", done.stderr);
        assert_eq!(warnings(&done), Vec::<&str>::new(), "{prefix}");
        assert!(done.stdout.contains("Globals:"), "{}", done.stdout);
    }
}

#[test]
fn unknown_fields_anywhere_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop();
    v["signed_by"] = json!({"who": "a newer runner"});
    v["globals"][0]["ui"] = json!({"group": "filters"});
    v["globals"][0]["type"]["unit"] = json!("pid");
    v["events"][0]["type"]["members"][0]["format"] = json!("pid");
    v["maps"][0]["pinning"] = json!("by_name");
    v["programs"][0]["attach"]["cookie"] = json!(7);
    v["object"]["compression"] = json!("none");
    let path = write(dir.path(), "newer.json", &v);
    let done = info(&path);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert_eq!(warnings(&done), Vec::<&str>::new());
    let plain = info(common::sigsnoop_package().to_str().unwrap());
    assert_eq!(done.stdout, plain.stdout, "unknown fields change nothing");
}

#[test]
fn a_required_feature_this_runner_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop();
    v["requires"] = json!(["program_groups", "time_travel"]);
    let path = write(dir.path(), "requires.json", &v);
    let done = info(&path);
    assert_eq!(done.status.code(), Some(1));
    assert_eq!(
        done.stderr.trim_end(),
        format!(
            "runner: error: package `{path}` requires `program_groups`, `time_travel`, which this runner ({}) does not implement; run it with a newer runner",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn presentation_differences_warn_and_the_object_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = sigsnoop();
    // Another runner spelled a type differently, offered no flag for a global, and listed
    // a program's target differently: warnings, and the runner uses what the object says.
    v["globals"][0]["type"]["c"] = json!("int");
    v["globals"][1]["flag"] = json!({"none": "an older runner's choice"});
    v["events"][0]["type"]["c"] = json!("struct sigsnoop_event");
    v["programs"][0]["attach"]["target"] = json!("signal/signal_deliver");
    let path = write(dir.path(), "presentation.json", &v);
    let done = run_runner(&["run", &path, "--help"]);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    let prefix = format!("runner: warning: package `{path}`: ");
    let suffix = " differs from what the object says; using the object's";
    let what: Vec<&str> = warnings(&done)
        .iter()
        .map(|w| {
            w.strip_prefix(&prefix)
                .unwrap()
                .strip_suffix(suffix)
                .unwrap()
        })
        .collect();
    assert_eq!(
        what,
        vec![
            "the type of global `filtered_pid`",
            "the flag of global `target_signal`",
            "the spelling of the event types",
            "the list of programs"
        ]
    );
    // The object's choices: the flag is offered, the type is spelled as BTF says.
    assert!(
        done.stdout.contains("--target_signal <INT>"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("[pid_t, default 0]"),
        "{}",
        done.stdout
    );
}

#[test]
fn where_bytes_go_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "size",
            |v| v["globals"][0]["size"] = json!(8),
            "global `filtered_pid`",
        ),
        (
            "section",
            |v| v["globals"][0]["section"] = json!(".data"),
            "global `filtered_pid`",
        ),
        (
            "missing",
            |v| {
                v["globals"].as_array_mut().unwrap().remove(0);
            },
            "global `filtered_pid`",
        ),
        (
            "member",
            |v| v["events"][0]["type"]["members"][0]["type"]["size"] = json!(8),
            "event layout",
        ),
    ];
    for (name, edit, what) in cases {
        let mut v = sigsnoop();
        edit(&mut v);
        let path = write(dir.path(), &format!("{name}.json"), &v);
        let done = info(&path);
        assert_eq!(done.status.code(), Some(1), "{name}: {}", done.stderr);
        assert_eq!(
            done.stderr.trim_end(),
            format!("runner: error: package `{path}`: the embedded object does not match the package's description ({what}); rebuild the package"),
            "{name}"
        );
    }
}
